"""Statuses of outbox messages and broadcasts, and the one rule that says where a broadcast is.

Every view (the CLI, the admin API, the liaison's pages) asks :func:`overall_status`, so a
broadcast never reads "sending" on one page and "queued" on another, and never "sending" days
before it is due.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum

__all__ = ["BroadcastStatus", "MessageStatus", "overall_status"]


class MessageStatus(StrEnum):
    """Where one outbox message is."""

    QUEUED = "queued"
    HELD = "held"
    SENDING = "sending"
    UNKNOWN = "unknown"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


class BroadcastStatus(StrEnum):
    """Where a broadcast is, as people read it."""

    PLANNING = "planning"
    SCHEDULED = "scheduled"
    """Due later: nothing has left yet (it can still be cancelled or edited)."""
    QUEUED = "queued"
    """Due now, nothing has left yet (waiting for a worker, quiet hours or a rate limit)."""
    SENDING = "sending"
    DONE = "done"
    EMPTY = "empty"
    CANCELLED = "cancelled"


#: Statuses of a message that has not left yet.
PENDING = (MessageStatus.QUEUED, MessageStatus.HELD, MessageStatus.SENDING, MessageStatus.UNKNOWN)
#: Statuses of a message that left (whatever became of it).
LEFT = (
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.READ,
    MessageStatus.UNDELIVERED,
    MessageStatus.FAILED,
)


def overall_status(
    stored: str,
    by_status: Mapping[str, int],
    send_at: datetime | None = None,
    now: datetime | None = None,
) -> BroadcastStatus:
    """A broadcast's status from its stored one and its messages' counts by status."""
    if stored in (BroadcastStatus.PLANNING, BroadcastStatus.EMPTY, BroadcastStatus.CANCELLED):
        return BroadcastStatus(stored)
    pending = sum(by_status.get(s, 0) for s in PENDING)
    left = sum(by_status.get(s, 0) for s in LEFT)
    if pending:
        if left:
            return BroadcastStatus.SENDING
        now = now or datetime.now(UTC)
        if send_at is not None and send_at > now:
            return BroadcastStatus.SCHEDULED
        return BroadcastStatus.QUEUED
    if not by_status:
        try:
            return BroadcastStatus(stored)
        except ValueError:
            return BroadcastStatus.QUEUED
    return BroadcastStatus.DONE
