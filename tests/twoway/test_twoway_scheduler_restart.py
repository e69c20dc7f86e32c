"""The scheduler survives a restart: ``gateway serve`` is started, stopped and restarted as a
real process; a reminder whose time passed while it was down runs late (within the grace
time), one past the grace time never runs, future ones stay pending, and none runs twice."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session
from twoway_support import EXAMPLES, jcall, twoway_config, with_gateway

from gateway.scheduling.scheduler import schedule_job
from gateway.storage.db import sync_url
from gateway.storage.models import Broadcast, Event, OutboxMessage, ScheduledJob
from gateway.testing.harness import clone_pg_database, drop_pg_database, upcoming_example
from gateway.testing.waiting import wait_for_sync

GATEWAY = Path(sys.executable).with_name("gateway")
GRACE = 600


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reminders(engine: Engine) -> list[tuple[int, datetime, int]]:
    """(broadcast id, created, outbox rows) of every reminder broadcast."""
    with Session(engine) as session:
        rows = session.execute(
            select(Broadcast.id, Broadcast.created_at, func.count(OutboxMessage.id))
            .outerjoin(OutboxMessage, OutboxMessage.broadcast_id == Broadcast.id)
            .where(Broadcast.kind == "reminder")
            .group_by(Broadcast.id, Broadcast.created_at)
            .order_by(Broadcast.id)
        )
        return [(i, c, n) for i, c, n in rows]


def _jobs(engine: Engine) -> dict[str, float]:
    """Job id → run time (POSIX seconds) of the jobs still pending in the job table."""
    with Session(engine) as session:
        rows = session.execute(
            select(ScheduledJob.id, ScheduledJob.run_at).where(ScheduledJob.status == "pending")
        )
        return {i: t.timestamp() for i, t in rows}


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [str(GATEWAY), "serve", "--config", str(config)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("gateway serve did not stop on SIGTERM") from None


def _wait_until(
    condition: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path, what: str
) -> None:
    """Wait for ``condition``; fail at once, with the server's log, if the server exited."""

    def check() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"gateway serve exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        return condition()

    try:
        wait_for_sync(check, what=what)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{log.read_text()[-3000:]}") from None


def _wait_for(engine: Engine, count: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    _wait_until(lambda: len(_reminders(engine)) >= count, proc, log, f"reminder #{count}")


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database: the multi-process deployment, with scheduler leadership
    (SQLite's single ``serve`` shares the same job-store code; one run keeps the folder fast)."""
    url = asyncio.run(clone_pg_database(pg_template))
    yield url
    asyncio.run(drop_pg_database(url))


def test_scheduler_restart_runs_missed_jobs_once(cli: Any, pg_url: str, tmp_path: Path) -> None:
    db_url = pg_url
    config = twoway_config(
        tmp_path / "gw",
        db_url,
        scheduler={"enabled": True, "misfire_grace_seconds": GRACE},
        http={"host": "127.0.0.1", "port": _free_port(), "public_base_url": "https://gateway.test"},
    )
    jcall(cli, ["families", "import", str(EXAMPLES / "families.csv"), "--json"], config)
    event_file = upcoming_example(tmp_path, days_ahead=30)
    send = ["broadcast", "send", "workshop_invitation", "--event", str(event_file), "--json"]
    invite = jcall(cli, send, config)
    invited = invite["messages"]
    assert [r["offset"] for r in invite["reminders"]] == ["3d", "2h"]  # a month ahead: pending

    def plan(label: str, moment: datetime) -> int:
        async def go(gw: Any) -> int:
            async with gw.db.session() as session:
                event_id = await session.scalar(select(Event.id))
            await schedule_job(
                gw,
                "gateway.scheduling.jobs:event_reminder",
                moment,
                [event_id, label],
                f"event-{event_id}-reminder-{label}",
            )
            return int(event_id)

        return with_gateway(config, go)

    now = datetime.now(UTC)
    plan("early", now + timedelta(seconds=1))
    event_id = plan("stale", now - timedelta(seconds=GRACE + 300))
    prefix = f"event-{event_id}-reminder-"
    engine = create_engine(sync_url(db_url))
    try:
        assert set(_jobs(engine)) == {prefix + x for x in ("3d", "2h", "early", "stale")}

        log = tmp_path / "serve.log"
        first = _start(config, log)
        try:
            _wait_for(engine, 1, first, log)
        finally:
            _stop(first)
        [(_, _, rows)] = _reminders(engine)
        assert rows == invited  # the early reminder reached every invited guardian
        # Ran: early. Missed by more than the grace time: stale, dropped without running.
        assert set(_jobs(engine)) == {prefix + x for x in ("3d", "2h")}

        # A job comes due while the gateway is down (planned now, due in a second) ...
        late = datetime.now(UTC) + timedelta(seconds=1)
        plan("late", late)
        wait_for_sync(lambda: datetime.now(UTC) > late, what="the late job's time")
        # ... and runs once when it restarts.
        restarted_at = datetime.now(UTC)
        second = _start(config, log)
        try:
            _wait_for(engine, 2, second, log)
            _wait_until(lambda: prefix + "late" not in _jobs(engine), second, log, "the late job done")
        finally:
            _stop(second)
        reminders = _reminders(engine)
        assert len(reminders) == 2, reminders  # early once, late once, stale never
        assert reminders[1][1] >= restarted_at  # the late one ran after the restart
        assert reminders[1][2] == invited
        # The future jobs are still pending, at their original times.
        start = datetime.fromisoformat(str(yaml.safe_load(event_file.read_text(encoding="utf-8"))["start"]))
        assert _jobs(engine) == {
            prefix + "3d": (start - timedelta(days=3)).timestamp(),
            prefix + "2h": (start - timedelta(hours=2)).timestamp(),
        }
    finally:
        engine.dispose()
