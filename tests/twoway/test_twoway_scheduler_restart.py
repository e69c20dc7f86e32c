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
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session
from twoway_support import EXAMPLES, jcall, twoway_config, with_gateway

from gateway.scheduling.scheduler import schedule_job
from gateway.storage.db import sync_url
from gateway.storage.models import Broadcast, Event, OutboxMessage, ScheduledJob
from gateway.testing.harness import clone_pg_database, drop_pg_database

GATEWAY = Path(sys.executable).with_name("gateway")
GRACE = 600
#: Seconds from planning to the 'late' job: after the first run stops, before the restart.
LATE_AFTER = 8


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


def _wait_for(
    engine: Engine, count: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(_reminders(engine)) >= count:
            return
        if proc.poll() is not None:
            raise AssertionError(f"gateway serve exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"no reminder #{count} within {timeout}s:\n{log.read_text()[-3000:]}")


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
    invite = jcall(
        cli,
        [
            "broadcast",
            "send",
            "workshop_invitation",
            "--event",
            str(EXAMPLES / "reading-workshop.yaml"),
            "--json",
        ],
        config,
    )
    invited = invite["messages"]
    assert [r["offset"] for r in invite["reminders"]] == ["3d", "2h"]  # in 2027: pending

    now = datetime.now(UTC)
    early, late = now + timedelta(seconds=1), now + timedelta(seconds=LATE_AFTER)
    stale = now - timedelta(seconds=GRACE + 300)

    async def plan(gw: Any) -> int:
        async with gw.db.session() as session:
            event_id = await session.scalar(select(Event.id))
        for label, moment in (("early", early), ("late", late), ("stale", stale)):
            await schedule_job(
                gw,
                "gateway.scheduling.jobs:event_reminder",
                moment,
                [event_id, label],
                f"event-{event_id}-reminder-{label}",
            )
        return int(event_id)

    event_id = with_gateway(config, plan)
    prefix = f"event-{event_id}-reminder-"
    engine = create_engine(sync_url(db_url))
    try:
        assert set(_jobs(engine)) == {prefix + x for x in ("3d", "2h", "early", "late", "stale")}

        log = tmp_path / "serve.log"
        first = _start(config, log)
        try:
            _wait_for(engine, 1, first, log)
        finally:
            _stop(first)
        assert datetime.now(UTC) < late, "the first run lasted past the 'late' job: nothing is proven"
        [(_, _, rows)] = _reminders(engine)
        assert rows == invited  # the early reminder reached every invited guardian
        # Ran: early. Missed by more than the grace time: stale, dropped without running.
        # Pending: late and the event's own reminders.
        assert set(_jobs(engine)) == {prefix + x for x in ("3d", "2h", "late")}

        # The late job's time passes while the gateway is down; then it restarts.
        time.sleep(max(0.0, (late - datetime.now(UTC)).total_seconds()) + 0.2)
        restarted_at = datetime.now(UTC)
        second = _start(config, log)
        try:
            _wait_for(engine, 2, second, log)
            time.sleep(0.5)  # room for a wrongful second run
        finally:
            _stop(second)
        reminders = _reminders(engine)
        assert len(reminders) == 2, reminders  # early once, late once, stale never
        assert reminders[1][1] >= restarted_at  # the late one ran after the restart
        assert reminders[1][2] == invited
        # The future jobs are still pending, at their original times.
        start = datetime.fromisoformat("2027-03-04T17:30:00-06:00")
        assert _jobs(engine) == {
            prefix + "3d": (start - timedelta(days=3)).timestamp(),
            prefix + "2h": (start - timedelta(hours=2)).timestamp(),
        }
    finally:
        engine.dispose()
