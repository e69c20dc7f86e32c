"""Several messages queued for one recipient: the per-recipient and the channel limits both
hold, and a message waiting for its recipient wastes no channel slot (it waits for its turn
before it takes one), so the other recipients keep the channel's rate."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

from dispatch_support import max_in_window
from sqlalchemy import insert, select

from gateway import Channel, OutboundMessage, SendResult, hookimpl
from gateway.outbox.rate_limit import LocalRateLimiter
from gateway.storage.models import OutboxMessage, utcnow
from gateway.testing.harness import open_gateway, write_config

RATE = 30
CHATS = 20
BURST = 3


class StampingChannel(Channel):
    """Takes every message at once and notes when it was handed over (the dispatcher takes a
    recipient's slot and hands the message over with nothing awaited in between)."""

    plugin = "stamping"
    sent: list[tuple[str, float]] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        """Note the chat and the time."""
        type(self).sent.append((message.address, time.monotonic()))
        return SendResult(provider_message_id=f"s-{message.message_id}", status="sent")


class StampingPlugin:
    """Registers :class:`StampingChannel`."""

    @hookimpl
    def gateway_channel_types(self) -> list[type[Channel]]:
        """The stamping channel."""
        return [StampingChannel]


class CountingLimiter(LocalRateLimiter):
    """The local limiter, counting recipient slots asked for while still taken."""

    refused = 0

    async def try_acquire(self, key: str, rate: float | None, units: float = 1.0) -> float:
        """Count refusals."""
        wait = await super().try_acquire(key, rate, units)
        if wait > 0:
            self.refused += 1
        return wait


async def test_bursts_to_one_chat_keep_both_limits_and_waste_no_channel_slot(tmp_path: Path) -> None:
    StampingChannel.sent = []
    config = write_config(
        tmp_path / "gw",
        channels={
            "telegram": {
                "plugin": "stamping",
                "endpoint": "telegram",
                "rate_per_second": RATE,
                "rate_per_recipient_per_second": 1,
                "concurrency": 8,
            }
        },
        dispatch={"batch_size": 500},
    )
    async with open_gateway(config, extra_plugins=(StampingPlugin(),)) as gw:
        now = utcnow()
        async with gw.db.session() as session:
            await session.execute(
                insert(OutboxMessage),
                [
                    {
                        "channel": "telegram",
                        "address": str(1000 + i // BURST),  # three in a row to each chat
                        "language": "en",
                        "body": f"message {i}",
                        "payload": {},
                        "status": "queued",
                        "due_at": now,
                        "reply_token": f"burst{i:04d}",
                    }
                    for i in range(CHATS * BURST)
                ],
            )
            await session.commit()
        limiter = gw.dispatcher.limiter = CountingLimiter()
        result = await gw.dispatcher.run_until_idle()
    assert result.sent == CHATS * BURST
    by_chat: dict[str, list[float]] = defaultdict(list)
    for chat, at in StampingChannel.sent:
        by_chat[chat].append(at)
    assert len(by_chat) == CHATS and all(len(times) == BURST for times in by_chat.values())
    # One chat: never two within a second (its slot is taken right before the hand-over).
    for times in by_chat.values():
        assert all(later - earlier >= 1.0 for earlier, later in zip(times, times[1:], strict=False))
    # The channel: never more than RATE in any second.
    assert max_in_window([at for _, at in StampingChannel.sent]) <= RATE
    # Every message waited for its chat before taking a channel slot: none was refused one.
    assert limiter.refused == 0


async def test_a_turn_beyond_the_lease_horizon_is_deferred_not_held(tmp_path: Path) -> None:
    """Five messages to one chat at 1/s with a 2-second lease: the first goes, the others are
    put back in the queue due when their chat is free (no attempt counted), not held past the
    lease."""
    StampingChannel.sent = []
    config = write_config(
        tmp_path / "gw",
        channels={
            "telegram": {"plugin": "stamping", "endpoint": "telegram", "rate_per_recipient_per_second": 1}
        },
        dispatch={"lease_seconds": 2},
    )
    async with open_gateway(config, extra_plugins=(StampingPlugin(),)) as gw:
        now = utcnow()
        async with gw.db.session() as session:
            await session.execute(
                insert(OutboxMessage),
                [
                    {
                        "channel": "telegram",
                        "address": "4242",
                        "language": "en",
                        "body": f"message {i}",
                        "payload": {},
                        "status": "queued",
                        "due_at": now,
                        "reply_token": f"defer{i}",
                    }
                    for i in range(5)
                ],
            )
            await session.commit()
        result = await gw.dispatcher.run_until_idle()
        async with gw.db.session() as session:
            rows = list(
                await session.execute(
                    select(OutboxMessage.status, OutboxMessage.attempts, OutboxMessage.due_at).order_by(
                        OutboxMessage.id
                    )
                )
            )
    assert (result.sent, result.released) == (1, 4)
    assert len(StampingChannel.sent) == 1
    waiting = [row for row in rows if row.status == "queued"]
    assert len(waiting) == 4
    assert all(row.attempts == 0 and row.due_at > now for row in waiting)
