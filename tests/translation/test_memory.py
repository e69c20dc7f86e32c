"""The translation memory: each distinct string goes to an engine once per language, ever."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import select
from translation_support import LANGUAGES, run_json, write_event, write_families

from gateway.storage.models import OutboxMessage, TranslationMemoryEntry
from gateway.testing.harness import open_gateway


async def test_miss_then_hit_on_both_databases(make_config, engines, db_url):
    config = make_config(db_url)
    async with open_gateway(config, extra_plugins=(engines,)) as gw:
        first = await gw.translation.translate_many(["Family reading night", "The school bus"], "es")
        assert [t.text for t in first] == ["[es] Familia lectura noche", "[es] The escuela autobús"]
        assert {t.origin for t in first} == {"machine"}
        assert engines.recorder.calls == 1

        again = await gw.translation.translate_many(
            ["Family  reading night", "The school bus", "Welcome"], "es"
        )
        # Whitespace-normalised keys hit; only the new string reaches the engine.
        assert [t.origin for t in again] == ["memory", "memory", "machine"]
        assert again[0].text == "[es] Familia lectura noche"
        assert engines.recorder.calls == 2
        assert engines.recorder.texts() == ["Family reading night", "The school bus", "Welcome"]

        status = await gw.translation.status()
        assert status["memory_entries"] == 3
        assert status["engine_calls"] == 2
        assert (status["hits"], status["misses"]) == (2, 3)
        assert status["by_language"]["es"] == {"reviewed": 0, "memory": 2, "machine": 3, "fallback": 0}

    # The memory outlives the process: a new gateway answers from it without any engine call.
    engines.recorder.reset()
    async with open_gateway(config, extra_plugins=(engines,)) as gw:
        result = await gw.translation.translate("Welcome", "es")
        assert (result.text, result.origin) == ("[es] Bienvenidos", "memory")
        assert engines.recorder.calls == 0


async def test_same_language_and_blank_text_never_reach_the_engine(make_config, engines):
    async with open_gateway(make_config(), extra_plugins=(engines,)) as gw:
        result = await gw.translation.translate_many(["Hello", "  "], "en-US")
        assert [t.origin for t in result] == ["source", "source"]
        # Only tokens once masked: put back as is, no engine call.
        only_data = await gw.translation.translate("2027-03-04, https://district.example/x", "es")
        assert only_data.text == "2027-03-04, https://district.example/x"
        assert engines.recorder.calls == 0


def test_thousand_families_one_engine_call_per_string_and_language(tmp_path, cli, with_engines, make_config):
    config = make_config()
    families = write_families(tmp_path / "families.csv", 1000)
    imported = run_json(cli, ["families", "import", str(families)], config)
    assert imported["families_imported"] == 1000 and not imported["errors"]
    event = write_event(tmp_path / "event.yaml")
    recorder = with_engines.recorder

    preview = run_json(
        cli, ["broadcast", "send", "workshop_invitation", "--event", str(event), "--dry-run"], config
    )
    assert preview["messages"] == 1000
    assert all(preview["translation"][lang]["texts"].get("machine") for lang in LANGUAGES)
    recorder.reset()  # a dry run translates too (and fills the memory); start counting afresh

    sent = run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    assert sent["messages"] == 1000
    assert sent["by_language"] == dict.fromkeys(sorted(LANGUAGES), 250)
    # Everything came from the memory the dry run filled: not one engine call.
    assert recorder.calls == 0
    assert all(set(sent["translation"][lang]["texts"]) == {"memory"} for lang in LANGUAGES)

    status = run_json(cli, ["translate", "status"], config)
    assert set(status) >= {"memory_entries", "engine_calls", "hits", "misses", "by_language"}
    # title, description, place (the RSVP question is the title again): 3 strings × 4 languages.
    assert status["engine_calls"] == len(LANGUAGES)
    assert status["memory_entries"] == 3 * len(LANGUAGES)
    for language in LANGUAGES:
        assert set(status["by_language"][language]) == {"reviewed", "memory", "machine", "fallback"}
        assert status["by_language"][language]["machine"] >= 3

    # A fresh text: exactly one call per language, each distinct string seen once per language.
    event2 = write_event(tmp_path / "event2.yaml", description="Welcome, families! The bus leaves at 6 PM.")
    second = run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event2)], config)
    assert second["messages"] == 1000
    assert recorder.calls == len(LANGUAGES)
    seen = Counter((target, text) for _, _, target, text in recorder.seen)
    assert set(seen.values()) == {1}
    assert {text for _, text in seen} == {"Welcome, families! The bus leaves at [1]."}
    assert {target for target, _ in seen} == set(LANGUAGES)

    # And the outbox holds the translations, for every family.
    async def bodies() -> list[tuple[str, str]]:
        async with (
            open_gateway(config, start=False, extra_plugins=(with_engines,)) as gw,
            gw.db.session() as session,
        ):
            rows = await session.execute(
                select(OutboxMessage.language, OutboxMessage.body).where(
                    OutboxMessage.broadcast_id == second["broadcast_id"], OutboxMessage.channel == "email"
                )
            )
            return list(rows)

    rows = asyncio.run(bodies())
    assert len(rows) == 500
    spanish = [body for language, body in rows if language == "es"]
    assert spanish and all("[es] Bienvenidos, familias! The autobús leaves at 6 PM." in b for b in spanish)
    arabic = [body for language, body in rows if language == "ar"]
    assert all("مرحبا" in b and "6 PM" in b for b in arabic)


async def test_memory_rows_are_keyed_by_language_pair(make_config, engines):
    async with open_gateway(make_config(), extra_plugins=(engines,)) as gw:
        for language in ("es", "ar", "es", "my", "ar"):
            await gw.translation.translate("Family reading night", language)
        async with gw.db.session() as session:
            rows = list(await session.scalars(select(TranslationMemoryEntry)))
        assert sorted(r.target_language for r in rows) == ["ar", "es", "my"]
        assert {r.source_language for r in rows} == {"en"}
        assert {r.origin for r in rows} == {"machine"} and {r.engine for r in rows} == {"table"}
        assert engines.recorder.calls == 3


async def test_a_string_stored_meanwhile_by_another_process_is_kept(make_config, engines, db_url):
    from gateway.translation.service import Translated

    async with open_gateway(make_config(db_url), extra_plugins=(engines,)) as gw:
        first = [("Welcome", Translated("[es] Bienvenidos", "machine", "table"))]
        await gw.translation._store("en", "es", first, None)
        # A second planner that missed the same string a moment earlier stores it too: no error.
        await gw.translation._store("en", "es", [("Welcome", Translated("[es] other", "machine", "x"))], None)
        result = await gw.translation.translate("Welcome", "es")
        assert (result.text, result.origin) == ("[es] Bienvenidos", "memory")
        assert (await gw.translation.status())["memory_entries"] == 1
