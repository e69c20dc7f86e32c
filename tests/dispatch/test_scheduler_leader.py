"""Exactly one scheduler among several ``gateway serve`` processes on PostgreSQL; a survivor
takes over when the leader is killed, and no job runs twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from dispatch_support import GatewayProcess, wait_until

from gateway.scheduling.leader import LeaderElection
from gateway.scheduling.scheduler import schedule_job
from gateway.storage.models import utcnow
from gateway.testing.harness import open_gateway, write_config


async def _schedule(config: Path, runs: Path, job_id: str, seconds: float) -> None:
    async with open_gateway(config, start=False) as gw:
        run_at = utcnow() + timedelta(seconds=seconds)
        await schedule_job(gw, "jobprobe:record_run", run_at, [str(runs), job_id], job_id)


def _runs(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    return [(a, int(b)) for a, b in (line.split() for line in path.read_text().splitlines())]


async def test_leader_killed_another_takes_over_jobs_run_once(tmp_path: Path, pg_url: str) -> None:
    runs = tmp_path / "runs.txt"
    configs = [
        write_config(tmp_path / f"gw{i}", pg_url, scheduler={"enabled": True}, http={"port": 0})
        for i in range(2)
    ]
    # Jobs in the store before the servers start: a new leader reads the store when elected.
    await _schedule(configs[0], runs, "job-1", 6)
    await _schedule(configs[0], runs, "job-2", 14)
    servers = [await GatewayProcess(c, role="serve", name="serve").start() for c in configs]
    try:

        async def one_leader() -> bool:
            return sum("is the scheduler leader" in s.output() for s in servers) == 1

        assert await wait_until(one_leader, seconds=30), [s.output()[-1500:] for s in servers]
        await asyncio.sleep(1.0)
        assert sum("is the scheduler leader" in s.output() for s in servers) == 1
        leader = next(s for s in servers if "is the scheduler leader" in s.output())
        follower = next(s for s in servers if s is not leader)

        async def job1_ran() -> bool:
            return any(job == "job-1" for job, _ in _runs(runs))

        assert await wait_until(job1_ran, seconds=40), leader.output()[-2000:]
        leader.kill()
        await leader.wait(10)

        async def takeover() -> bool:
            return "is the scheduler leader" in follower.output()

        assert await wait_until(takeover, seconds=15), follower.output()[-2000:]

        async def job2_ran() -> bool:
            return any(job == "job-2" for job, _ in _runs(runs))

        assert await wait_until(job2_ran, seconds=30), follower.output()[-2000:]
        await asyncio.sleep(1.0)
    finally:
        for server in servers:
            await server.stop()
    recorded = _runs(runs)
    assert sorted(job for job, _ in recorded) == ["job-1", "job-2"], recorded
    assert dict(recorded) == {"job-1": leader.pid, "job-2": follower.pid}


async def test_sqlite_single_process_is_always_leader(tmp_path: Path) -> None:
    calls: list[str] = []

    async def elected() -> None:
        calls.append("elected")

    async def demoted() -> None:
        calls.append("demoted")

    election = LeaderElection(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", elected, demoted)
    await election.start()
    assert election.is_leader
    await election.stop()
    assert calls == ["elected", "demoted"]


async def test_advisory_lock_admits_one_leader(pg_url: str) -> None:
    events: list[str] = []

    def callbacks(name: str) -> tuple:
        async def elected() -> None:
            events.append(f"{name}+")

        async def demoted() -> None:
            events.append(f"{name}-")

        return elected, demoted

    a = LeaderElection(pg_url, *callbacks("a"), retry_seconds=0.1, check_seconds=0.1)
    b = LeaderElection(pg_url, *callbacks("b"), retry_seconds=0.1, check_seconds=0.1)
    await a.start()
    await asyncio.sleep(0.5)
    await b.start()
    await asyncio.sleep(0.5)
    assert (a.is_leader, b.is_leader) == (True, False)
    await a.stop()  # releases the lock: b takes over
    for _ in range(50):
        if b.is_leader:
            break
        await asyncio.sleep(0.1)
    assert b.is_leader
    await b.stop()
    assert events == ["a+", "a-", "b+", "b-"]
