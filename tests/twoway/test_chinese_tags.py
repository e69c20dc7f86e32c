"""A family recorded as ``zh-CN``, ``zh-SG`` or plain ``zh`` — how student information systems
often write Mandarin — reads the reviewed Simplified Chinese catalog, and its replies are read
with the Simplified Chinese word tables; one recorded as ``zh-TW`` or ``zh-HK`` (Traditional
script) never gets Simplified text, and every summary says what each got."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po
from test_replies_understood import event_file, invite, rsvps
from twoway_support import jcall, reply, sent_to, with_gateway, write_csv

from gateway.rendering.messages import PARTIAL_FALLBACK_NOTE
from gateway.resources import SHIPPED_LOCALES

FAMILIES = {
    "C1": ("zh-CN", "+19135550801"),
    "C2": ("zh-SG", "+19135550802"),
    "C3": ("zh", "+19135550803"),
    "T1": ("zh-TW", "+19135550804"),
    "T2": ("zh-HK", "+19135550805"),
}


def _simplified_note() -> str:
    with (SHIPPED_LOCALES / "zh_Hans" / "LC_MESSAGES" / "gateway.po").open("rb") as handle:
        found = read_po(handle)[PARTIAL_FALLBACK_NOTE]  # the event's own text stays English
    assert found is not None and found.string
    return str(found.string)


def test_region_tags_reach_the_script_catalog(cli: Any, tw_config: Path, tmp_path: Path) -> None:
    rows = [
        {"family_id": fid, "guardian_name": f"Guardian {fid}", "language": language, "phone": phone,
         "preferred_channel": "sms", "school": "Lincoln", "grade": "6", "student_name": f"Student {fid}",
         "timezone": "America/Chicago"}
        for fid, (language, phone) in FAMILIES.items()
    ]  # fmt: skip
    path = write_csv(tmp_path / "zh.csv", rows)
    report = jcall(cli, ["families", "import", str(path), "--json"], tw_config)
    assert not report["errors"], report["errors"]

    sent = invite(cli, tw_config, event_file(tmp_path, "zh-night", 5))
    received = {language: info["received"] for language, info in sent["translation"].items()}
    # No engine here: the event's own text stays English in every case; the note is in
    # Simplified Chinese for the Simplified tags, English for the Traditional ones.
    assert received == {
        "zh-CN": "english",
        "zh-SG": "english",
        "zh": "english",
        "zh-TW": "english_only",
        "zh-HK": "english_only",
    }
    catalogs = {language: info["catalog"] for language, info in sent["translation"].items()}
    assert catalogs == {"zh-CN": "zh-Hans", "zh-SG": "zh-Hans", "zh": "zh-Hans", "zh-TW": None, "zh-HK": None}

    async def dispatch(gw: Any) -> Any:
        await gw.start_channels()
        return await gw.dispatcher.run_until_idle()

    with_gateway(tw_config, dispatch)
    note = _simplified_note()
    for language, phone in FAMILIES.values():
        (message,) = sent_to(cli, tw_config, phone)
        first = message["body"].splitlines()[0]
        if language in ("zh-TW", "zh-HK"):
            assert first.startswith("We could not translate this message"), (language, first)
        else:
            assert first == note, (language, first)

    # Replies of a zh-CN family are read with the Simplified Chinese word tables.
    assert reply(cli, tw_config, FAMILIES["C1"][1], "是")["classification"] == "rsvp"
    assert reply(cli, tw_config, FAMILIES["C2"][1], "不来")["classification"] == "rsvp"
    answered = rsvps(cli, tw_config, "zh-night")
    assert [i["family_id"] for i in answered["yes"]] == ["C1"]
    assert [i["family_id"] for i in answered["no"]] == ["C2"]
