"""Machine suggestions exported for review; a reviewed entry imported back wins from then on."""

from __future__ import annotations

from babel.messages.pofile import read_po, write_po
from translation_support import EVENT_DESCRIPTION, dispatch, emails, prepare, run_json

REVIEWED = (
    "Únase al taller de lectura el 4 de marzo a las 5:30 PM. Traiga a su hijo y 2 libros; "
    "detalles en https://district.example/events/reading o llame al (913) 555-0199."
)


def test_reviewed_translation_wins_over_the_machine_one(tmp_path, cli, with_engines, make_config):
    config = make_config()
    event = prepare(tmp_path, cli, config, count=4, languages=("es", "ar"))
    first = run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    assert first["translation"]["es"]["texts"] == {"machine": 3}

    po_file = tmp_path / "machine-es.po"
    result = cli(["translate", "export", "--language", "es", "--output", str(po_file)], config)
    assert result.exit_code == 0 and "wrote 3 entries" in result.output
    with po_file.open("rb") as fh:
        catalog = read_po(fh)
    entries = {m.id: m for m in catalog if m.id}
    assert set(entries) == {EVENT_DESCRIPTION, "Family reading night", "Lincoln school library"}
    assert all(m.fuzzy for m in entries.values())
    assert entries["Family reading night"].string == "[es] Familia lectura noche"
    assert any("table" in comment for comment in entries["Family reading night"].auto_comments)

    # A reviewer fixes the description and confirms it; the title stays a fuzzy suggestion.
    entries[EVENT_DESCRIPTION].string = REVIEWED
    entries[EVENT_DESCRIPTION].flags.discard("fuzzy")
    with po_file.open("wb") as fh:
        write_po(fh, catalog)
    result = cli(["translate", "import", str(po_file), "--language", "es"], config)
    assert result.exit_code == 0 and "imported 1 reviewed" in result.output

    # The reviewed entry is no longer offered for review; the machine ones still are.
    again = tmp_path / "again.po"
    assert "wrote 2 entries" in cli(["translate", "export", "-l", "es", "-o", str(again)], config).output

    with_engines.recorder.reset()
    second = run_json(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event)], config)
    assert second["translation"]["es"]["texts"] == {"reviewed": 1, "memory": 2}
    assert with_engines.recorder.calls == 0
    dispatch(config, with_engines)
    latest = [m for m in emails(cli, config, "es") if m["broadcast_id"] == second["broadcast_id"]]
    assert latest and all(REVIEWED in m["body"] and "[es] Familia lectura noche" in m["body"] for m in latest)
    # Other languages keep their machine translation.
    arabic = [m for m in emails(cli, config, "ar") if m["broadcast_id"] == second["broadcast_id"]]
    assert arabic and all("[ar]" in m["body"] for m in arabic)

    status = run_json(cli, ["translate", "status"], config)
    assert status["by_language"]["es"]["reviewed"] >= 1


async def test_add_reviewed_replaces_a_machine_entry(make_config, engines):
    from gateway.testing.harness import open_gateway

    async with open_gateway(make_config(), extra_plugins=(engines,)) as gw:
        assert (await gw.translation.translate("Welcome", "es")).origin == "machine"
        assert await gw.translation.add_reviewed("en", "es", [("Welcome", "¡Bienvenidos!")]) == 1
        result = await gw.translation.translate("Welcome", "es")
        assert (result.text, result.origin) == ("¡Bienvenidos!", "reviewed")
        assert [e.source_text for e in await gw.translation.machine_entries("es")] == []
        assert engines.recorder.calls == 1
