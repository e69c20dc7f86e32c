"""Every family reads the whole message in its own language — template sentences included —
even in languages no reviewed catalog covers (Haitian Creole, Kinyarwanda): each template
string goes to the engine once per language and is remembered; what could not be translated is
sent in English with a note, and every summary says which of the two a family got."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import yaml
from babel.messages.pofile import read_po
from translation_support import EVENT_DESCRIPTION, dispatch, prepare, run_json

from gateway.rendering.bidi import strip_bidi_controls
from gateway.rendering.messages import PARTIAL_FALLBACK_NOTE, SOURCE_FALLBACK_NOTE
from gateway.resources import SHIPPED_LOCALES
from gateway.testing.harness import open_gateway

NO_CATALOG = ("ht", "rw")


def outbox(cli: Any, config: Path, **match: Any) -> list[dict[str, Any]]:
    """Sandbox messages matching every ``key=value`` given."""
    return [
        m
        for m in run_json(cli, ["sandbox", "outbox"], config)
        if all(m.get(key) == value for key, value in match.items())
    ]


def english_lines(body: str, language: str) -> list[str]:
    """Lines of a message that carry English template text not produced by the engine (the
    table engine prefixes what it translated with ``[xx]``)."""
    sentences = (
        "You are invited", "Will you come?", "Reply 1 for yes", "When:", "Where:", "Hello",
        "Thank you", "This is ", "Reply STOP", "Question ", "Reply with", "answered your message",
        "We could not translate", "This message was translated",
    )  # fmt: skip
    return [
        line
        for line in body.splitlines()
        if any(s in line for s in sentences) and f"[{language}]" not in line
    ]


def test_languages_without_a_catalog_read_every_template_sentence_from_the_engine(
    tmp_path, cli, with_engines, make_config
):
    config = make_config()
    event = prepare(tmp_path, cli, config, count=4, languages=NO_CATALOG)
    sent = run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    for language in NO_CATALOG:
        info = sent["translation"][language]
        assert info["received"] == "machine", info
        assert info["catalog"] is None
        assert set(info["template"]) == {"machine"} and info["template"]["machine"] >= 5
        assert set(info["texts"]) == {"machine"}
    # One engine call per language, for template strings and free text together.
    assert with_engines.recorder.calls == len(NO_CATALOG)
    assert "Will you come?" in with_engines.recorder.texts(target="ht")
    assert "You are invited to [1]." in with_engines.recorder.texts(target="rw")
    dispatch(config, with_engines)

    for language in NO_CATALOG:
        messages = outbox(cli, config, language=language)
        assert {m["channel"] for m in messages} == {"sms", "email"}
        for message in messages:
            body = message["body"]
            assert not english_lines(body, language), (language, body)
            assert f"[{language}] Will you come?" in body
            assert "We could not translate" not in body
            if message["channel"] == "email":
                # The family is told its text was machine-translated (in its language).
                assert body.rstrip().endswith(f"[{language}] This message was translated automatically.")
                assert message["subject"].startswith(f"[{language}] Invitation:")

    # A second broadcast asks the engine nothing: every string is in the memory.
    with_engines.recorder.reset()
    again = run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    assert with_engines.recorder.calls == 0
    assert set(again["translation"]["ht"]["template"]) == {"memory"}
    assert again["translation"]["ht"]["received"] == "machine"

    # Template strings are exported for review like any machine translation.
    exported = tmp_path / "ht.po"
    result = cli(["translate", "export", "--language", "ht", "--output", str(exported)], config)
    assert result.exit_code == 0, result.output
    assert 'msgid "Will you come?"' in exported.read_text(encoding="utf-8")


def test_a_reviewed_template_string_imported_replaces_the_machine_one(
    tmp_path, cli, with_engines, make_config
):
    config = make_config()
    event = prepare(tmp_path, cli, config, count=2, languages=("ht",))
    run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    reviewed = tmp_path / "ht-reviewed.po"
    reviewed.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Will you come?"\nmsgstr "Èske w ap vini?"\n',
        encoding="utf-8",
    )
    assert cli(["translate", "import", str(reviewed), "--language", "ht"], config).exit_code == 0
    second = run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    assert second["translation"]["ht"]["template"].get("reviewed") == 1
    dispatch(config, with_engines)
    latest = outbox(cli, config, language="ht", broadcast_id=second["broadcast_id"])
    assert latest and all("Èske w ap vini?" in m["body"] for m in latest)
    assert all("[ht] Will you come?" not in m["body"] for m in latest)


def write_survey(path: Path) -> Path:
    """A two-question survey with custom choice labels and synonyms."""
    data = {
        "id": "pickup-survey",
        "title": "School bus times",
        "questions": [
            {
                "id": "pickup",
                "type": "choice",
                "text": "When should the school bus come?",
                "choices": [
                    {"value": "am", "label": "Morning", "synonyms": ["early"]},
                    {"value": "pm", "label": "Afternoon", "synonyms": ["late"]},
                ],
            },
            {"id": "comments", "type": "text", "text": "Anything else about the bus?", "optional": True},
        ],
    }
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_survey_questions_and_choices_go_out_translated_and_the_shown_label_is_understood(
    tmp_path, cli, with_engines, make_config
):
    config = make_config(engine_settings={"table": {"prefix": False}})
    prepare(tmp_path, cli, config, count=4, languages=NO_CATALOG)
    survey = write_survey(tmp_path / "survey.yaml")
    sent = run_json(cli, ["survey", "send", str(survey)], config)
    assert sent["translation"]["ht"]["received"] == "machine"
    dispatch(config, with_engines)
    sms = outbox(cli, config, language="ht", channel="sms")[0]
    # Question and labels in Haitian Creole (the table's words), numbered.
    assert "1 - Maten" in sms["body"] and "2 - Apremidi" in sms["body"]
    assert "When should the lekòl bis come?" in sms["body"]  # the table's words, the rest copied

    # The parent types the label they were shown.
    reply = cli(["sandbox", "reply", "--from", sms["address"], "apremidi", "--json"], config)
    assert reply.exit_code == 0, reply.output
    shown = cli(["survey", "results", "pickup-survey", "--format", "json"], config)
    results = json.loads(shown.stdout)
    pickup = next(q for q in results["questions"] if q["id"] == "pickup")
    assert pickup["answers"] == {"pm": 1}
    dispatch(config, with_engines)
    follow_up = outbox(cli, config, language="ht", channel="sms")[-1]
    assert "Anything else about the bis?" in follow_up["body"]


def test_rsvp_confirmation_help_reply_staff_reply_and_reminder_in_a_language_without_catalog(
    tmp_path, cli, with_engines, make_config
):
    config = make_config()
    event = prepare(tmp_path, cli, config, count=4, languages=NO_CATALOG)
    data = yaml.safe_load(event.read_text(encoding="utf-8"))
    run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    dispatch(config, with_engines)
    families = {m["language"]: m for m in outbox(cli, config, channel="sms")}
    haitian, rwandan = families["ht"], families["rw"]

    assert cli(["sandbox", "reply", "--from", haitian["address"], "1"], config).exit_code == 0
    assert cli(["sandbox", "reply", "--from", rwandan["address"], "HELP"], config).exit_code == 0
    assert (
        cli(
            ["sandbox", "reply", "--from", haitian["address"], "Eske gen bis pou atelye a?"], config
        ).exit_code
        == 0
    )
    inbox = run_json(cli, ["inbox"], config)
    question = next(i for i in inbox if "bis" in i["text"])
    assert question["translation"] == "[en] Is there bus for workshop a?"
    assert question["translation_engine"] == "table"
    assert cli(["reply", str(question["id"]), "Yes, a school bus leaves at 5 PM."], config).exit_code == 0

    async def remind() -> None:
        from sqlalchemy import select

        from gateway.broadcasts import send_event_reminder
        from gateway.storage.models import Event

        async with open_gateway(config, extra_plugins=(with_engines,)) as gw:
            async with gw.db.session() as session:
                event_id = await session.scalar(select(Event.id).where(Event.external_id == data["id"]))
            await send_event_reminder(gw, event_id)

    asyncio.run(remind())
    dispatch(config, with_engines)

    confirmation = outbox(cli, config, address=haitian["address"])[1]
    assert "[ht] Thank you! You said you will come to" in confirmation["body"]
    help_text = outbox(cli, config, address=rwandan["address"])[1]
    assert (
        "[rw] This is " in help_text["body"]
        and "[rw] Reply STOP to stop receiving messages." in help_text["body"]
    )
    answer = next(
        m for m in outbox(cli, config, address=haitian["address"]) if "answered your message" in m["body"]
    )
    # Translated back (the time protected from the engine and put back as written).
    assert "[ht] Wi, a lekòl bis leaves at 5 PM." in answer["body"], answer["body"]
    reminders = [
        m for m in outbox(cli, config, language="ht") if m["broadcast_id"] and "remind" in m["body"].lower()
    ]
    assert reminders, outbox(cli, config, language="ht")
    for message in [confirmation, help_text, answer, *reminders]:
        assert not english_lines(message["body"], message["language"]), message["body"]


def _catalog_note(language: str, note: str = SOURCE_FALLBACK_NOTE) -> str:
    """The shipped catalog's translation of a "could not translate" note."""
    path = SHIPPED_LOCALES / language / "LC_MESSAGES" / "gateway.po"
    with path.open("rb") as handle:
        found = read_po(handle)[note]
    assert found is not None and found.string, language
    return str(found.string)


def test_without_an_engine_families_get_english_with_a_note_and_every_summary_says_in_which_language(
    tmp_path, cli, with_engines, make_config
):
    # The engine covers only Spanish. Swahili has a reviewed catalog (the note in it) but nothing
    # translates the event's own text; Dari and Ukrainian have neither, so even the note that
    # says "here it is in English" is English — and no summary may call it "in their language".
    config = make_config(engine_settings={"table": {"languages": ["es"]}})
    event = prepare(tmp_path, cli, config, count=8, languages=("es", "prs", "sw", "uk"))
    dry = run_json(
        cli, ["broadcast", "send", "workshop_invitation", "--event", str(event), "--dry-run"], config
    )
    received = {language: info["received"] for language, info in dry["translation"].items()}
    assert received == {"es": "machine", "prs": "english_only", "sw": "english", "uk": "english_only"}
    notes = dry["notes"]
    assert any(
        n.startswith("prs, uk: families get the message in English, with a note in English") for n in notes
    ), notes
    partly = "sw: some text stays in English, with a note in their language"
    (swahili,) = [n for n in notes if n.startswith(partly)]
    # Swahili's catalog did translate the template: only the event's own words lacked an engine.
    assert "no reviewed catalog" not in swahili and "the event's or the liaison's own words" in swahili
    assert not [n for n in notes if ("prs" in n or "uk" in n) and "their language" in n], notes
    text = cli(
        ["broadcast", "send", "workshop_invitation", "--event", str(event), "--dry-run"], config
    ).output
    assert "with a note in English" in " ".join(text.split())

    # The preview says the same, per language, in its JSON and in the words staff read.
    args = ["preview", "workshop_invitation", "--event", str(event), "--language", "uk", "--language", "sw"]
    shown = run_json(cli, args, config)
    assert {(p["language"], p["received"]) for p in shown} == {("uk", "english_only"), ("sw", "english")}
    words = " ".join(cli(args, config, env={"COLUMNS": "400"}).output.split())
    assert "English, with a note in English" in words and "English, with a note in their language" in words

    sent = run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    status = run_json(cli, ["broadcast", "status", str(sent["broadcast_id"])], config)
    assert status["translation"]["prs"]["received"] == "english_only"
    assert status["translation"]["sw"]["received"] == "english"
    dispatch(config, with_engines)
    for language in ("prs", "uk"):
        for message in outbox(cli, config, language=language):
            first = message["body"].splitlines()[0]
            # Nothing is translated: the whole-message note (isolated from Dari's right-to-left).
            assert strip_bidi_controls(first) == SOURCE_FALLBACK_NOTE, message["body"]
            assert EVENT_DESCRIPTION in message["body"] or message["channel"] == "sms"
    # Swahili: the catalog translates the template, not the event's own text — the note says
    # that part of the message is English, not that all of it is.
    swahili_note = _catalog_note("sw", PARTIAL_FALLBACK_NOTE)
    assert swahili_note != _catalog_note("sw")
    for message in outbox(cli, config, language="sw"):
        assert message["body"].splitlines()[0] == swahili_note, message["body"]


def _without_tokens(text: str | None) -> str | None:
    return None if text is None else re.sub(r"/unsubscribe/[A-Za-z0-9_-]+", "/unsubscribe/T", text)


def test_the_preview_is_byte_for_byte_what_is_sent(tmp_path, cli, with_engines, make_config):
    # Spanish: reviewed catalog + machine free text; Haitian Creole: all machine; Arabic: reviewed
    # catalog and English free text (the engine does not cover it); Dari: English with a note.
    config = make_config(engine_settings={"table": {"languages": ["es", "ht"]}})
    languages = ("es", "ht", "ar", "prs")
    event = prepare(tmp_path, cli, config, count=8, languages=languages)
    args = ["preview", "workshop_invitation", "--event", str(event)]
    for language in languages:
        args += ["--language", language]
    shown = run_json(cli, args, config)
    # Telegram has nobody in this audience: a sample guardian shows it, the rest are real families.
    assert {p["channel"] for p in shown if p["family_id"] is None} == {"telegram"}
    preview = [p for p in shown if p["family_id"] is not None]
    assert {(p["language"], p["channel"]) for p in preview} == {
        (lang, channel) for lang in languages for channel in ("sms", "email")
    }
    # Arabic's catalog has the note; nothing translates it into Dari.
    assert {p["received"] for p in preview if p["language"] == "ar"} == {"english"}
    assert {p["received"] for p in preview if p["language"] == "prs"} == {"english_only"}
    sent = run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    dispatch(config, with_engines)
    messages = outbox(cli, config, broadcast_id=sent["broadcast_id"])
    for item in preview:
        same = [m for m in messages if (m["family_id"], m["channel"]) == (item["family_id"], item["channel"])]
        assert len(same) == 1, item
        assert same[0]["body"] == _without_tokens(item["body"]) or _without_tokens(same[0]["body"]) == (
            _without_tokens(item["body"])
        )
        assert same[0]["subject"] == item["subject"]
    notes = [p for p in preview if "We could not translate" in p["body"]]
    assert {p["language"] for p in notes} >= {"prs"}


RLO = "\u202e"


def test_right_to_left_messages_isolate_english_numbers_and_names(tmp_path, cli, with_engines, make_config):
    config = make_config(engine_settings={"table": {"languages": ["es"]}})  # no engine for Arabic
    families = tmp_path / "families.csv"
    families.write_text(
        "family_id,guardian_name,language,phone,email,preferred_channel,school,grade,student_name\n"
        f"A1,Fatima {RLO}evil,ar,+19135550181,,sms,Lincoln,3,Omar\n"
        f"A2,Fatima {RLO}evil,ar,,fatima@example.net,email,Lincoln,3,Omar\n",
        encoding="utf-8",
    )
    report = run_json(cli, ["families", "import", str(families)], config)
    assert any("text-direction" in w["reason"] and w["column"] == "guardian_name" for w in report["warnings"])
    listed = run_json(cli, ["families", "list"], config)
    assert all(RLO not in g["name"] for f in listed for g in f["guardians"])
    event = prepare(tmp_path, cli, config, count=0)
    run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    dispatch(config, with_engines)
    sms = outbox(cli, config, channel="sms", language="ar")[0]["body"]
    email = outbox(cli, config, channel="email", language="ar")[0]
    for text in (sms, email["body"], email["html"], email["subject"]):
        assert not re.search("[\u202a-\u202e]", text)
    # English fallback laid out left to right; values (the district's phone) isolated.
    assert "\u2066Family reading night\u2069" in sms
    assert "\u2068+19135550100\u2069" in email["body"]
    assert "\u2068Fatima evil\u2069" in email["body"]
    assert '<span dir="ltr">Family reading night</span>' in email["html"]
    assert "<bdi>Fatima evil</bdi>" in email["html"]
    assert 'dir="rtl"' in email["html"]
    # Attribute values stay clean links.
    assert not re.search(r'href="[^"]*[\u2066-\u2069<]', email["html"])
