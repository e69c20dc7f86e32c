"""The fallback policy, end to end: a translation that loses a placeholder (or an engine that
fails, or no engine at all) → next engine, English with a note, or held for review."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from translation_support import EVENT_DESCRIPTION, dispatch, emails, prepare, run_json

from gateway.storage.models import TranslationMemoryEntry
from gateway.testing.harness import open_gateway

# What is left in English is part of a message the catalog (and the engine) translated: the
# shipped catalogs' note says that part is English — never "here it is in English".
SPANISH_NOTE = "Parte de este mensaje sigue en inglés: todavía no pudimos traducirla a su idioma."
ARABIC_NOTE = "جزء من هذه الرسالة ما زال باللغة الإنجليزية: لم نتمكن بعد من ترجمته إلى لغتك."
WHOLE_NOTES = ("Aquí lo tiene en inglés", "إليك الرسالة باللغة الإنجليزية")


def test_source_language_sends_english_with_a_note_in_the_family_language(
    tmp_path, cli, with_engines, make_config
):
    config = make_config(engine_settings={"table": {"mode": "drop"}})
    event = prepare(tmp_path, cli, config)
    sent = run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    # Title and place have no placeholder and translate; the description loses its tokens.
    assert sent["translation"]["es"]["texts"] == {"machine": 2, "fallback": 1}
    assert any("rejected" in note and "es" in note for note in sent["notes"])
    assert sent["by_status"] == {"queued": 8}
    dispatch(config, with_engines)

    spanish = emails(cli, config, "es")
    assert spanish
    for message in spanish:
        # The note leads the message, in the family's language; the English text follows.
        assert message["body"].startswith(f"{SPANISH_NOTE}\n\n")
        assert not any(whole in message["body"] for whole in WHOLE_NOTES)
        assert EVENT_DESCRIPTION in message["body"]
        assert "[es] Familia lectura noche" in message["body"]
    arabic = emails(cli, config, "ar")
    assert arabic and all(ARABIC_NOTE in m["body"] and EVENT_DESCRIPTION in m["body"] for m in arabic)

    # A rejected translation is not remembered: the engine gets another chance next time.
    with_engines.recorder.reset()
    with_engines.recorder.modes["table"] = "ok"
    again = run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    assert again["translation"]["es"]["texts"] == {"memory": 2, "machine": 1}
    assert with_engines.recorder.texts(target="es") == [
        "Join the reading workshop on [1] at [2]. Bring your child and [3] books; details at [4] or call [5]."
    ]


@pytest.mark.parametrize("failure", ["mangle", "duplicate", "fail"])
def test_next_engine_answers_when_the_first_breaks_a_placeholder(
    tmp_path, cli, with_engines, make_config, failure
):
    config = make_config(
        engines=["table", "table2"], fallback="next_engine", engine_settings={"table": {"mode": failure}}
    )
    event = prepare(tmp_path, cli, config)
    sent = run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    assert sent["translation"]["es"]["texts"] == {"machine": 3}
    recorder = with_engines.recorder
    assert set(recorder.texts("table2", "es")) <= set(recorder.texts("table", "es"))
    assert (
        "Join the reading workshop on [1] at [2]. Bring your child and [3] books; details at [4] or call [5]."
        in (recorder.texts("table2", "es"))
    )
    dispatch(config, with_engines)
    expected = (
        "[es] Join the lectura taller on March 4 at 5:30 PM. Bring your niño and 2 books; "
        "details at https://district.example/events/reading or call (913) 555-0199."
    )
    spanish = emails(cli, config, "es")
    assert spanish and all(expected in m["body"] and SPANISH_NOTE not in m["body"] for m in spanish)

    async def engines_in_memory() -> set[str | None]:
        async with (
            open_gateway(config, start=False, extra_plugins=(with_engines,)) as gw,
            gw.db.session() as s,
        ):
            rows = await s.scalars(
                select(TranslationMemoryEntry).where(TranslationMemoryEntry.source_text.like("Join%"))
            )
            return {r.engine for r in rows}

    assert asyncio.run(engines_in_memory()) == {"table2"}


def test_next_engine_with_every_engine_failing_falls_back_to_english(
    tmp_path, cli, with_engines, make_config
):
    config = make_config(
        engines=["table", "table2"],
        fallback="next_engine",
        engine_settings={"table": {"mode": "drop"}, "table2": {"mode": "mangle"}},
    )
    event = prepare(tmp_path, cli, config)
    sent = run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    assert sent["translation"]["es"]["texts"] == {"machine": 2, "fallback": 1}
    dispatch(config, with_engines)
    assert all(SPANISH_NOTE in m["body"] for m in emails(cli, config, "es"))


def test_hold_keeps_the_messages_of_that_language_for_review(tmp_path, cli, with_engines, make_config):
    config = make_config(fallback="hold", engine_settings={"table": {"mode": "drop"}})
    event = prepare(tmp_path, cli, config, count=6, languages=("es", "en", "ar"))
    sent = run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    # Only the e-mails carry the description the engine could not translate: they wait. The SMS
    # invitations (title, place, question: all translated) go.
    assert sent["by_status"] == {"held": 2, "queued": 4}
    assert sent["translation"]["es"]["held"] is True
    assert any("held for review" in note and "ar, es" in note for note in sent["notes"])

    status = run_json(cli, ["broadcast", "status", str(sent["broadcast_id"])], config)
    assert status["by_status"] == {"held": 2, "queued": 4}
    assert status["by_language"] == {"ar": 2, "en": 2, "es": 2}

    dispatch(config, with_engines)
    outbox = run_json(cli, ["sandbox", "outbox"], config)
    assert sorted((m["language"], m["channel"]) for m in outbox) == [
        ("ar", "sms"), ("en", "email"), ("en", "sms"), ("es", "sms")
    ]  # fmt: skip
    assert all(EVENT_DESCRIPTION not in m["body"] for m in outbox if m["language"] != "en")
    status = run_json(cli, ["broadcast", "status", str(sent["broadcast_id"])], config)
    assert status["by_status"]["held"] == 2

    # A reviewer supplies the Spanish description; the Spanish e-mail can go, the Arabic one stays held.
    reviewed = tmp_path / "es-reviewed.po"
    reviewed.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        f'msgid "{EVENT_DESCRIPTION}"\nmsgstr "Descripción revisada por una persona."\n',
        encoding="utf-8",
    )
    imported = cli(["translate", "import", str(reviewed), "--language", "es"], config)
    assert imported.exit_code == 0, imported.output
    released = run_json(cli, ["broadcast", "release", str(sent["broadcast_id"]), "--language", "es"], config)
    assert released == {"released": 1, "still_held": 0}
    assert run_json(cli, ["broadcast", "release", str(sent["broadcast_id"])], config) == {
        "released": 0,
        "still_held": 1,
    }
    dispatch(config, with_engines)
    spanish = [m for m in run_json(cli, ["sandbox", "outbox"], config) if m["language"] == "es"]
    assert len(spanish) == 2
    assert any("Descripción revisada por una persona." in m["body"] for m in spanish)  # e-mail has it
    assert all("Join the reading" not in m["body"] for m in spanish)
    status = run_json(cli, ["broadcast", "status", str(sent["broadcast_id"])], config)
    assert status["by_status"]["held"] == 1


def test_a_language_no_engine_handles_falls_back_with_the_install_hint(
    tmp_path, cli, with_engines, make_config
):
    config = make_config(engine_settings={"table": {"languages": ["es"]}})
    event = prepare(tmp_path, cli, config, count=4, languages=("es", "ar"))
    sent = run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    assert sent["translation"]["es"]["texts"] == {"machine": 3}
    assert sent["translation"]["ar"]["texts"] == {"fallback": 3}
    assert any(n.startswith("ar: some text stays in English, with a note") for n in sent["notes"])
    assert with_engines.recorder.texts(target="ar") == []
    dispatch(config, with_engines)
    arabic = emails(cli, config, "ar")
    assert arabic and all(ARABIC_NOTE in m["body"] and EVENT_DESCRIPTION in m["body"] for m in arabic)


def test_dry_run_says_where_each_text_came_from(tmp_path, cli, with_engines, make_config):
    config = make_config(engine_settings={"table": {"languages": ["es"]}})
    event = prepare(tmp_path, cli, config, count=4, languages=("es", "ar"))
    result = cli(["broadcast", "send", "workshop_invitation", "--event", str(event), "--dry-run"], config)
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") >= 4}
    assert "machine 3" in lines["es"] and "catalog es" in lines["es"]
    assert "fallback 3" in lines["ar"]
    again = cli(["broadcast", "send", "workshop_invitation", "--event", str(event), "--dry-run"], config)
    assert "memory 3" in again.output
