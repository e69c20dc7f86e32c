"""Helpers of the translation tests: families files, event files, JSON from the CLI."""

from __future__ import annotations

import asyncio
import csv
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from gateway.testing.harness import open_gateway

#: Guardian languages of the generated families, and a name per language.
LANGUAGES = ("es", "ar", "my", "so")

EVENT_DESCRIPTION = (
    "Join the reading workshop on March 4 at 5:30 PM. Bring your child and 2 books; "
    "details at https://district.example/events/reading or call (913) 555-0199."
)


def write_families(path: Path, count: int, languages: tuple[str, ...] = LANGUAGES) -> Path:
    """``count`` one-guardian families, languages in turn, half by SMS and half by e-mail."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["family_id", "guardian_name", "language", "phone", "email", "preferred_channel",
             "school", "grade", "student_name", "timezone"]
        )  # fmt: skip
        for number in range(count):
            language = languages[number % len(languages)]
            sms = (number // len(languages)) % 2 == 0
            writer.writerow(
                [
                    f"F{number:05d}",
                    f"Guardian {number}",
                    language,
                    f"+1913555{number:04d}" if sms else "",
                    "" if sms else f"guardian{number}@example.net",
                    "sms" if sms else "email",
                    "Lincoln",
                    "3",
                    f"Student {number}",
                    "America/Chicago",
                ]
            )
    return path


def write_event(path: Path, description: str = EVENT_DESCRIPTION, **fields: Any) -> Path:
    """An event file for a workshop invitation (no reminders, RSVP on), 90 days ahead."""
    day = (date.today() + timedelta(days=90)).isoformat()
    data = {
        "id": "reading-workshop",
        "title": "Family reading night",
        "description": description,
        "school": "Lincoln",
        "place": "Lincoln school library",
        "start": f"{day}T17:30:00-06:00",
        "end": f"{day}T18:30:00-06:00",
        "timezone": "America/Chicago",
        "audience": "",
        "rsvp": True,
        **fields,
    }
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def run_json(cli: Any, args: list[str], config: Path) -> Any:
    """Run a CLI command with ``--json`` and parse what it printed."""
    result = cli([*args, "--json"], config)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def dispatch(config: Path, plugin: Any = None) -> None:
    """Send everything due, the way `gateway serve` would (with the table engines, if given)."""

    async def go() -> None:
        async with open_gateway(config, extra_plugins=(plugin,) if plugin else ()) as gw:
            await gw.dispatcher.run_until_idle()

    asyncio.run(go())


def prepare(
    tmp_path: Path, cli: Any, config: Path, count: int = 8, languages: tuple[str, ...] = LANGUAGES
) -> Path:
    """Import ``count`` families and write the event file."""
    families = write_families(tmp_path / "families.csv", count, languages)
    assert cli(["families", "import", str(families)], config).exit_code == 0
    return write_event(tmp_path / "event.yaml")


def emails(cli: Any, config: Path, language: str) -> list[dict[str, Any]]:
    """E-mails in ``language`` the sandbox has sent (``sandbox outbox --json``)."""
    return [
        m
        for m in run_json(cli, ["sandbox", "outbox"], config)
        if m["channel"] == "email" and m["language"] == language
    ]
