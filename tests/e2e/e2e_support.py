"""Helpers shared by the end-to-end tests: the real core (Gateway, planner, outbox dispatcher,
inbound pipeline, aiohttp web app) wired to the real channel plugins, which talk to local
provider servers (FakeTwilioServer, RecordingSmtpServer + Dovecot, TelegramBotAPIServer).

Commands a user types run through the real ``gateway`` CLI in a worker thread (it opens its own
Gateway on the same database, as a second process would), so the test's event loop keeps
serving the webhooks and provider servers meanwhile.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from sqlalchemy import func, select

from gateway.storage.endpoints import ChannelState, endpoint_state
from gateway.storage.models import Endpoint, InboundRecord, OutboxMessage
from gateway.testing.fakes import free_port
from gateway.testing.harness import open_gateway, write_config

CSV_COLUMNS = (
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
)


def write_families(path: Path, rows: Iterable[Mapping[str, str]]) -> Path:
    """A families CSV with the contract's columns (missing cells left empty)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({"school": "Lincoln", "grade": "6", "timezone": "America/Chicago", **row})
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def write_event(folder: Path, *, event_id: str = "math-night", audience: str = "school:Lincoln") -> Path:
    """An event file (RSVP on, no reminders) starting three weeks from now."""
    start = (datetime.now(UTC) + timedelta(days=21)).replace(microsecond=0, second=0)
    data = {
        "id": event_id,
        "title": "Family Math Night",
        "description": "Games and snacks for the whole family.",
        "school": "Lincoln",
        "place": "Lincoln Middle School library",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "timezone": "America/Chicago",
        "audience": audience,
        "rsvp": True,
        "reminders": [],
    }
    path = folder / f"{event_id}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def write_survey(folder: Path, survey_id: str = "bus-survey") -> Path:
    """A two-question survey: a yes/no choice, then a rating (quoted yes/no, as PRODUCT.md says)."""
    data = {
        "id": survey_id,
        "title": "Bus routes",
        "audience": "school:Lincoln",
        "questions": [
            {
                "id": "rides_bus",
                "type": "choice",
                "text": "Does your child ride the school bus?",
                "choices": [
                    {"value": "yes", "label": "Yes", "synonyms": ["yes", "y"]},
                    {"value": "no", "label": "No", "synonyms": ["no", "n"]},
                ],
            },
            {
                "id": "pickup_time",
                "type": "rating",
                "text": "How happy are you with the pickup time? (1 = not at all, 5 = very)",
            },
        ],
    }
    path = folder / f"{survey_id}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class CliResult:
    """What one ``gateway`` command printed and returned."""

    exit_code: int
    stdout: str

    def json(self) -> Any:
        """The command's ``--json`` output."""
        assert self.exit_code == 0, self.stdout
        return json.loads(self.stdout)


@dataclass
class LiveGateway:
    """A started gateway with its web app listening on ``base_url``."""

    gw: Any
    config: Path
    base_url: str
    cli: Callable[..., Any]

    async def run(self, *args: str) -> CliResult:
        """Run ``gateway ARGS --config CONFIG`` in a thread (its own event loop and Gateway)."""
        result = await asyncio.to_thread(self.cli, list(args), self.config)
        return CliResult(result.exit_code, result.stdout)

    async def drain(self, within: float = 20.0) -> None:
        """Dispatch until nothing is queued or in flight (retries included)."""
        deadline = time.monotonic() + within
        while True:
            await self.gw.inbound.drain()  # replies the webhooks accepted
            await self.gw.dispatcher.run_until_idle()
            async with self.gw.db.session() as session:
                waiting = await session.scalar(
                    select(func.count(OutboxMessage.id)).where(
                        OutboxMessage.status.in_(["queued", "sending"])
                    )
                )
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{waiting} outbox messages still waiting after {within} s")
            await asyncio.sleep(0.05)

    async def outbox(self, **where: Any) -> list[OutboxMessage]:
        """Outbox rows matching column == value filters, oldest first."""
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        for column, value in where.items():
            query = query.where(getattr(OutboxMessage, column) == value)
        async with self.gw.db.session() as session:
            return list(await session.scalars(query))

    async def inbound(self) -> list[InboundRecord]:
        """Every stored inbound record, oldest first."""
        async with self.gw.db.session() as session:
            return list(await session.scalars(select(InboundRecord).order_by(InboundRecord.id)))

    async def endpoint(self, kind: str, address: str) -> Endpoint | None:
        """The endpoint of ``kind`` with ``address``."""
        async with self.gw.db.session() as session:
            return await session.scalar(
                select(Endpoint).where(Endpoint.kind == kind, Endpoint.address == address)
            )

    async def state(self, kind: str, address: str, channel: str | None = None) -> ChannelState:
        """The consent of the endpoint of ``kind`` with ``address`` on ``channel`` (default: the
        first channel of the kind): opted out or invalid there, or everywhere."""
        endpoint = await self.endpoint(kind, address)
        assert endpoint is not None, f"no {kind} endpoint {address}"
        async with self.gw.db.session() as session:
            return await endpoint_state(session, endpoint.id, channel or self.gw.channel_name_for_kind(kind))

    async def endpoints(self, kind: str) -> list[Endpoint]:
        """Every endpoint of ``kind``."""
        async with self.gw.db.session() as session:
            return list(await session.scalars(select(Endpoint).where(Endpoint.kind == kind)))


@asynccontextmanager
async def live_gateway(
    folder: Path,
    cli: Callable[..., Any],
    channels: Callable[[str], dict[str, Any]],
    *,
    db_url: str | None = None,
    public_base_url: str | None = None,
    **sections: Any,
) -> AsyncIterator[LiveGateway]:
    """Write a config whose ``channels`` (built from the local base URL) use real plugins,
    open and start the gateway, and serve ``gateway.web.app.create_app(gw)`` on a free port.

    ``http.public_base_url`` is the local address unless ``public_base_url`` is given (as
    behind a reverse proxy), so signatures and callback URLs line up. ``sections`` are merged
    into the config (``intake={...}``).
    """
    from gateway.web.app import create_app

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    config = write_config(
        folder,
        db_url,
        channels=channels(base_url),
        http={"host": "127.0.0.1", "port": port, "public_base_url": public_base_url or base_url},
        **sections,
    )
    async with open_gateway(config) as gw:
        runner = web.AppRunner(create_app(gw), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        try:
            yield LiveGateway(gw, config, base_url, cli)
        finally:
            await runner.cleanup()
