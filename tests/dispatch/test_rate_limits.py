"""Rate limits that hold across worker processes, measured where the provider sees them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from dispatch_support import (
    GatewayProcess,
    TimedTwilioServer,
    max_in_window,
    seed_outbox,
    status_counts,
    twilio_channel,
    wait_until,
)

from gateway.outbox.rate_limit import (
    DEFAULT_MARGIN,
    DatabaseRateLimiter,
    LocalRateLimiter,
    RateLimiter,
    RedisRateLimiter,
)
from gateway.storage.db import Database
from gateway.storage.migrate import upgrade_async
from gateway.testing.harness import open_gateway, write_config
from gateway.testing.services import redis_url

RATE = 20
#: Seconds of delay variation between the limiter's grant and the provider's arrival allowed.
ARRIVAL_JITTER = 0.1


@pytest.mark.parametrize("limiter", ["database", "redis"])
async def test_two_workers_never_exceed_the_channel_rate(
    tmp_path: Path, pg_url: str, twilio: TimedTwilioServer, limiter: str
) -> None:
    total = 5 * RATE
    config = write_config(
        tmp_path / "gw",
        pg_url,
        channels={"sms": twilio_channel(twilio, rate_per_second=RATE, concurrency=8)},
        dispatch={"batch_size": 20, "rate_limiter": limiter, "poll_seconds": 0.05},
    )
    await seed_outbox(config, total)
    workers = [await GatewayProcess(config, name=f"w{i}").start() for i in range(2)]
    try:

        async def done() -> bool:  # polls the provider's memory: no load on the machine
            return len(twilio.messages) >= total

        assert await wait_until(done, seconds=60, interval=0.25), workers[0].output()[-2000:]
    finally:
        for worker in workers:
            await worker.stop()
    assert await status_counts(config) == {"sent": total}
    times = [a.at for a in twilio.arrivals]
    assert len(times) == total
    # Arrivals trail the limiter's grants by a loopback and scheduling delay that varies with
    # the machine's load; a window 100 ms short of a second leaves room for that much jitter
    # (a limiter that let the two workers add up would put ~2x RATE in it).
    busiest = max_in_window(times, window=1.0 - ARRIVAL_JITTER)
    span = max(times) - min(times)
    print(f"\n{limiter} limiter, 2 workers: busiest 0.9-s window {busiest}/{RATE}, {total} in {span:.2f} s")
    assert busiest <= RATE
    assert (total - RATE) / span <= RATE  # and the long-run rate is the channel's


def _measurable_window(trips: list[float]) -> float:
    """The window the limiter's guarantee (units more than 1.03 s apart on its clock) still
    shows in stamps taken here, each off by up to half the slowest round trip."""
    return min(1.0, 1.0 + DEFAULT_MARGIN - max(trips) - 0.002)


async def _limiters(kind: str, tmp_path: Path, pg_url: str) -> tuple[list[RateLimiter], list[Database]]:
    if kind == "local":
        return [LocalRateLimiter()], []
    if kind == "redis":
        namespace = f"test-{time.time_ns()}"
        return [RedisRateLimiter(redis_url(), namespace) for _ in range(2)], []
    url = pg_url if kind == "postgresql" else f"sqlite+aiosqlite:///{tmp_path / 'limits.db'}"
    await upgrade_async(url)
    databases = [Database(url) for _ in range(2)]
    return [DatabaseRateLimiter(db) for db in databases], databases


@pytest.mark.parametrize("kind", ["local", "sqlite", "postgresql", "redis"])
async def test_limiters_share_one_budget(kind: str, tmp_path: Path, pg_url: str) -> None:
    limiters, databases = await _limiters(kind, tmp_path, pg_url)
    stamps: list[float] = []
    trips: list[float] = []

    async def worker(limiter: RateLimiter) -> None:
        # The slot each reservation got, on this process's clock (error: half a round trip).
        # Wake-up jitter is the dispatcher's business: it gives up late slots (two-worker test).
        for _ in range(25):
            before = time.monotonic()
            wait = await limiter.reserve("channel:test", RATE)
            after = time.monotonic()
            trips.append(after - before)
            stamps.append((before + after) / 2 + wait)

    try:
        # Two "workers" (separate limiter objects and connections) take 50 slots together.
        await asyncio.gather(worker(limiters[0]), worker(limiters[-1]))
        # Slots are 1.03 / RATE apart on the limiter's clock; two stamps can each be off by
        # half a round trip. (Two separate budgets would put 2 x RATE in a window.)
        window = _measurable_window(trips)
        assert max_in_window(stamps, window) <= RATE, sorted(round(t - min(stamps), 3) for t in stamps)
        assert max(stamps) - min(stamps) >= (50 - 1) / RATE * 0.95

        # Per-recipient: at 1/s, of several simultaneous tries exactly one gets the slot.
        results = await asyncio.gather(
            *(limiters[i % len(limiters)].try_acquire("recipient:test:42", 1.0) for i in range(6))
        )
        assert sum(1 for r in results if r == 0.0) == 1
        assert all(0 < r <= 1.1 for r in results if r != 0.0)
        # peek: how long until the recipient is free, seen by every worker, taking nothing.
        waits = [await limiter.peek("recipient:test:42", 1.0) for limiter in limiters]
        assert all(0 < w <= 1.1 for w in waits)
        assert await limiters[0].peek("recipient:test:free", 1.0) == 0.0
        assert await limiters[0].try_acquire("recipient:test:free", 1.0) == 0.0
    finally:
        for limiter in limiters:
            await limiter.close()
        for db in databases:
            await db.close()


@pytest.mark.parametrize("kind", ["local", "sqlite", "postgresql", "redis"])
async def test_multi_unit_reservations_never_overfill_a_window(
    kind: str, tmp_path: Path, pg_url: str
) -> None:
    limiters, databases = await _limiters(kind, tmp_path, pg_url)
    # Units of each send (SMS segments), taken by two "workers" in turn.
    sizes = [1] * 19 + [5] + [3, 1, 2, 4, 1, 1, 1, 6, 2, 2, 1, 3, 1, 1, 1, 2]
    slots: list[tuple[float, int]] = []
    trips: list[float] = []

    async def worker(limiter: RateLimiter, mine: list[int]) -> None:
        for units in mine:
            before = time.monotonic()
            wait = await limiter.reserve("channel:segments", RATE, units)
            after = time.monotonic()
            trips.append(after - before)
            slots.append(((before + after) / 2 + wait, units))

    try:
        await asyncio.gather(worker(limiters[0], sizes[0::2]), worker(limiters[-1], sizes[1::2]))
        slots.sort()
        window = _measurable_window(trips)
        busiest = max(
            sum(u for t, u in slots[i:] if t - start < window) for i, (start, _) in enumerate(slots)
        )
        assert busiest <= RATE, [(round(t - slots[0][0], 3), u) for t, u in slots]
        # Spacing still holds the long-run rate: no more than RATE units a second overall.
        assert slots[-1][0] - slots[0][0] >= (sum(sizes) - sizes[-1]) / RATE * 0.95
    finally:
        for limiter in limiters:
            await limiter.close()
        for db in databases:
            await db.close()


async def test_a_slot_after_the_lease_hands_the_message_back_instead_of_sending_it(
    tmp_path: Path, twilio: TimedTwilioServer
) -> None:
    """A claimed message whose rate-limit slot comes after its lease may already be taken by
    another worker as abandoned (reconciled, then resent): sending it too would reach the family
    twice (seen under load: 18 duplicates). It goes back to the queue, not counted as an attempt."""
    from sqlalchemy import select

    from gateway.storage.models import OutboxMessage

    config = write_config(
        tmp_path / "gw",
        channels={"sms": twilio_channel(twilio, rate_per_second=4, concurrency=8)},
        dispatch={"batch_size": 8, "lease_seconds": 1.0, "poll_seconds": 0.05},
    )
    await seed_outbox(config, 8)
    async with open_gateway(config) as gw:
        batch = await gw.dispatcher.claim(8)
        assert len(batch) == 8
        # Slots 0.25 s apart: the ones due in the lease's last tenth or later are handed back.
        result = await gw.dispatcher.process(batch)
        assert 1 <= result.sent <= 4 and result.sent + result.released == 8, result
        assert len(twilio.messages) == result.sent
        async with gw.db.session() as session:
            back = (
                await session.scalars(select(OutboxMessage).where(OutboxMessage.status == "queued"))
            ).all()
        assert len(back) == result.released
        assert all(row.attempts == 0 and row.lease_owner is None for row in back)
        await gw.dispatcher.run_until_idle()
    assert await status_counts(config) == {"sent": 8}
    assert set(twilio.accepted_bodies().values()) == {1}, "a message reached the provider twice"
