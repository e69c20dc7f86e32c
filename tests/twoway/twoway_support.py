"""Helpers for the two-way engagement tests: configs, CSVs, JSON CLI calls, database reads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select

from gateway.resources import SHIPPED_EXAMPLES
from gateway.testing.harness import open_gateway, write_config

T = TypeVar("T")

EXAMPLES = SHIPPED_EXAMPLES
ON_CALL = "oncall@district.example"

RESOURCES = [
    {"name": "Harvest Food Bank", "kind": "food", "phone": "+19135550170"},
    {"name": "Crisis Line", "kind": "crisis", "phone": "988"},
]


def twoway_config(folder: Path, db_url: str | None = None, **sections: Any) -> Path:
    """The harness config plus community resources, urgent words and an on-call address."""
    inbound = {
        "urgent_words": ["weapon", "knife", "threat", "suicide", "cuchillo"],
        "on_call": [ON_CALL],
        "on_call_channel": "email",
    }
    district = {
        "name": "Test District",
        "phone": "+19135550100",
        "email": "help@district.example",
        "resources": RESOURCES,
    }
    merged: dict[str, Any] = {"inbound": inbound, "district": district}
    merged.update(sections)
    return write_config(folder, db_url, **merged)


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    """A families CSV with the contract's columns."""
    columns = [
        "family_id",
        "guardian_name",
        "language",
        "phone",
        "email",
        "telegram_chat_id",
        "preferred_channel",
        "school",
        "grade",
        "student_name",
        "timezone",
        "tags",
    ]
    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join(row.get(c, "") for c in columns))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def jcall(cli: Any, args: list[str], config: Path) -> Any:
    """Run a ``--json`` command and parse its output (failing loudly on a non-zero exit)."""
    result = cli(args, config)
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.output}"
    return json.loads(result.stdout)


def text_call(cli: Any, args: list[str], config: Path) -> str:
    """Run a command and return its output."""
    result = cli(args, config)
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.output}"
    return str(result.stdout)


def reply(cli: Any, config: Path, sender: str, text: str, channel: str | None = None) -> dict[str, Any]:
    """``gateway sandbox reply --from SENDER TEXT --json``."""
    args = ["sandbox", "reply", "--from", sender, text, "--json"]
    if channel:
        args[2:2] = ["--channel", channel]
    return jcall(cli, args, config)


def with_gateway(config: Path, fn: Callable[[Any], Awaitable[T]]) -> T:
    """Open the gateway on ``config`` (outside any running loop), call ``fn(gw)``, close it."""

    async def go() -> T:
        async with open_gateway(config, start=False) as gw:
            return await fn(gw)

    return asyncio.run(go())


def outbox_rows(config: Path, **where: Any) -> list[Any]:
    """Outbox rows matching column equality filters, oldest first."""
    from gateway.storage.models import OutboxMessage

    async def fn(gw: Any) -> list[Any]:
        async with gw.db.session() as session:
            query = select(OutboxMessage).order_by(OutboxMessage.id)
            for key, value in where.items():
                query = query.where(getattr(OutboxMessage, key) == value)
            return list(await session.scalars(query))

    return with_gateway(config, fn)


def sent_to(cli: Any, config: Path, address: str) -> list[dict[str, Any]]:
    """What the sandbox channels actually sent to ``address``."""
    return [m for m in jcall(cli, ["sandbox", "outbox", "--json"], config) if m["address"] == address]
