"""Helpers of the dispatch tests: a Twilio server that timestamps every request, outbox seeding,
``gateway worker`` / ``gateway serve`` subprocesses and polling."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import func, insert, select

from gateway.config import load_config
from gateway.storage.db import Database
from gateway.storage.models import Broadcast, OutboxMessage, StatusEvent, utcnow
from gateway.testing.harness import open_gateway
from gateway.testing.twilio_server import FakeTwilioServer
from gateway.testing.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_BIN = str(ROOT / ".venv" / "bin" / "gateway")
FROM_NUMBER = "+19135550100"


@dataclass
class Arrival:
    """One message-creation request as the provider saw it."""

    at: float
    to: str
    body: str
    outcome: str


class TimedTwilioServer(FakeTwilioServer):
    """FakeTwilioServer that records the arrival time and outcome of every creation request."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arrivals: list[Arrival] = []
        self.latency = 0.0
        """Seconds each creation takes before Twilio has the message (a real API's round trip)."""

    async def _create_message(self, request: web.Request) -> web.StreamResponse:
        at = time.monotonic()
        form = await request.post()
        failure = self._script[0] if self._script else None
        if failure is None:
            outcome = "error" if str(form.get("To", "")) in self._by_recipient else "accepted"
        elif failure.hang is not None:
            outcome = "hang"
        else:
            outcome = str(failure.status)
        self.arrivals.append(Arrival(at, str(form.get("To", "")), str(form.get("Body", "")), outcome))
        if self.latency:
            await asyncio.sleep(self.latency)
        return await super()._create_message(request)

    def accepted_bodies(self) -> Counter[str]:
        """How many times each body was accepted."""
        return Counter(m.body for m in self.messages)


def twilio_channel(server: FakeTwilioServer, **overrides: Any) -> dict[str, Any]:
    """``channels.sms`` settings of a twilio_sms channel pointed at ``server``."""
    settings: dict[str, Any] = {
        "plugin": "twilio_sms",
        "account_sid": server.account_sid,
        "auth_token": server.auth_token,
        "from_number": FROM_NUMBER,
        "api_base_url": server.url,
        "status_callback": False,
        "timeout": 5,
        "concurrency": 8,
    }
    settings.update(overrides)
    return settings


def phone(index: int) -> str:
    """A distinct valid E.164 number per index."""
    return f"+1816{index:07d}"


async def seed_outbox(config: Path, count: int, *, channel: str = "sms", start: int = 0) -> int:
    """A broadcast of ``count`` one-segment messages with unique bodies; returns its id."""
    async with open_gateway(config, start=False) as gw:
        async with gw.db.session() as session:
            broadcast = Broadcast(template="test", status="queued", audience="")
            session.add(broadcast)
            await session.flush()
            now = utcnow()
            rows = [
                {
                    "broadcast_id": broadcast.id,
                    "channel": channel,
                    "address": phone(start + i),
                    "language": "en",
                    "body": f"Message {start + i}",
                    "payload": {},
                    "status": "queued",
                    "due_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(count)
            ]
            for chunk in range(0, len(rows), 2000):
                await session.execute(insert(OutboxMessage), rows[chunk : chunk + 2000])
            await session.commit()
            return broadcast.id


@asynccontextmanager
async def _session(config: Path) -> AsyncIterator[Any]:
    """A session on the config's database (no gateway built, nothing migrated), then closed."""
    db = Database(load_config(config).database_url)
    try:
        async with db.session() as session:
            yield session
    finally:
        await db.close()


async def status_counts(config: Path) -> Counter[str]:
    """Outbox rows per status (a light query: no gateway is built, nothing is migrated)."""
    async with _session(config) as session:
        rows = await session.execute(
            select(OutboxMessage.status, func.count(OutboxMessage.id)).group_by(OutboxMessage.status)
        )
        return Counter({status: count for status, count in rows})


async def held_by(config: Path, pid: int) -> list[int]:
    """Ids of the messages a worker process (by pid) holds: ``sending`` under its lease."""
    async with _session(config) as session:
        rows = await session.execute(
            select(OutboxMessage.id).where(
                OutboxMessage.status == "sending", OutboxMessage.lease_owner.like(f"%:{pid}:%")
            )
        )
        return [row[0] for row in rows]


async def status_details(config: Path, ids: list[int]) -> dict[int, list[str]]:
    """The status history (``status: detail``) of each of ``ids``, oldest first."""
    async with _session(config) as session:
        rows = await session.execute(
            select(StatusEvent.message_id, StatusEvent.status, StatusEvent.detail)
            .where(StatusEvent.message_id.in_(ids))
            .order_by(StatusEvent.id)
        )
        found: dict[int, list[str]] = {i: [] for i in ids}
        for message_id, status, detail in rows:
            found[message_id].append(f"{status}: {detail or ''}")
        return found


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], seconds: float, interval: float = 0.05
) -> bool:
    """Whether ``predicate`` (sync or async) becomes true within ``seconds``
    (:func:`gateway.testing.waiting.wait_for`, as a yes/no for assertions that say more)."""
    try:
        return bool(await wait_for(predicate, deadline=seconds, interval=interval))
    except AssertionError:
        return False


class GatewayProcess:
    """A ``gateway worker`` or ``gateway serve`` subprocess with its output in files."""

    def __init__(self, config: Path, role: str = "worker", name: str = "worker") -> None:
        self.config = config
        self.role = role
        self.log = config.parent / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> GatewayProcess:
        """Spawn the process."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
        handle = self.log.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            GATEWAY_BIN, self.role, "--config", str(self.config), stdout=handle, stderr=handle, env=env
        )
        handle.close()
        return self

    @property
    def pid(self) -> int:
        """The process id."""
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """``kill -9``."""
        if self.process is not None and self.process.returncode is None:
            os.kill(self.process.pid, signal.SIGKILL)

    def terminate(self) -> None:
        """SIGTERM (graceful shutdown)."""
        if self.process is not None and self.process.returncode is None:
            os.kill(self.process.pid, signal.SIGTERM)

    async def wait(self, seconds: float = 30) -> int:
        """Wait for exit; returns the exit code."""
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), seconds)

    async def stop(self) -> None:
        """Terminate and reap (kill if it does not stop)."""
        if self.process is None or self.process.returncode is not None:
            return
        self.terminate()
        try:
            await self.wait(20)
        except TimeoutError:
            self.kill()
            await self.wait(10)

    def output(self) -> str:
        """Everything it printed so far."""
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The largest number of timestamps inside any half-open window of ``window`` seconds."""
    ordered = sorted(times)
    best = 0
    left = 0
    for right, t in enumerate(ordered):
        while t - ordered[left] >= window:
            left += 1
        best = max(best, right - left + 1)
    return best


def python() -> str:
    """The interpreter running the tests."""
    return sys.executable
