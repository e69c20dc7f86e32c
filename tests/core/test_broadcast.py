"""Broadcasts end to end through the sandbox channel, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from babel.dates import format_date

from gateway.domain.events import load_event
from gateway.testing.harness import upcoming_example, write_config

HEADER = (
    "family_id,guardian_name,language,phone,email,telegram_chat_id,preferred_channel,"
    "school,grade,student_name,timezone,tags\n"
)


def load(cli, config: Path, rows: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "f.csv"
    path.write_text(HEADER + rows, encoding="utf-8")
    result = cli(["families", "import", str(path), "--json"], config)
    assert json.loads(result.stdout)["errors"] == []


def run_json(cli, config: Path, *args: str) -> Any:  # type: ignore[no-untyped-def]
    """Run a ``gateway`` command with ``--json`` and parse what it printed."""
    result = cli([*args, "--json"], config)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def dispatch(cli, config: Path) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    """Send what is due (through `gateway reply`-free path: a sandbox reply dispatches too)."""
    import asyncio

    from gateway.testing.harness import open_gateway

    async def go() -> None:
        async with open_gateway(config) as gw:
            await gw.dispatcher.run_until_idle()

    asyncio.run(go())
    return run_json(cli, config, "sandbox", "outbox")


FAMILIES = (
    "F1,Maria Lopez,es,(913) 555-0101,,,sms,Lincoln,6,Ana Lopez,,\n"
    "F1,Maria Lopez,es,(913) 555-0101,,,sms,Lincoln,6,Luis Lopez,,\n"
    "F1,Maria Lopez,es,(913) 555-0101,,,sms,Lincoln,6,Rosa Lopez,,\n"
    "F1,John Lopez,en,,john@example.net,,email,Lincoln,6,Ana Lopez,,\n"
    "F2,Amina <script>x</script>,ar,,amina@example.net,,email,Lincoln,6,Omar Ali,,\n"
    "F3,Aung Htay,my,(913) 555-0103,,555003,telegram,Lincoln,6,Thiri Htay,,\n"
    "F4,Lan Nguyen,vi,(913) 555-0104,,,sms,Roosevelt,3,Minh Nguyen,,\n"
)


def test_invitation_reaches_each_guardian_once_in_their_language(
    tmp_path: Path, cli, config_path: Path
) -> None:  # type: ignore[no-untyped-def]
    event = upcoming_example(tmp_path)
    load(cli, config_path, FAMILIES, tmp_path)
    result = cli(["broadcast", "send", "workshop_invitation", "--event", str(event), "--json"], config_path)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary) >= {
        "broadcast_id",
        "status",
        "families",
        "messages",
        "by_language",
        "by_channel",
        "by_status",
        "skipped",
    }
    # audience from the event file: school Lincoln grade 6 → F1 (2 guardians), F2, F3; not F4
    assert summary["families"] == 3
    assert summary["messages"] == 4  # Maria gets one message for her three children
    assert summary["by_language"] == {"ar": 1, "en": 1, "es": 1, "my": 1}
    assert summary["by_channel"] == {"email": 2, "sms": 1, "telegram": 1}
    assert summary["by_status"] == {"queued": 4}

    outbox = dispatch(cli, config_path)
    assert len(outbox) == 4
    assert set(outbox[0]) >= {
        "message_id",
        "broadcast_id",
        "family_id",
        "channel",
        "address",
        "language",
        "subject",
        "body",
    }
    by_lang = {m["language"]: m for m in outbox}
    start = load_event(event).start.astimezone(ZoneInfo("America/Chicago"))
    # the date in Spanish, in Chicago time ("jueves, 4 de marzo de 2027")
    assert format_date(start.date(), "full", locale="es") in by_lang["es"]["body"]
    assert "17:30" in by_lang["es"]["body"]
    assert by_lang["es"]["address"] == "+19135550101" and by_lang["es"]["channel"] == "sms"
    assert by_lang["ar"]["subject"] and by_lang["ar"]["channel"] == "email"
    assert by_lang["my"]["channel"] == "telegram"
    assert [b[0] for b in by_lang["my"]["buttons"]] == ["yes", "no", "maybe"]

    status = run_json(cli, config_path, "broadcast", "status", str(summary["broadcast_id"]))
    assert status["by_status"] == {"delivered": 4}
    assert status["messages"] == 4 and status["families"] == 3


def test_email_html_escapes_family_text_and_sets_rtl(tmp_path: Path, cli, sqlite_config: Path) -> None:  # type: ignore[no-untyped-def]
    event = upcoming_example(tmp_path)
    load(cli, sqlite_config, FAMILIES, tmp_path)
    cli(
        ["broadcast", "send", "workshop_invitation", "--event", str(event), "--audience", "family:F2"],
        sqlite_config,
    )
    import asyncio

    from sqlalchemy import select

    from gateway.storage.models import OutboxMessage
    from gateway.testing.harness import open_gateway

    async def row() -> OutboxMessage:
        async with open_gateway(sqlite_config) as gw, gw.db.session() as s:
            return (await s.scalars(select(OutboxMessage))).one()

    message = asyncio.run(row())
    assert '<html lang="ar" dir="rtl">' in message.html
    assert "&lt;script&gt;" in message.html and "<script>" not in message.html
    assert "<script>" in message.body  # plain text part stays plain


def test_opted_out_and_missing_endpoints_are_skipped(tmp_path: Path, cli, config_path: Path) -> None:  # type: ignore[no-untyped-def]
    event = upcoming_example(tmp_path)
    load(cli, config_path, FAMILIES + "F5,No Phone,en,,,,,Lincoln,6,Kid Five,,\n", tmp_path)
    reply = run_json(cli, config_path, "sandbox", "reply", "--from", "+19135550101", "STOP")
    assert reply["classification"] == "opt_out"
    summary = run_json(cli, config_path, "broadcast", "send", "workshop_invitation", "--event", str(event))
    skipped = {(s["family_id"], s["reason"]) for s in summary["skipped"]}
    assert ("F1", "opted out") in skipped
    assert ("F5", "no endpoint") in skipped
    outbox = dispatch(cli, config_path)
    invitations = [m for m in outbox if not m.get("conversation")]
    assert "+19135550101" not in {m["address"] for m in invitations}


def test_dry_run_summarises_and_writes_nothing(tmp_path: Path, cli, sqlite_config: Path) -> None:  # type: ignore[no-untyped-def]
    event = upcoming_example(tmp_path)
    load(cli, sqlite_config, FAMILIES, tmp_path)
    result = cli(
        ["broadcast", "send", "workshop_invitation", "--event", str(event), "--dry-run"], sqlite_config
    )
    assert result.exit_code == 0, result.output
    assert "(dry run)" in result.output and "3 families, 4 messages" in result.output
    assert "catalog es" in result.output
    assert "UCS-2" in result.output or "GSM-7" in result.output  # SMS segments per language
    data = run_json(
        cli, sqlite_config, "broadcast", "send", "workshop_invitation", "--event", str(event), "--dry-run"
    )
    assert data["broadcast_id"] is None and data["status"] == "dry-run"
    assert data["preview"]["es"]["sms"]["encoding"] == "UCS-2"
    assert dispatch(cli, sqlite_config) == []


def test_channels_policy_all_and_audience_filters(tmp_path: Path, cli, sqlite_config: Path) -> None:  # type: ignore[no-untyped-def]
    event = upcoming_example(tmp_path)
    load(cli, sqlite_config, FAMILIES, tmp_path)
    only_sms = run_json(
        cli,
        sqlite_config,
        "broadcast",
        "send",
        "event_reminder",
        "--event",
        str(event),
        "--channels",
        "sms",
        "--audience",
        "school:Lincoln,Roosevelt",
    )
    assert only_sms["by_channel"] == {"sms": 3}  # Maria, Aung (has a phone too), Lan
    everything = run_json(
        cli,
        sqlite_config,
        "broadcast",
        "send",
        "event_reminder",
        "--event",
        str(event),
        "--policy",
        "all",
        "--audience",
        "family:F3",
    )
    assert everything["by_channel"] == {"sms": 1, "telegram": 1}
    by_language = run_json(
        cli,
        sqlite_config,
        "broadcast",
        "send",
        "event_reminder",
        "--event",
        str(event),
        "--audience",
        "language:vi grade:3",
    )
    assert by_language["by_language"] == {"vi": 1}


def test_scheduled_broadcast_waits_for_its_time(tmp_path: Path, cli, sqlite_config: Path) -> None:  # type: ignore[no-untyped-def]
    load(cli, sqlite_config, FAMILIES, tmp_path)
    event = upcoming_example(tmp_path)
    send_at = (datetime.now(UTC) + timedelta(days=3)).isoformat(timespec="seconds")
    summary = run_json(
        cli, sqlite_config, "broadcast", "send", "event_reminder", "--event", str(event), "--at", send_at
    )
    assert summary["messages"] == 4
    assert dispatch(cli, sqlite_config) == []


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("{% block sms %}{{ ''.__class__.__mro__ }}{% endblock %}", "bad:1: refused by the template sandbox"),
        ("{% block sms %}\n{{ cycler.__init__.__globals__ }}{% endblock %}", "bad:2: "),
        ("{% block sms %}\nHello\n{{ nobody.name }}{% endblock %}", "bad:3: undefined value"),
        ("{% block sms %}\n{% if %}{% endblock %}", "bad:2: "),
    ],
)
def test_template_errors_are_reported_before_anything_is_sent(
    tmp_path: Path,
    cli,
    source: str,
    fragment: str,  # type: ignore[no-untyped-def]
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "bad.j2").write_text(source, encoding="utf-8")
    config = write_config(
        tmp_path / "gw", paths={"data_dir": str(tmp_path / "gw" / "data"), "templates": str(templates)}
    )
    load(cli, config, FAMILIES, tmp_path)
    result = cli(["broadcast", "send", "bad", "--json"], config)
    assert result.exit_code == 2
    assert fragment in result.output
    assert dispatch(cli, config) == []


def test_preview_shows_each_language_and_channel(tmp_path: Path, cli, sqlite_config: Path) -> None:  # type: ignore[no-untyped-def]
    event = upcoming_example(tmp_path)
    result = cli(
        [
            "preview",
            "workshop_invitation",
            "--event",
            str(event),
            "--language",
            "es",
            "--language",
            "ar",
            "--channel",
            "sms",
            "--json",
        ],
        sqlite_config,
    )
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    assert [(i["language"], i["channel"]) for i in items] == [("es", "sms"), ("ar", "sms")]
    assert "Responda 1" in items[0]["body"]
    assert items[0]["details"]["encoding"] == "UCS-2"
    assert items[0]["sources"]["template"] == {"reviewed": items[0]["sources"]["template"]["reviewed"]}
    assert items[0]["received"] == "english"  # no engine here: the event's title stays English


def test_plugins_list_shows_builtins(cli) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(cli(["plugins", "list", "--json"]).stdout)
    channels = {c for p in data for c in p["channels"]}
    assert {"sandbox", "twilio_sms", "smtp_email", "telegram"} <= channels
    assert {"argos"} <= {e for p in data for e in p["engines"]}


def test_demo_config_written_by_init(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "config.yaml"
    result = cli(["init", "--config", str(target)])
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(target.read_text())
    assert {n: c["plugin"] for n, c in data["channels"].items()} == {
        "sms": "sandbox",
        "email": "sandbox",
        "telegram": "sandbox",
    }
    assert (tmp_path / "data" / "gateway.db").exists()
    # the examples the README uses, next to the config; the event is upcoming, so it can be sent
    assert sorted(p.name for p in (tmp_path / "examples").iterdir()) == [
        "families.csv",
        "reading-workshop.yaml",
        "transport-survey.yaml",
    ]
    assert load_event(tmp_path / "examples" / "reading-workshop.yaml").start > datetime.now(UTC)


def test_preview_dates_in_english_where_cldr_has_no_names(tmp_path: Path, cli, sqlite_config: Path) -> None:  # type: ignore[no-untyped-def]
    # Haitian Creole: Babel knows the language but not its month or weekday names. The family
    # reads the event's date in English (as its text here), not "2026 M12 14, Mon".
    event = upcoming_example(tmp_path)
    start = load_event(event).start
    args = ["preview", "workshop_invitation", "--event", str(event), "--language", "ht", "--json"]
    result = cli(args, sqlite_config)
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    assert items and all(i["language"] == "ht" for i in items)
    english = format_date(start.astimezone(ZoneInfo("America/Chicago")), "full", locale="en")
    for item in items:
        assert english in item["body"], item["body"]
        assert " M1" not in item["body"], item["body"]
