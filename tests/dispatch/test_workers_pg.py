"""Scale-out on PostgreSQL: several ``gateway worker`` processes share one outbox, a killed
worker loses nothing, and SIGTERM hands unsent claims back."""

from __future__ import annotations

from pathlib import Path

from dispatch_support import (
    GatewayProcess,
    TimedTwilioServer,
    held_by,
    seed_outbox,
    status_counts,
    status_details,
    twilio_channel,
    wait_until,
)

from gateway.testing.harness import write_config


def _config(folder: Path, url: str, twilio: TimedTwilioServer, **dispatch: object) -> Path:
    return write_config(
        folder,
        url,
        channels={"sms": twilio_channel(twilio, concurrency=16)},
        dispatch={"batch_size": 100, "lease_seconds": 4, "poll_seconds": 0.1, **dispatch},
    )


async def test_three_workers_send_5000_messages_exactly_once(
    tmp_path: Path, pg_url: str, twilio: TimedTwilioServer
) -> None:
    config = _config(tmp_path / "gw", pg_url, twilio)
    await seed_outbox(config, 5000)
    workers = [await GatewayProcess(config, name=f"w{i}").start() for i in range(3)]
    try:

        async def all_sent() -> bool:
            counts = await status_counts(config)
            return counts.get("queued", 0) + counts.get("sending", 0) + counts.get("unknown", 0) == 0

        assert await wait_until(all_sent, seconds=120, interval=0.5), [w.output()[-2000:] for w in workers]
    finally:
        for worker in workers:
            await worker.stop()
    accepted = twilio.accepted_bodies()
    assert len(accepted) == 5000
    assert set(accepted.values()) == {1}, "a message reached the provider twice"
    assert (await status_counts(config)) == {"sent": 5000}
    # Every worker took part (claims are shared with SKIP LOCKED, not serialised).
    senders = {
        line.split("worker ")[-1] for w in workers for line in w.output().splitlines() if "started" in line
    }
    assert len(senders) == 3


async def test_kill_9_mid_broadcast_loses_nothing(
    tmp_path: Path, pg_url: str, twilio: TimedTwilioServer
) -> None:
    total = 2000
    # Answers that take 50 ms, as a real API's do, keep the broadcast running a few seconds and
    # every worker's batch in flight, so a worker is killed holding a claimed batch.
    twilio.latency = 0.05
    config = _config(tmp_path / "gw", pg_url, twilio)
    await seed_outbox(config, total)
    first = await GatewayProcess(config, name="w1").start()
    second = await GatewayProcess(config, name="w2").start()
    replacement: GatewayProcess | None = None
    try:

        async def some_sent() -> bool:
            return len(twilio.messages) >= total // 4

        assert await wait_until(some_sent, seconds=60, interval=0.02)
        # Twilio takes the next messages but keeps their answers: every sending slot of both
        # workers is stuck, so the first one is killed holding a batch, whatever the load.
        twilio.lose_answer_next(30.0, times=64)

        async def first_holds_some() -> bool:
            return bool(await held_by(config, first.pid))

        assert await wait_until(first_holds_some, seconds=60, interval=0.02)
        first.kill()
        assert await first.wait(10) == -9
        # What the dead worker held (between its last claim and its death: the database says).
        orphans = await held_by(config, first.pid)
        assert orphans, "the killed worker held no message: the kill came between two batches"
        replacement = await GatewayProcess(config, name="w3").start()

        async def all_final() -> bool:
            counts = await status_counts(config)
            return counts.get("queued", 0) + counts.get("sending", 0) + counts.get("unknown", 0) == 0

        assert await wait_until(all_final, seconds=120, interval=0.5), second.output()[-3000:]
    finally:
        for worker in (second, replacement):
            if worker is not None:
                await worker.stop()
    accepted = twilio.accepted_bodies()
    duplicates = sum(n - 1 for n in accepted.values())
    print(f"\nkill -9 mid-broadcast: {total} messages, {duplicates} duplicate(s) at the provider")
    assert len(accepted) == total, "a message was lost"
    assert duplicates <= 16, "duplicates beyond the messages in flight (concurrency 16)"
    counts = await status_counts(config)
    assert counts == {"sent": total}
    # Each message the dead worker held was reconciled with Twilio before any resend: found
    # there ("reconciled…"), or, when Twilio never had it, re-queued after its unknown outcome.
    histories = await status_details(config, orphans)
    for message_id, history in histories.items():
        assert any("reconciled" in h or "re-queued after an unknown outcome" in h for h in history), (
            message_id,
            history,
        )


async def test_sigterm_finishes_the_batch_and_releases_the_rest(
    tmp_path: Path, pg_url: str, twilio: TimedTwilioServer
) -> None:
    # 5 messages/s: the claimed batch of 100 cannot be finished before SIGTERM.
    config = write_config(
        tmp_path / "gw",
        pg_url,
        channels={"sms": twilio_channel(twilio, rate_per_second=5)},
        dispatch={"batch_size": 100, "lease_seconds": 60, "poll_seconds": 0.1},
    )
    await seed_outbox(config, 100)
    worker = await GatewayProcess(config).start()

    async def started() -> bool:
        return len(twilio.messages) >= 3

    assert await wait_until(started, seconds=30, interval=0.05)
    worker.terminate()
    assert await worker.wait(15) == 0, worker.output()[-2000:]
    counts = await status_counts(config)
    sent = len(twilio.messages)
    assert sent < 100
    assert counts["sent"] == sent, counts
    assert counts["queued"] == 100 - sent, counts
    assert "sending" not in counts, "a claim was left behind"
