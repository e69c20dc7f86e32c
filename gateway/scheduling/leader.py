"""Scheduler leadership: exactly one process runs APScheduler on a shared job store.

On PostgreSQL every candidate holds a dedicated connection (outside the pool) and asks for a
session-level advisory lock with ``pg_try_advisory_lock``; the one that gets it leads for as
long as that connection lives. The others try again every ``retry_seconds``. When the leader
dies (even by ``kill -9``) its connection closes, the server drops the lock and the next try
of another candidate wins. A leader that loses its connection steps down at once (it cannot
know whether someone else holds the lock now).

On SQLite there is a single ``gateway serve`` process: it is always the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.engine import make_url

__all__ = ["LOCK_NAME", "LeaderElection", "advisory_lock_key"]

log = logging.getLogger("gateway.scheduler.leader")
LOCK_NAME = "gateway:scheduler"

Callback = Callable[[], Awaitable[None]]


def advisory_lock_key(name: str = LOCK_NAME) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock`` from a name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _asyncpg_dsn(url: str) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


class LeaderElection:
    """Runs ``on_elected`` when this process becomes the leader, ``on_demoted`` when it stops
    being one (connection lost or shutdown)."""

    def __init__(
        self,
        database_url: str,
        on_elected: Callback,
        on_demoted: Callback,
        *,
        retry_seconds: float = 2.0,
        check_seconds: float = 2.0,
        name: str = LOCK_NAME,
    ) -> None:
        self.url = database_url
        self.is_sqlite = make_url(database_url).get_backend_name() == "sqlite"
        self.on_elected = on_elected
        self.on_demoted = on_demoted
        self.retry_seconds = retry_seconds
        self.check_seconds = check_seconds
        self.key = advisory_lock_key(name)
        self.is_leader = False
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        """Begin campaigning in the background (SQLite: become leader now)."""
        if self.is_sqlite:
            await self._elected()
            return
        self._task = asyncio.create_task(self._campaign(), name="scheduler-leader-election")

    async def stop(self) -> None:
        """Step down and release the lock."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._demoted()
        await self._close()

    async def _elected(self) -> None:
        self.is_leader = True
        log.info("this process is the scheduler leader")
        await self.on_elected()

    async def _demoted(self) -> None:
        if not self.is_leader:
            return
        self.is_leader = False
        log.info("this process is no longer the scheduler leader")
        try:
            await self.on_demoted()
        except Exception:
            log.exception("stopping the scheduler failed")

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2)

    async def _campaign(self) -> None:
        import asyncpg

        while not self._stop.is_set():
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(_asyncpg_dsn(self.url), timeout=10)
                if not self.is_leader:
                    got = await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key)
                    if got:
                        await self._elected()
                else:
                    await asyncio.wait_for(self._conn.fetchval("SELECT 1"), timeout=self.check_seconds * 2)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("scheduler leadership check failed (%s); stepping down", type(exc).__name__)
                await self._demoted()
                await self._close()
            delay = self.check_seconds if self.is_leader else self.retry_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
