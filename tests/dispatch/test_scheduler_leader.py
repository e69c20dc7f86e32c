"""Exactly one scheduler among several ``gateway serve`` processes on PostgreSQL; a survivor
takes over when the leader is killed, and no job runs twice."""

from __future__ import annotations

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
    # A job in the store before the servers start: the leader reads the store when elected.
    await _schedule(configs[0], runs, "job-1", 2)
    servers = [await GatewayProcess(c, role="serve", name="serve").start() for c in configs]
    try:

        async def job1_ran() -> bool:
            return any(job == "job-1" for job, _ in _runs(runs))

        assert await wait_until(job1_ran, seconds=60), [s.output()[-1500:] for s in servers]
        [(_, leader_pid)] = _runs(runs)  # run once, by one of the two: that one is the leader
        leader = next(s for s in servers if s.pid == leader_pid)
        follower = next(s for s in servers if s is not leader)
        leader.kill()
        await leader.wait(10)
        # A job that comes due after the leader died: the survivor must take over and run it.
        await _schedule(configs[1], runs, "job-2", 1)

        async def job2_ran() -> bool:
            return any(job == "job-2" for job, _ in _runs(runs))

        assert await wait_until(job2_ran, seconds=60), follower.output()[-2000:]
        await follower.stop()
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
    assert await wait_until(lambda: a.is_leader, seconds=30)
    await b.start()
    # b campaigns every 0.1 s; while a holds the lock, none of those attempts may win
    assert not await wait_until(lambda: b.is_leader, seconds=1.0)
    assert (a.is_leader, b.is_leader) == (True, False)
    await a.stop()  # releases the lock: b takes over
    assert await wait_until(lambda: b.is_leader, seconds=30)
    await b.stop()
    assert events == ["a+", "a-", "b+", "b-"]
