"""Compliance keywords through the sandbox channel and the CLI: STOP / START / HELP in several
languages, nothing sent to an opted-out endpoint afterwards, HELP with the community
resources in the family's language, and ``YES`` meaning opt-in only while opted out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from twoway_support import EXAMPLES, jcall, outbox_rows, reply, sent_to

from gateway.inbound.keywords import KeywordTable
from gateway.testing.harness import upcoming_example

SURVEY = EXAMPLES / "transport-survey.yaml"
MARIA, AMINA, CLAIRE, FATIMA, SARAH, BARAKA_SMS, BARAKA_MAIL = (
    "+19135550101",
    "+19135550102",
    "claire.dubois@example.net",
    "552201",
    "+19135550109",
    "+19135550106",
    "baraka@example.net",
)


def _endpoints(cli: Any, config: Path) -> dict[str, bool]:
    """address → opted_out, from ``families list --json``."""
    out: dict[str, bool] = {}
    for family in jcall(cli, ["families", "list", "--json"], config):
        for guardian in family["guardians"]:
            for endpoint in guardian["endpoints"]:
                out[endpoint["address"]] = endpoint["opted_out"]
    return out


def _event(tmp_path: Path) -> Path:
    return upcoming_example(tmp_path, reminders=[])


def test_stop_in_many_languages_suppresses_every_later_send(cli: Any, families: Path, tmp_path: Path) -> None:
    config = families
    stops = [
        (MARIA, "parar", "es", "Ya no recibirá más mensajes"),
        (AMINA, "JOOJI", "so", "Fariimo dambe kama heli doontid"),
        (CLAIRE, "Arrêt", "fr", "Vous ne recevrez plus"),
        (FATIMA, "توقف", "ar", "لن تصلك رسائل"),
        (SARAH, "Please stop texting me!", "en", "You will not get any more messages"),
        (BARAKA_SMS, "STOP", "sw", None),
    ]
    for address, text, language, confirmation in stops:
        out = reply(cli, config, address, text)
        assert out["classification"] == "opt_out", (address, text)
        [sent] = out["replies"]  # exactly one confirmation, in the family's language
        assert sent["language"] == language and sent["status"] == "delivered"
        if confirmation:
            assert confirmation in sent["body"]
    # A second STOP is recorded but not confirmed again.
    again = reply(cli, config, MARIA, "STOP")
    assert again["classification"] == "opt_out" and again["replies"] == []

    state = _endpoints(cli, config)
    for address, *_ in stops:
        assert state[address] is True, address
    assert state[BARAKA_MAIL] is False  # his e-mail endpoint stays subscribed

    # Later broadcasts of every kind: an invitation, a survey, its reminder.
    before = {address: len(sent_to(cli, config, address)) for address, *_ in stops}
    invite = jcall(
        cli, ["broadcast", "send", "workshop_invitation", "--event", str(_event(tmp_path)), "--json"], config
    )
    skipped = {s["family_id"] for s in invite["skipped"]}
    assert {"F002", "F004", "F008", "F009"} <= skipped  # their only endpoint is opted out
    # In F001 only Maria is skipped: José, the other guardian, still gets it by e-mail.
    assert [s.get("guardian") for s in invite["skipped"] if s["family_id"] == "F001"] == ["Maria Hernández"]
    assert sent_to(cli, config, "jose.hernandez@example.net") or outbox_rows(
        config, address="jose.hernandez@example.net", broadcast_id=invite["broadcast_id"]
    )
    survey = jcall(cli, ["survey", "send", str(SURVEY), "--json"], config)
    assert {"F002", "F004", "F008", "F009"} <= {s["family_id"] for s in survey["skipped"]}

    from twoway_support import with_gateway

    from gateway.scheduling.jobs import set_current_gateway, survey_reminder

    async def remind(gw: Any) -> Any:
        set_current_gateway(gw)
        try:
            from sqlalchemy import select

            from gateway.storage.models import Survey

            async with gw.db.session() as session:
                survey_id = await session.scalar(
                    select(Survey.id).where(Survey.external_id == "transport-survey")
                )
            await survey_reminder(survey_id)
            await gw.start_channels()
            return await gw.dispatcher.run_until_idle()
        finally:
            set_current_gateway(None)

    with_gateway(config, remind)
    # Baraka prefers SMS; with SMS opted out the invitation falls to his e-mail.
    assert [m for m in sent_to(cli, config, BARAKA_MAIL) if m["broadcast_id"] == invite["broadcast_id"]]
    for address, *_ in stops:
        assert len(sent_to(cli, config, address)) == before[address], address
    assert not outbox_rows(config, address=MARIA, status="queued")


def test_a_message_planned_before_stop_is_not_sent_after_it(cli: Any, families: Path, tmp_path: Path) -> None:
    config = families
    invite = jcall(
        cli, ["broadcast", "send", "workshop_invitation", "--event", str(_event(tmp_path)), "--json"], config
    )
    assert invite["messages"] >= 10
    # The invitation is queued but not dispatched yet; Maria's STOP arrives first.
    out = reply(cli, config, MARIA, "cancelar")
    [row] = outbox_rows(config, address=MARIA, broadcast_id=invite["broadcast_id"])
    assert row.status == "cancelled"  # the invitation planned before the STOP never goes
    # ...but the opt-out confirmation, dispatched in the same batch, does.
    assert [r["status"] for r in out["replies"]] == ["delivered"], out["replies"]
    bodies = [m["body"] for m in sent_to(cli, config, MARIA)]
    assert len(bodies) == 1 and bodies[0].startswith("Ya no recibirá")


def test_start_opts_back_in_and_help_lists_resources(cli: Any, families: Path) -> None:
    config = families
    reply(cli, config, AMINA, "jooji")
    out = reply(cli, config, AMINA, "START")
    assert out["classification"] == "opt_in"
    assert "Ku soo dhawoow mar kale" in out["replies"][0]["body"]
    assert _endpoints(cli, config)[AMINA] is False

    help_so = reply(cli, config, AMINA, "caawin")
    assert help_so["classification"] == "help"
    [text] = [r["body"] for r in help_so["replies"]]
    assert "Kani waa Test District" in text  # the catalog's Somali
    assert "+19135550100" in text and "help@district.example" in text
    assert "Harvest Food Bank +19135550170" in text and "Crisis Line 988" in text
    assert "STOP" in text

    help_ar = reply(cli, config, FATIMA, "مساعدة")
    assert help_ar["classification"] == "help" and help_ar["replies"][0]["language"] == "ar"
    assert "Harvest Food Bank" in help_ar["replies"][0]["body"]
    help_en = reply(cli, config, SARAH, "info")
    body = help_en["replies"][0]["body"]
    assert "Message and data rates may apply" in body and "Crisis Line 988" in body
    help_es = reply(cli, config, MARIA, "AYUDA")
    assert help_es["replies"][0]["language"] == "es" and "Crisis Line" in help_es["replies"][0]["body"]


def test_yes_is_an_answer_while_subscribed_and_opt_in_while_opted_out(cli: Any, families: Path) -> None:
    config = families
    # Subscribed, no survey: YES is not an opt-in and nothing is confirmed.
    out = reply(cli, config, SARAH, "YES")
    assert out["classification"] != "opt_in" and out["replies"] == []
    # Subscribed with an open survey: YES answers it.
    jcall(cli, ["survey", "send", str(SURVEY), "--json"], config)
    out = reply(cli, config, SARAH, "yes")
    assert out["classification"] == "survey_answer"
    assert "2" in out["replies"][0]["body"]  # the next question
    # Opted out: YES opts back in.
    reply(cli, config, SARAH, "STOP")
    out = reply(cli, config, SARAH, "Yes")
    assert out["classification"] == "opt_in"
    assert "Welcome back" in out["replies"][0]["body"]
    assert _endpoints(cli, config)[SARAH] is False


@pytest.mark.parametrize(
    ("text", "opted_out", "expected"),
    [
        ("STOP", False, "opt_out"),
        ("  stop. ", False, "opt_out"),
        ("ＳＴＯＰ", False, "opt_out"),
        ("StopAll", False, "opt_out_all"),
        ("stop all please", False, "opt_out_all"),
        ("PARAR TODO", False, "opt_out_all"),
        ("unsubscribe", False, "opt_out"),
        ("END", False, "opt_out"),
        ("quit", False, "opt_out"),
        ("parar", False, "opt_out"),
        ("jooji", False, "opt_out"),
        ("arrêt", False, "opt_out"),
        ("ARRET", False, "opt_out"),
        ("dừng", False, "opt_out"),
        ("توقف", False, "opt_out"),
        ("acha", False, "opt_out"),
        ("please stop texting me", False, "opt_out"),
        ("Please, stop texting me!", False, "opt_out"),
        ("Hi. Please stop texting me", False, "opt_out"),
        ("No más mensajes, por favor", False, "opt_out"),
        ("could the bus please stop at 5th street", False, None),
        ("are there no more messages about the trip?", False, None),
        ("start", True, "opt_in"),
        ("UNSTOP", True, "opt_in"),
        ("yes", True, "opt_in"),
        ("yes", False, None),
        ("help", False, "help"),
        ("INFO", False, "help"),
        ("ayuda", False, "help"),
        ("caawin", False, "help"),
        ("no", False, None),
        ("non", False, None),
        ("maya", False, None),
        ("stop the bus at 5th street please", False, None),
        ("the bus did not stop", False, None),
    ],
)
def test_keyword_table(text: str, opted_out: bool, expected: str | None) -> None:
    table = KeywordTable.load(EXAMPLES.parent / "locales")
    assert table.classify(text, opted_out=opted_out) == expected


def test_configured_opt_out_words_are_honoured(cli: Any, tmp_path: Path) -> None:
    from twoway_support import twoway_config

    config = twoway_config(tmp_path / "gw", inbound={"opt_out_words": {"so": ["bas"]}, "on_call": []})
    jcall(cli, ["families", "import", str(EXAMPLES / "families.csv"), "--json"], config)
    out = reply(cli, config, AMINA, "BAS")
    assert out["classification"] == "opt_out" and out["replies"][0]["language"] == "so"


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        # A word that stops one language's families is an ordinary word in another's.
        ("Acha", "sw", "opt_out"),
        ("Acha", "hi", None),
        ("acha, thank you", "ur", None),
        ("ALTO", "es-MX", "opt_out"),
        ("ALTO", "vi", None),
        ("STOP", "hi", "opt_out"),  # English counts for everyone
        ("توقف", "ar", "opt_out"),
        # A phrase inside a longer message is for a person to read, not an opt-out.
        ("J'aimerais recevoir plus de messages", "fr", None),
        ("Sorry, my phone was broken so I got no more messages", "en", None),
        ("My husband will drive the kids instead of me, so please remove me from the list", "en", None),
        ("Remove me from this list of volunteers and add my sister", "en", None),
        ("Hi. Please stop texting me", "en", "opt_out"),
        ("No más mensajes, por favor", "es", "opt_out"),
    ],
)
def test_a_reply_is_read_with_the_words_of_the_familys_language(
    text: str, language: str, expected: str | None
) -> None:
    table = KeywordTable.load(EXAMPLES.parent / "locales")
    assert table.classify(text, opted_out=False, language=language) == expected
    if expected is None:  # ... and a person is told it may be one
        assert table.mentions_opt_out(text)


def test_ok_in_hindi_does_not_switch_a_family_off(cli: Any, tmp_path: Path) -> None:
    from twoway_support import twoway_config, write_csv

    config = twoway_config(tmp_path / "gw")
    families = write_csv(tmp_path / "families.csv", [
        {"family_id": "H1", "guardian_name": "Priya Sharma", "language": "hi", "phone": "+19135550301",
         "school": "Lincoln", "grade": "3", "student_name": "Anu Sharma"},
    ])
    jcall(cli, ["families", "import", str(families), "--json"], config)
    out = reply(cli, config, "+19135550301", "Acha")
    assert out["classification"] != "opt_out" and not out["replies"]
    assert _endpoints(cli, config)["+19135550301"] is False
    [item] = jcall(cli, ["inbox", "--json"], config)
    assert item["possible_opt_out"] is True  # a person decides


def test_a_number_that_said_stop_is_not_written_to_from_another_familys_row(
    cli: Any, families: Path, tmp_path: Path
) -> None:
    from twoway_support import write_csv

    assert reply(cli, families, MARIA, "STOP")["classification"] == "opt_out"
    # The same phone, written another way, in a new family's row (a relative's household).
    newcomer = write_csv(tmp_path / "newcomer.csv", [
        {"family_id": "Z001", "guardian_name": "Rosa Hernández", "language": "es", "phone": "(913) 555-0101",
         "school": "Lincoln", "grade": "2", "student_name": "Lucía Hernández"},
    ])
    jcall(cli, ["families", "import", str(newcomer), "--json"], families)
    [rosa] = [f for f in jcall(cli, ["families", "list", "--json"], families) if f["family_id"] == "Z001"]
    [endpoint] = rosa["guardians"][0]["endpoints"]
    assert endpoint["opted_out"] is True
    assert [c["state"] for c in endpoint["channels"] if c["channel"] == "sms"] == ["opted_out"]
    sent = jcall(cli, ["broadcast", "send", "workshop_invitation", "--event", str(_event(tmp_path)),
                       "--audience", "family:Z001", "--urgent", "--json"], families)
    assert sent["messages"] == 0
    assert not [m for m in outbox_rows(families, address=MARIA) if not m.conversation]


def test_stop_all_is_confirmed_as_every_channel_in_the_familys_language(cli: Any, families: Path) -> None:
    out = reply(cli, families, BARAKA_SMS, "STOPALL")
    assert out["classification"] == "opt_out"
    [confirmation] = out["replies"]
    # Swahili: "... from the district by any means: not by SMS, e-mail or chat", not "on this number".
    assert "kwa njia yoyote" in confirmation["body"] and "kwenye namba hii" not in confirmation["body"]
    endpoints = _endpoints(cli, families)
    assert endpoints[BARAKA_SMS] is True and endpoints[BARAKA_MAIL] is True
    # A STOP on one channel still says "this number".
    out = reply(cli, families, MARIA, "STOP")
    assert "en este número" in out["replies"][0]["body"]
