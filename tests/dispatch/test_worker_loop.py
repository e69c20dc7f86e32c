"""The worker's loop (``OutboxDispatcher.run_forever``) on a channel without a rate: never more
sends in flight than the channel's ``concurrency``, every message sent once, and the next batch
claimed and started while the last one finishes (the connections do not wait for the database
between batches). A graceful stop with two batches held hands the unsent ones back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from gateway import Channel, OutboundMessage, SendResult, hookimpl
from gateway.storage.models import OutboxMessage, utcnow
from gateway.testing.harness import open_gateway, write_config

CONCURRENCY = 3
BATCH = 10


class SlowChannel(Channel):
    """Takes each message after ``delay`` seconds, noting which messages were in flight."""

    plugin = "slow"
    #: Long enough that the next batch's claim (a database round trip) ends well before the
    #: batch in flight does, even on a loaded machine.
    delay = 0.1
    in_flight: set[int] = set()
    peak = 0
    overlaps: list[frozenset[int]] = []
    sent: list[int] = []
    #: Set once this many messages were sent (the test's stop), when given.
    stop_at: tuple[asyncio.Event, int] | None = None

    async def send(self, message: OutboundMessage) -> SendResult:
        """Wait, then take it."""
        cls = type(self)
        cls.in_flight.add(message.message_id)
        cls.peak = max(cls.peak, len(cls.in_flight))
        cls.overlaps.append(frozenset(cls.in_flight))
        try:
            await asyncio.sleep(cls.delay)
        finally:
            cls.in_flight.discard(message.message_id)
        cls.sent.append(message.message_id)
        if cls.stop_at is not None and len(cls.sent) >= cls.stop_at[1]:
            cls.stop_at[0].set()
        return SendResult(provider_message_id=f"slow-{message.message_id}", status="sent")

    @classmethod
    def reset(cls) -> None:
        """Forget the last test's sends."""
        cls.in_flight, cls.peak, cls.overlaps, cls.sent, cls.stop_at = set(), 0, [], [], None


class SlowPlugin:
    """Registers :class:`SlowChannel`."""

    @hookimpl
    def gateway_channel_types(self) -> list[type[Channel]]:
        """The slow channel."""
        return [SlowChannel]


def _config(folder: Path) -> Path:
    return write_config(
        folder,
        channels={"sms": {"plugin": "slow", "endpoint": "phone", "concurrency": CONCURRENCY}},
        dispatch={"batch_size": BATCH, "poll_seconds": 0.05},
    )


async def _queue(gw: Any, count: int) -> list[int]:
    now = utcnow()
    async with gw.db.session() as session:
        await session.execute(
            insert(OutboxMessage),
            [
                {
                    "channel": "sms",
                    "address": f"+1913555{i:04d}",
                    "language": "en",
                    "body": f"message {i}",
                    "payload": {},
                    "status": "queued",
                    "due_at": now,
                }
                for i in range(count)
            ],
        )
        await session.commit()
        return list(await session.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id)))


async def _statuses(gw: Any) -> dict[str, int]:
    async with gw.db.session() as session:
        rows = await session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        )
        return {status: count for status, count in rows}


async def test_batches_overlap_within_the_channel_concurrency(tmp_path: Path) -> None:
    SlowChannel.reset()
    async with open_gateway(_config(tmp_path / "gw"), extra_plugins=(SlowPlugin(),)) as gw:
        ids = await _queue(gw, 4 * BATCH)
        stop = asyncio.Event()
        SlowChannel.stop_at = (stop, len(ids))
        await asyncio.wait_for(gw.dispatcher.run_forever(stop), timeout=30)
        statuses = await _statuses(gw)
    assert sorted(SlowChannel.sent) == ids  # each once
    assert statuses == {"sent": len(ids)}
    assert SlowChannel.peak == CONCURRENCY  # used, never exceeded
    # Claims are in id order: a message of the second batch went out while one of the first
    # was still in flight.
    first, second = set(ids[:BATCH]), set(ids[BATCH : 2 * BATCH])
    assert any(together & first and together & second for together in SlowChannel.overlaps)


async def test_a_graceful_stop_hands_back_what_two_held_batches_did_not_send(tmp_path: Path) -> None:
    SlowChannel.reset()
    SlowChannel.delay = 0.2
    try:
        async with open_gateway(_config(tmp_path / "gw"), extra_plugins=(SlowPlugin(),)) as gw:
            ids = await _queue(gw, 4 * BATCH)
            stop = asyncio.Event()
            SlowChannel.stop_at = (stop, CONCURRENCY)
            await asyncio.wait_for(gw.dispatcher.run_forever(stop), timeout=30)
            await gw.dispatcher.release_claims()
            statuses = await _statuses(gw)
    finally:
        SlowChannel.delay = 0.1
    sent = len(SlowChannel.sent)
    assert CONCURRENCY <= sent < len(ids)
    # Sends in flight at the stop finish; nothing else goes, nothing stays leased.
    assert statuses == {"sent": sent, "queued": len(ids) - sent}
