"""The outbox dispatcher: claim due messages with a lease, respect rate limits, send through
the channel plugins, and record what happened. The one place that turns a channel's
:class:`~gateway.errors.SendError` into a status (retry with backoff, fail, or unknown).

Claims: ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`` on
PostgreSQL, so several workers share one outbox; on SQLite the single UPDATE is the
single-writer path. A lease that expires (a worker died) puts its messages back in the queue;
for channels that can :meth:`~gateway.channels.Channel.reconcile`, such messages first go
through reconciliation (the provider may have them already). Outcomes are recorded as they
come in, in groups of up to the channel's ``concurrency`` (or what arrived within
``RECORD_LINGER_SECONDS``) per transaction, so a killed worker leaves at most about twice
``concurrency`` messages sent but not recorded: the only possible duplicates. (Channels that
can reconcile record what arrived within ``RECORD_LINGER_SECONDS``: their unrecorded sends
are reconciled with the provider, not resent.)

``unknown`` messages (a timeout after the request left) are reconciled before any resend:
the channel asks its provider; "it has it" → that status; "cannot tell" → re-queued once the
lease period since the attempt has passed, counted as ``requeued_unknown`` (the provider may
have accepted the first attempt: a possible duplicate that no protocol lets us rule out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Select, and_, bindparam, delete, func, insert, null, or_, select, update

from gateway.channels import (
    DELIVERY_STATUS_ORDER,
    Attachment,
    Button,
    Channel,
    OutboundMessage,
    StatusOutcome,
    StatusUpdate,
)
from gateway.contract import MessageStatusEvent
from gateway.errors import DeliveryUnknownError, SendError
from gateway.outbox.rate_limit import RateLimiter, make_rate_limiter
from gateway.privacy import mask_address
from gateway.storage.endpoints import blocked_pairs, set_channel_state
from gateway.storage.models import OutboxMessage, PendingStatusReport, StatusEvent, utcnow

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["ClaimedMessage", "DispatchResult", "OutboxDispatcher"]

log = logging.getLogger("gateway.outbox")
#: What a provider's answer to ``reconcile`` means for us: it has the message → ``sent``.
RECONCILED_AS_SENT = frozenset({"queued", "accepted", "scheduled", "sending", "sent"})
#: Seconds between reconciliation attempts of one ``unknown`` message.
RECONCILE_RETRY_SECONDS = 2.0
#: Longest wait for a group of outcomes to fill before it is recorded anyway.
RECORD_LINGER_SECONDS = 0.05
#: The outbox table, used through SQLAlchemy Core on the hot path (claim, record): plain rows
#: instead of ORM entities.
OUTBOX = OutboxMessage.__table__
STATUS_EVENTS = StatusEvent.__table__
PENDING_REPORTS = PendingStatusReport.__table__


def _insert_ignoring(dialect: str, table: Any) -> Any:
    """``INSERT`` of the dialect (for ``on_conflict_do_nothing``)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table)


class ClaimedMessage(NamedTuple):
    """An outbox row as claimed by a worker (a plain snapshot, not an ORM entity): the columns
    that sending, recording and fallback need, with the values after the claim. A named tuple:
    made from each claimed row at thousands a second."""

    id: int
    broadcast_id: int | None
    family_id: int | None
    guardian_id: int | None
    endpoint_id: int | None
    channel: str
    address: str
    language: str
    subject: str | None
    body: str
    html: str | None
    payload: dict[str, Any] | None
    conversation: bool
    due_at: datetime
    attempts: int
    provider_message_id: str | None
    reply_token: str | None
    created_at: datetime
    # What a claim for sending sets alike on every row: not read back (see CLAIMED_AS_SET).
    status: str
    lease_owner: str | None
    lease_until: datetime | None
    updated_at: datetime | None


#: The columns a claim returns, in :class:`ClaimedMessage` field order.
CLAIM_COLUMNS = tuple(OUTBOX.c[name] for name in ClaimedMessage._fields)
#: The last fields, which a claim for sending sets to the same values on every row it takes:
#: it reads back only the columns before them and adds the values it set.
CLAIMED_AS_SET = ("status", "lease_owner", "lease_until", "updated_at")
SEND_CLAIM_COLUMNS = CLAIM_COLUMNS[: -len(CLAIMED_AS_SET)]


def due_candidates(channels: list[str], now: datetime) -> Select[tuple[int]]:
    """Queued messages of ``channels`` due by ``now``, oldest first: what a claim takes. It
    walks ``ix_outbox_due`` (status, due_at, id) in order on SQLite and PostgreSQL alike."""
    c = OUTBOX.c
    return (
        select(c.id)
        .where(c.status == "queued", c.due_at <= now, c.channel.in_(channels))
        .order_by(c.due_at, c.id)
    )


def _claimed(rows: Any, as_set: tuple[Any, ...] = ()) -> list[ClaimedMessage]:
    """Claimed rows as :class:`ClaimedMessage`; ``as_set``: the values of the trailing fields
    the claim set alike (when the rows do not carry them)."""
    make = ClaimedMessage._make
    if as_set:
        return [make((*row, *as_set)) for row in rows]
    return [make(row) for row in rows]


@dataclass
class DispatchResult:
    """Counts of one dispatch run."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    unknown: int = 0
    cancelled: int = 0
    released: int = 0

    def add(self, other: DispatchResult) -> None:
        """Accumulate."""
        for name in ("sent", "failed", "retried", "unknown", "cancelled", "released"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def handled(self) -> int:
        """Messages that left the queue or were rescheduled."""
        return self.sent + self.failed + self.retried + self.unknown + self.cancelled


class OutboxDispatcher:
    """Claims and sends outbox messages for every configured channel."""

    def __init__(self, gateway: Gateway, limiter: RateLimiter | None = None) -> None:
        self.gateway = gateway
        self.config = gateway.config.dispatch
        self.worker_id = f"{socket.gethostname()[:30]}:{os.getpid()}:{id(self) & 0xFFFFFF:x}"
        self.limiter: RateLimiter = limiter or make_rate_limiter(gateway)
        self.metrics = gateway.metrics
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._stop: asyncio.Event | None = None
        self._last_reconcile = 0.0
        self._turns: dict[str, _Turn] = {}
        self._lease_margin = timedelta(seconds=min(self.config.lease_seconds / 10, 1.0))

    # -- claiming -----------------------------------------------------------------------
    async def claim(self, limit: int, channels: list[str] | None = None) -> list[ClaimedMessage]:
        """Lease up to ``limit`` due messages to this worker: queued ones, and ``sending`` ones
        whose lease expired on channels that cannot reconcile."""
        db = self.gateway.db
        now = utcnow()
        lease_until = now + timedelta(seconds=self.config.lease_seconds)
        names = channels or list(self.gateway.channels)
        # Expired leases of channels that can reconcile go through expire_leases() instead.
        blind = [n for n in names if n not in self._reconciling_channels(names)]
        c = OUTBOX.c
        # Two candidate queries, one per status, so each walks ix_outbox_due (status, due_at)
        # in order instead of scanning and sorting every row of the channel (a single OR of
        # both made SQLite do that: quadratic over a large broadcast).
        expired = (
            select(c.id)
            .where(c.status == "sending", c.lease_until < now, c.channel.in_(blind))
            .order_by(c.due_at, c.id)
        )
        queued = due_candidates(names, now)
        values = {
            "status": "sending",
            "lease_owner": self.worker_id,
            "lease_until": lease_until,
            "attempts": c.attempts + 1,
            "updated_at": now,
        }
        rows: list[ClaimedMessage] = []
        async with db.session() as session:
            for query in (expired, queued) if blind else (queued,):
                wanted = limit - len(rows)
                if wanted <= 0:
                    break
                candidates = query.limit(wanted)
                if not db.is_sqlite:
                    candidates = candidates.with_for_update(skip_locked=True)
                statement = (
                    update(OUTBOX)
                    .where(c.id.in_(candidates.scalar_subquery()))
                    .values(values)
                    .returning(*SEND_CLAIM_COLUMNS)
                )
                as_set = ("sending", self.worker_id, lease_until, now)
                rows.extend(_claimed(await session.execute(statement), as_set))
            await session.commit()
        rows.sort(key=lambda r: (r.due_at, r.id))
        return rows

    def _reconciling_channels(self, channels: list[str] | None = None) -> list[str]:
        names = channels or list(self.gateway.channels)
        return [
            n
            for n in names
            if n in self.gateway.channels
            and type(self.gateway.channels[n]).reconcile is not Channel.reconcile
        ]

    async def expire_leases(self, channels: list[str] | None = None) -> int:
        """Messages of reconciling channels whose lease expired (their worker died mid-send)
        become ``unknown``, so the provider is asked before any resend; returns how many."""
        names = self._reconciling_channels(channels)
        if not names:
            return 0
        now = utcnow()
        async with self.gateway.db.session() as session:
            result = await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.status == "sending",
                    OutboxMessage.lease_until < now,
                    OutboxMessage.channel.in_(names),
                )
                .values(status="unknown", lease_owner=None, lease_until=now)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        count = int(result.rowcount or 0)  # type: ignore[attr-defined]
        if count:
            log.warning("%d message(s) with an expired lease will be reconciled before any resend", count)
        return count

    # -- running ------------------------------------------------------------------------
    async def run_until_idle(
        self, channels: list[str] | None = None, max_batches: int | None = None
    ) -> DispatchResult:
        """Send everything due now, then return (CLI, demo, tests)."""
        total = DispatchResult()
        batches = 0
        await self.expire_leases(channels)
        await self.reconcile_unknown(channels)
        while max_batches is None or batches < max_batches:
            batch = await self.claim(self.config.batch_size, channels)
            if not batch:
                break
            total.add(await self.process(batch))
            batches += 1
        return total

    async def run_forever(self, stop: asyncio.Event, channels: list[str] | None = None) -> None:
        """Claim and send until ``stop`` is set. The batch in flight is finished; messages of it
        still waiting for their rate-limit slot are released (the caller then calls
        :meth:`release_claims` for anything left)."""
        self._stop = stop
        in_flight: asyncio.Task[None] | None = None
        started: list[asyncio.Task[None]] = []  # every batch task, finished ones dropped
        try:
            while not stop.is_set():
                try:
                    await self._housekeeping(channels)
                    batch = await self.claim(self.config.batch_size, channels)
                except Exception:
                    log.exception("claiming from the outbox failed; retrying")
                    batch = []
                unpaced = bool(batch) and self._unpaced(batch)
                if unpaced:
                    # Sent while the batch before it finishes and the next is claimed: the
                    # connections never wait for the database. Its sends queue behind the
                    # earlier batch's for the channel's concurrency slots (first come, first
                    # served), and at most two batches are held at once.
                    task = asyncio.create_task(self._process_logged(batch, unpaced))
                    started = [t for t in started if not t.done()] + [task]
                    if in_flight is not None:
                        await in_flight
                    in_flight = task
                    continue
                if in_flight is not None:
                    await in_flight
                    in_flight = None
                if batch:
                    await self._process_logged(batch, unpaced)
                    continue
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.config.poll_seconds)
                except TimeoutError:
                    pass
        finally:
            # Whatever ends the loop (a stop, or a cancellation while waiting for the earlier
            # batch), no batch is left sending unwatched.
            await asyncio.gather(*started, return_exceptions=True)
            self._stop = None

    async def _process_logged(self, batch: list[ClaimedMessage], unpaced: bool) -> None:
        try:
            await self.process(batch, unpaced)
        except Exception:
            log.exception("processing a batch failed; its leases will expire")

    def _concurrency(self, name: str) -> int:
        channel = self.gateway.channels.get(name)
        return channel.settings.concurrency if channel is not None else 1

    def _unpaced(self, batch: list[ClaimedMessage]) -> bool:
        """Whether no channel of ``batch`` is paced (a rate or a per-recipient rate). Such a
        batch may be sent alongside the batch before it (a paced one would wait for its slots
        behind a whole other batch and see its leases run out), by a few lanes per channel."""
        for name in {row.channel for row in batch}:
            channel = self.gateway.channels.get(name)
            if channel is None or channel.rate_per_second or channel.rate_per_recipient_per_second:
                return False
        return True

    async def _housekeeping(self, channels: list[str] | None) -> None:
        mono = time.monotonic()
        if mono - self._last_reconcile < min(RECONCILE_RETRY_SECONDS, self.config.lease_seconds / 2):
            return
        self._last_reconcile = mono
        await self.expire_leases(channels)
        await self.reconcile_unknown(channels)

    async def process(self, batch: list[ClaimedMessage], unpaced: bool | None = None) -> DispatchResult:
        """Send a claimed batch concurrently; outcomes are recorded as they complete, grouped
        into one transaction per flush (group commit). ``unpaced``: what :meth:`_unpaced` says
        of the batch, when the caller already asked."""
        if unpaced is None:
            unpaced = self._unpaced(batch)
        opted_out = await self._opted_out_endpoints(batch)
        pending: list[_Outcome] = []
        summary = DispatchResult()
        wake = asyncio.Event()
        full = asyncio.Event()
        done = False
        group_size = self._record_group_size(batch)

        def done_one(outcome: _Outcome) -> None:
            pending.append(outcome)
            setattr(summary, outcome.kind, getattr(summary, outcome.kind) + 1)
            if len(pending) >= group_size:
                full.set()
            wake.set()

        async def recorder() -> None:
            while True:
                await wake.wait()
                if not done and len(pending) < group_size:
                    # Let a group gather (one transaction for it, not one per message): until
                    # it is as large as the sends in flight, or RECORD_LINGER_SECONDS passed.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(full.wait(), RECORD_LINGER_SECONDS)
                wake.clear()
                full.clear()
                if pending:
                    group = pending[:]
                    pending.clear()
                    await self._record(group)
                if done and not pending:
                    return

        task = asyncio.create_task(recorder())
        try:
            if unpaced:
                # As many lanes per channel as it may have sends in flight, each taking the
                # channel's next message in turn: a few coroutines instead of a task per message.
                queues: dict[str, deque[ClaimedMessage]] = {}
                for row in batch:
                    queues.setdefault(row.channel, deque()).append(row)

                async def lane(name: str, queue: deque[ClaimedMessage]) -> None:
                    # A lane holds one of the channel's concurrency slots while its queue
                    # lasts (the lanes of a next batch take them as this batch's finish).
                    # Unpaced batches are of configured channels only (see _unpaced).
                    async with self._semaphore(self.gateway.channels[name]):
                        while queue:
                            done_one(await self._send(queue.popleft(), opted_out, slot_held=True))

                await asyncio.gather(
                    *(
                        lane(name, queue)
                        for name, queue in queues.items()
                        for _ in range(min(len(queue), self._concurrency(name)))
                    )
                )
            else:
                # Paced channels: every message waits for its own turn (see _send_in_turn).
                async def send(row: ClaimedMessage) -> None:
                    done_one(await self._send_in_turn(row, opted_out))

                await asyncio.gather(*(send(row) for row in batch))
        finally:
            done = True
            wake.set()
            full.set()
            await task
        return summary

    def _record_group_size(self, batch: list[ClaimedMessage]) -> int:
        """Outcomes recorded per transaction: the sends that can be in flight at once for the
        batch's channels (so at most about that many are sent but not yet recorded). When
        every channel of the batch can reconcile (a killed worker's unrecorded sends are asked
        about before any resend: no duplicate), groups are bounded by the linger alone."""
        names = {row.channel for row in batch}
        if names <= set(self._reconciling_channels(list(names))):
            return len(batch)
        in_flight = sum(self._concurrency(n) for n in names if n in self.gateway.channels)
        return max(1, min(len(batch), in_flight))

    async def _opted_out_endpoints(self, batch: list[ClaimedMessage]) -> set[tuple[int, str]]:
        """``(endpoint id, channel)`` of the batch whose endpoint is opted out or invalid on
        that channel (or everywhere)."""
        pairs = {
            (r.endpoint_id, r.channel)
            for r in batch
            if r.endpoint_id and not (r.payload or {}).get("compliance")
        }
        if not pairs:
            return set()
        async with self.gateway.db.session() as session:
            return await blocked_pairs(session, pairs)

    def _semaphore(self, channel: Channel) -> asyncio.Semaphore:
        sem = self._semaphores.get(channel.name)
        if sem is None:
            sem = self._semaphores[channel.name] = asyncio.Semaphore(channel.settings.concurrency)
        return sem

    async def _sleep(self, seconds: float) -> bool:
        """Sleep; False when a graceful stop began meanwhile."""
        stop = self._stop
        if stop is None:
            await asyncio.sleep(seconds)
            return True
        if stop.is_set():
            return False
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except TimeoutError:
            return True
        return False

    async def _pace(self, channel: Channel, row: ClaimedMessage, units: int) -> bool:
        """Wait for the channel's overall slot, then take the recipient's (when free now; else
        the channel slot is given up and both are tried again). A slot this process reaches
        too late (the event loop stalled) is given up too, before the recipient's is taken:
        sending late would bunch this message with the on-time ones after it, and the
        recipient's slot must be taken when the message really goes. False when stopping."""
        tolerance = self.limiter.margin / 2
        while True:
            target = time.monotonic()
            if channel.rate_per_second:
                wait = await self.limiter.reserve(f"channel:{channel.name}", channel.rate_per_second, units)
                # The limiter's "now" lies within the round trip: take its middle.
                target = (target + time.monotonic()) / 2 + wait
                if wait > 0 and not await self._sleep(wait):
                    return False
                if time.monotonic() - target > tolerance:
                    self.metrics.late_slots.labels(channel=channel.name).inc()
                    continue
            if channel.rate_per_recipient_per_second:
                busy = await self.limiter.try_acquire(
                    f"recipient:{channel.name}:{row.address}", channel.rate_per_recipient_per_second
                )
                if busy > 0:
                    if not await self._sleep(busy):
                        return False
                    continue
            return True

    def _lease_running_out(self, row: ClaimedMessage) -> bool:
        """Whether ``row``'s lease ends within its last tenth (a second at most): too late to
        start a send that another worker could otherwise repeat."""
        if row.lease_until is None:
            return False
        return utcnow() >= row.lease_until - self._lease_margin

    async def _send_in_turn(self, row: ClaimedMessage, opted_out: set[tuple[int, str]]) -> _Outcome:
        """:meth:`_send`, but on a channel with a per-recipient limit, messages to one recipient
        take turns, and each waits for its recipient to be free *before* it takes a concurrency
        slot or a channel slot: a burst to one chat holds neither while it waits, so the
        channel's other recipients keep its full rate. A message whose turn is further away than
        a quarter of the lease is deferred (back in the queue, due then), not held."""
        channel = self.gateway.channels.get(row.channel)
        rate = channel.rate_per_recipient_per_second if channel is not None else None
        if channel is None or not rate:
            return await self._send(row, opted_out)
        key = f"recipient:{channel.name}:{row.address}"
        horizon = self.config.lease_seconds / 4
        turn = self._turns.setdefault(key, _Turn())
        ahead = turn.waiting * self.limiter.interval(rate, 1)
        if ahead > horizon:
            return _Outcome(row, "released", "queued", due_at=utcnow() + timedelta(seconds=ahead))
        turn.waiting += 1
        try:
            async with turn.lock:
                wait = await self.limiter.peek(key, rate)
                if wait > horizon:
                    return _Outcome(row, "released", "queued", due_at=utcnow() + timedelta(seconds=wait))
                # A millisecond over: a timer may fire a hair early, and the slot must be free.
                if wait > 0 and not await self._sleep(wait + 0.001):
                    return _Outcome(row, "released", "queued")
                return await self._send(row, opted_out)
        finally:
            turn.waiting -= 1
            if not turn.waiting:
                self._turns.pop(key, None)

    async def _send(
        self, row: ClaimedMessage, opted_out: set[tuple[int, str]], slot_held: bool = False
    ) -> _Outcome:
        """Send one claimed message in one of its channel's concurrency slots (``slot_held``:
        the caller holds one for it already)."""
        channel = self.gateway.channels.get(row.channel)
        if channel is None:
            return _Outcome(
                row,
                "failed",
                "failed",
                code="no-channel",
                reason=f"channel {row.channel!r} is not configured",
            )
        if (row.endpoint_id, row.channel) in opted_out and not (row.payload or {}).get("compliance"):
            # Compliance replies (the STOP confirmation) go even to an opted-out endpoint.
            return _Outcome(row, "cancelled", "cancelled", reason="endpoint opted out or invalid")
        if slot_held:
            return await self._send_in_slot(channel, row)
        async with self._semaphore(channel):
            return await self._send_in_slot(channel, row)

    async def _send_in_slot(self, channel: Channel, row: ClaimedMessage) -> _Outcome:
        if self._stop is not None and self._stop.is_set():
            return _Outcome(row, "released", "queued")
        message = to_outbound(row)
        paced = channel.rate_per_second or channel.rate_per_recipient_per_second
        if paced and not await self._pace(channel, row, channel.cost_units(message)):
            return _Outcome(row, "released", "queued")
        if self._lease_running_out(row):
            # Its slot came at the end of the lease (a slow rate, a loaded machine): another
            # worker may take it as abandoned now and resend it. Handed back, not sent twice.
            self.metrics.late_slots.labels(channel=channel.name).inc()
            return _Outcome(row, "released", "queued")
        started = time.perf_counter()
        try:
            result = await channel.send(message)
        except DeliveryUnknownError as exc:
            log.warning("message %s to %s: delivery unknown (%s)", row.id, mask_address(row.address), exc)
            self.metrics.message("unknown", channel.name)
            return _Outcome(row, "unknown", "unknown", code=exc.code, reason=exc.reason)
        except SendError as exc:
            return self._failure(row, exc)
        except Exception as exc:  # a plugin bug must not lose the message
            log.exception("channel %s crashed sending message %s", channel.name, row.id)
            return self._failure(row, SendError(f"{type(exc).__name__}: {exc}", retryable=True))
        finally:
            self.metrics.observe_send_latency(channel.name, time.perf_counter() - started)
        status = "delivered" if result.status == "delivered" else "sent"
        self.metrics.message("sent", channel.name)
        return _Outcome(row, "sent", status, provider_id=result.provider_message_id, units=result.segments)

    def _failure(self, row: ClaimedMessage, exc: SendError) -> _Outcome:
        age = utcnow() - row.created_at
        too_old = age > timedelta(hours=self.config.max_age_hours)
        if exc.retryable and row.attempts < self.config.max_attempts and not too_old:
            delay = min(
                self.config.backoff_max_seconds,
                self.config.backoff_base_seconds * 2 ** max(row.attempts - 1, 0),
            )
            delay = delay * random.uniform(0.5, 1.0)
            if exc.retry_after is not None:
                delay = max(delay, exc.retry_after)
            self.metrics.message("retried", row.channel)
            return _Outcome(
                row,
                "retried",
                "queued",
                code=exc.code,
                reason=exc.reason,
                due_at=utcnow() + timedelta(seconds=delay),
            )
        if not exc.retryable:
            reason = exc.reason
        elif too_old:
            reason = f"gave up after {self.config.max_age_hours:g} hours: {exc.reason}"
        else:
            reason = f"gave up after {row.attempts} attempts: {exc.reason}"
        log.info("message %s to %s failed: [%s] %s", row.id, mask_address(row.address), exc.code, exc.reason)
        self.metrics.message("failed", row.channel)
        return _Outcome(
            row, "failed", "failed", code=exc.code, reason=reason, endpoint_state=exc.endpoint_state
        )

    # -- reconciliation -----------------------------------------------------------------
    async def reconcile_unknown(self, channels: list[str] | None = None, limit: int = 200) -> DispatchResult:
        """Ask providers about ``unknown`` messages that are due for it (see the module doc)."""
        summary = DispatchResult()
        names = channels or list(self.gateway.channels)
        now = utcnow()
        db = self.gateway.db
        c = OUTBOX.c
        candidates = (
            select(c.id)
            .where(
                c.status == "unknown",
                c.channel.in_(names),
                or_(c.lease_until.is_(None), c.lease_until <= now),
            )
            .order_by(c.id)
            .limit(limit)
        )
        if not db.is_sqlite:
            candidates = candidates.with_for_update(skip_locked=True)
        claim = (
            update(OUTBOX)
            .where(c.id.in_(candidates.scalar_subquery()))
            .values(
                lease_owner=self.worker_id,
                lease_until=now + timedelta(seconds=self.config.lease_seconds),
            )
            .returning(*CLAIM_COLUMNS)
        )
        async with db.session() as session:
            rows = _claimed(await session.execute(claim))
            await session.commit()
        if not rows:
            return summary
        outcomes = await asyncio.gather(*(self._reconcile_one(row) for row in rows))
        await self._record([o for o in outcomes if o is not None], keep_updated_at=True)
        for o in outcomes:
            if o is not None:
                setattr(summary, o.kind, getattr(summary, o.kind) + 1)
        return summary

    async def _reconcile_one(self, row: ClaimedMessage) -> _Outcome | None:
        channel = self.gateway.channels.get(row.channel)
        answer: str | None = None
        if channel is not None:
            try:
                answer = await channel.reconcile(to_outbound(row), row.provider_message_id)
            except Exception:
                log.exception("channel %s crashed reconciling message %s", row.channel, row.id)
        if answer is not None:
            self.metrics.message("reconciled", row.channel)
            if answer in RECONCILED_AS_SENT:
                reason = "reconciled: the provider has it"
                return _Outcome(row, "sent", "sent", reason=reason, reconciled=True)
            if answer in DELIVERY_STATUS_ORDER:
                kind = "failed" if answer in ("failed", "undelivered") else "sent"
                return _Outcome(row, kind, answer, reason="reconciled with the provider", reconciled=True)
        went_unknown = row.updated_at or utcnow()
        if utcnow() - went_unknown >= timedelta(seconds=self.config.lease_seconds):
            # The provider cannot tell: resend. It may have the first attempt (a duplicate).
            self.metrics.message("requeued_unknown", row.channel)
            log.warning("message %s: provider cannot tell whether it has it; re-queued", row.id)
            return _Outcome(
                row,
                "retried",
                "queued",
                code="unknown",
                reason="re-queued after an unknown outcome",
                due_at=utcnow(),
                reconciled=True,
            )
        # Ask again later; the row stays unknown.
        return _Outcome(row, "unknown", "unknown", due_at=None, retry_reconcile=True)

    # -- recording ----------------------------------------------------------------------
    async def _record(self, outcomes: list[_Outcome], keep_updated_at: bool = False) -> None:
        if not outcomes:
            return
        now = utcnow()
        updates: list[_RecordRow] = []
        released: list[int] = []
        events: list[dict[str, Any]] = []
        endpoint_states: list[_Outcome] = []
        fallbacks: list[_Outcome] = []
        deferred: list[dict[str, Any]] = []
        for o in outcomes:
            if o.kind == "released" and o.due_at is not None:
                deferred.append({"b_id": o.row.id, "b_due": o.due_at})
                continue
            if o.kind == "released":
                released.append(o.row.id)
                continue
            # Per row only what differs: a column set to NULL is named in ``nulls`` (written
            # into the statement), and "sent now" reuses the update time's parameter (each
            # datetime parameter costs a conversion per row, at thousands of rows a second).
            values: dict[str, Any] = {"b_id": o.row.id, "status": o.status}
            nulls = ["lease_owner"]
            stamped = not keep_updated_at or o.reconciled
            if stamped:
                values["b_now"] = now
            if o.retry_reconcile:
                # Asked again later: its error columns are left as they are.
                values["lease_until"] = now + timedelta(seconds=RECONCILE_RETRY_SECONDS)
                updates.append(_RecordRow(values, nulls, stamped, sent_now=False))
                continue
            for column, value in (("error_code", o.code), ("error_reason", o.reason)):
                if value is None:
                    nulls.append(column)
                else:
                    values[column] = value
            if o.status == "unknown":
                # Reconciliation may start once the provider had a moment to settle.
                values["lease_until"] = now + timedelta(seconds=RECONCILE_RETRY_SECONDS)
            else:
                nulls.append("lease_until")
            sent_now = False
            if o.kind == "sent":
                if not o.reconciled:
                    values["provider_message_id"] = o.provider_id
                    if o.units:
                        values["cost_units"] = o.units
                if stamped:
                    sent_now = True
                else:
                    values["sent_at"] = now
            if o.due_at is not None:
                values["due_at"] = o.due_at
            updates.append(_RecordRow(values, nulls, stamped, sent_now))
            detail = f"[{o.code}] {o.reason}" if o.code else o.reason
            events.append({"message_id": o.row.id, "status": o.status, "detail": detail, "at": now})
            if o.endpoint_state and o.row.endpoint_id:
                endpoint_states.append(o)
            if o.status in ("failed", "undelivered") and (o.row.payload or {}).get("fallback"):
                fallbacks.append(o)
        # Core executemany: one UPDATE per shape of row (outcomes of a kind share theirs).
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for row in updates:
            groups.setdefault(row.shape(), []).append(row.values)
        c = OUTBOX.c
        async with self.gateway.db.session() as session:
            for (_, nulls, stamped, sent_now), group in groups.items():
                statement = update(OUTBOX).where(c.id == bindparam("b_id")).values(
                    {column: null() for column in nulls}
                )
                if stamped:
                    stamp = bindparam("b_now", type_=c.updated_at.type)
                    statement = statement.values(updated_at=stamp)
                    if sent_now:
                        statement = statement.values(sent_at=stamp)
                await session.execute(statement, group)
            if released:
                await session.execute(
                    update(OUTBOX)
                    .where(c.id.in_(released), c.lease_owner == self.worker_id)
                    .values(status="queued", lease_owner=None, lease_until=None, attempts=c.attempts - 1)
                )
            if deferred:
                # Back in the queue, due when the recipient's turn comes: not an attempt.
                await session.execute(
                    update(OUTBOX)
                    .where(c.id == bindparam("b_id"), c.lease_owner == self.worker_id)
                    .values(
                        status="queued",
                        lease_owner=None,
                        lease_until=None,
                        attempts=c.attempts - 1,
                        due_at=bindparam("b_due"),
                    ),
                    deferred,
                )
            if events:
                await session.execute(insert(STATUS_EVENTS), events)
            for o in endpoint_states:
                # On the channel that said so only (gateway.storage.endpoints).
                await set_channel_state(
                    session, [o.row.endpoint_id], o.row.channel, o.endpoint_state, o.reason or ""
                )
            for o in fallbacks:
                await self._fall_back(session, o.row)
            await session.commit()
        if self.gateway.observed("gateway_message_status"):
            for o in outcomes:
                if o.kind == "released" or o.retry_reconcile:
                    continue
                await self.gateway.message_status(_status_event(o))
        stored_ids = [
            (o.row.channel, o.provider_id)
            for o in outcomes
            if o.kind == "sent" and not o.reconciled and o.provider_id
        ]
        if stored_ids:
            try:
                await self.apply_pending_reports(stored_ids)
            except Exception:  # the reports stay kept; the webhook side or a later send retries
                log.exception("applying kept delivery reports failed")

    async def _fall_back(self, session: Any, row: OutboxMessage | ClaimedMessage) -> None:
        """Queue the message again on the guardian's next usable endpoint (policy ``preferred``)."""
        from gateway.outbox.fallback import requeue_on_next_endpoint

        await requeue_on_next_endpoint(self.gateway, session, row)

    # -- delivery reports ---------------------------------------------------------------
    async def apply_status(self, report: StatusUpdate) -> StatusOutcome:
        """Apply a provider's delivery report (see :class:`~gateway.channels.StatusOutcome`).

        Statuses never move backwards and a repeat changes nothing: the move is one
        conditional ``UPDATE`` (status still lower), so two processes applying the same
        report cannot both record it. A report for a provider id no message carries yet (the
        provider called back before the send returned) is kept in ``pending_status_reports``
        and applied by :meth:`apply_pending_reports` when :meth:`_record` stores the id.
        """
        async with self.gateway.db.session() as session:
            found = await session.execute(
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.channel == report.channel,
                    OutboxMessage.provider_message_id == report.provider_message_id,
                )
                .limit(1)
            )
            message_id = found.scalar()
            if message_id is None:
                await self._keep_pending(session, report)
                await session.commit()
            else:
                applied = await self._apply(session, message_id, report)
                await session.commit()
        if message_id is None:
            self.gateway.metrics.status_reports_deferred.labels(channel=report.channel).inc()
            # The id may have been stored between our look-up and our commit: whoever writes
            # second (this report, or the send's outcome) finds the other and applies.
            late = await self.apply_pending_reports([(report.channel, report.provider_message_id)])
            return StatusOutcome.APPLIED if late else StatusOutcome.PENDING
        if applied is None:
            return StatusOutcome.REPEAT
        await self._status_hook(message_id, report, applied)
        return StatusOutcome.APPLIED

    async def _keep_pending(self, session: Any, report: StatusUpdate) -> None:
        """Store a report for later; the same status for the same id is stored once."""
        values = {
            "channel": report.channel,
            "provider_message_id": report.provider_message_id,
            "status": report.status,
            "error_code": report.error_code,
            "error_reason": report.error_reason,
            "endpoint_state": report.endpoint_state,
            "retry_after": report.retry_after,
            "occurred_at": report.occurred_at,
            "received_at": utcnow(),
        }
        await session.execute(
            _insert_ignoring(self.gateway.db.dialect, PENDING_REPORTS)
            .values(values)
            .on_conflict_do_nothing(index_elements=["channel", "provider_message_id", "status"])
        )

    async def _apply(self, session: Any, message_id: int, report: StatusUpdate) -> str | None:
        """Move one message forward to ``report.status`` inside ``session``; the status it now
        has (``queued`` when a passing failure sends it again, see :meth:`_redeliver`), or None
        when it is already there or past it."""
        row = await session.get(OutboxMessage, message_id)
        if row is None:  # pragma: no cover - looked up by the caller
            return None
        again = (row.payload or {}).get("redelivered") or {}
        if again.get("sid") == report.provider_message_id and report.status in ("failed", "undelivered"):
            return None  # a repeat of the failure that is being sent again
        new = DELIVERY_STATUS_ORDER.get(report.status, 0)
        if new <= DELIVERY_STATUS_ORDER.get(row.status, 0):
            return None
        if self._redeliver(session, row, report):
            return "queued"
        lower = [name for name, order in DELIVERY_STATUS_ORDER.items() if order < new]
        c = OUTBOX.c
        values: dict[str, Any] = {"status": report.status, "updated_at": utcnow()}
        if report.error_code:
            values.update(error_code=report.error_code, error_reason=report.error_reason)
        moved = await session.execute(
            update(OUTBOX)
            .where(
                c.id == message_id,
                # Statuses outside the delivery order (held, cancelled...) may move too.
                or_(c.status.in_(lower), c.status.not_in(list(DELIVERY_STATUS_ORDER))),
            )
            .values(values)
            .returning(c.endpoint_id, c.payload)
            .execution_options(synchronize_session=False)
        )
        found = moved.first()
        if found is None:  # another process moved it meanwhile
            return None
        endpoint_id, payload = found
        detail = f"[{report.error_code}] {report.error_reason}" if report.error_code else None
        await session.execute(
            insert(STATUS_EVENTS).values(
                message_id=message_id, status=report.status, detail=detail, at=report.occurred_at
            )
        )
        if report.endpoint_state and endpoint_id:
            await set_channel_state(
                session, [endpoint_id], report.channel, report.endpoint_state, report.error_reason or ""
            )
        if report.status in ("failed", "undelivered") and (payload or {}).get("fallback"):
            await session.refresh(row)
            await self._fall_back(session, row)
        return report.status

    async def _status_hook(self, message_id: int, report: StatusUpdate, status: str | None = None) -> None:
        await self.gateway.message_status(MessageStatusEvent.from_report(message_id, report, status))

    async def apply_pending_reports(self, keys: list[tuple[str, str]]) -> int:
        """Apply the kept reports for these ``(channel, provider id)`` pairs, oldest status
        first, and forget them; how many moved a message forward. Claiming them
        (``DELETE ... RETURNING``) and applying them is one transaction."""
        wanted: dict[str, set[str]] = {}
        for channel, provider_id in keys:
            if provider_id:
                wanted.setdefault(channel, set()).add(provider_id)
        if not wanted:
            return 0
        p = PENDING_REPORTS.c
        c = OUTBOX.c
        applied: list[tuple[int, StatusUpdate, str]] = []
        async with self.gateway.db.session() as session:
            # Reads first, cheapest first: this runs after every group of sends, almost always
            # with no report kept (then building and matching every id is wasted), and on
            # SQLite a DELETE takes the write lock even when it finds nothing.
            kept = select(p.id).where(p.channel.in_(sorted(wanted))).limit(1)
            if (await session.execute(kept)).first() is None:
                return 0
            match = and_(
                or_(
                    *(
                        and_(p.channel == channel, p.provider_message_id.in_(sorted(ids)))
                        for channel, ids in wanted.items()
                    )
                ),
                # Only reports whose message is known by now; the others stay kept.
                select(c.id)
                .where(c.channel == p.channel, c.provider_message_id == p.provider_message_id)
                .exists(),
            )
            if (await session.execute(select(p.id).where(match).limit(1))).first() is None:
                return 0
            claimed = list(await session.execute(delete(PENDING_REPORTS).where(match).returning(*p)))
            claimed.sort(key=lambda r: (DELIVERY_STATUS_ORDER.get(r.status, 0), r.id))
            for r in claimed:
                found = await session.execute(
                    select(c.id)
                    .where(c.channel == r.channel, c.provider_message_id == r.provider_message_id)
                    .limit(1)
                )
                message_id = found.scalar()
                if message_id is None:  # pragma: no cover - claimed only when it exists
                    continue
                report = StatusUpdate(
                    channel=r.channel,
                    provider_message_id=r.provider_message_id,
                    status=r.status,
                    error_code=r.error_code,
                    error_reason=r.error_reason,
                    endpoint_state=r.endpoint_state,
                    retry_after=r.retry_after,
                    occurred_at=r.occurred_at,
                )
                status = await self._apply(session, message_id, report)
                if status is not None:
                    applied.append((message_id, report, status))
            await session.commit()
        for message_id, report, status in applied:
            self.gateway.metrics.status_reports_applied_late.labels(channel=report.channel).inc()
            await self._status_hook(message_id, report, status)
        if claimed:
            log.info("applied %d of %d kept delivery report(s)", len(applied), len(claimed))
        return len(applied)

    async def sweep_pending_reports(self, limit: int = 500) -> int:
        """Apply kept reports whose provider id is stored by now (a missed hand-over, e.g. the
        database failed right after the send was recorded); how many moved a message."""
        p = PENDING_REPORTS.c
        c = OUTBOX.c
        async with self.gateway.db.session() as session:
            keys = list(
                await session.execute(
                    select(p.channel, p.provider_message_id)
                    .where(
                        select(c.id)
                        .where(c.channel == p.channel, c.provider_message_id == p.provider_message_id)
                        .exists()
                    )
                    .distinct()
                    .limit(limit)
                )
            )
        return await self.apply_pending_reports([(channel, pid) for channel, pid in keys])

    async def prune_pending_reports(self) -> int:
        """Drop kept reports older than ``intake.pending_reports_max_age_hours`` and the oldest
        beyond ``intake.pending_reports_max``; counted by channel and reason. How many."""
        cfg = self.gateway.config.intake
        p = PENDING_REPORTS.c
        cutoff = utcnow() - timedelta(hours=cfg.pending_reports_max_age_hours)
        dropped: Counter[tuple[str, str]] = Counter()
        async with self.gateway.db.session() as session:
            if (await session.execute(select(p.id).where(p.received_at < cutoff).limit(1))).first():
                for (channel,) in await session.execute(
                    delete(PENDING_REPORTS).where(p.received_at < cutoff).returning(p.channel)
                ):
                    dropped[(channel, "expired")] += 1
            total = int(await session.scalar(select(func.count()).select_from(PENDING_REPORTS)) or 0)
            if total > cfg.pending_reports_max:
                oldest = select(p.id).order_by(p.id).limit(total - cfg.pending_reports_max)
                for (channel,) in await session.execute(
                    delete(PENDING_REPORTS).where(p.id.in_(oldest.scalar_subquery())).returning(p.channel)
                ):
                    dropped[(channel, "overflow")] += 1
            await session.commit()
        for (channel, reason), count in dropped.items():
            self.gateway.metrics.status_reports_dropped.labels(channel=channel, reason=reason).inc(count)
            log.warning(
                "dropped %d delivery report(s) on %s whose message id never appeared (%s)",
                count,
                channel,
                reason,
            )
        return sum(dropped.values())

    def _redeliver(self, session: Any, row: OutboxMessage, report: StatusUpdate) -> bool:
        """A failure report that may pass (``retry_after``, e.g. Twilio 30003, handset out of
        coverage) puts the message back in the queue, due no sooner than ``retry_after``
        seconds from now, the first time only; False (the failure stands) otherwise."""
        if report.retry_after is None or report.status not in ("failed", "undelivered"):
            return False
        payload = dict(row.payload or {})
        if payload.get("redelivered"):
            return False
        now = utcnow()
        due = now + timedelta(seconds=report.retry_after)
        payload["redelivered"] = {
            "code": report.error_code,
            "sid": report.provider_message_id,
            "at": now.isoformat(),
        }
        row.payload = payload
        row.status = "queued"
        row.due_at = due
        row.updated_at = now
        row.error_code = report.error_code
        row.error_reason = report.error_reason
        detail = f"[{report.error_code}] {report.error_reason}; sent again once after {due.isoformat()}"
        session.add(
            StatusEvent(message_id=row.id, status=report.status, detail=detail, at=report.occurred_at)
        )
        log.info("message %s: %s, sent again once at %s", row.id, report.error_code, due.isoformat())
        return True

    async def release_claims(self) -> int:
        """Put this worker's unfinished claims back in the queue (graceful shutdown)."""
        async with self.gateway.db.session() as session:
            result = await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.lease_owner == self.worker_id, OutboxMessage.status == "sending")
                .values(
                    status="queued", lease_owner=None, lease_until=None, attempts=OutboxMessage.attempts - 1
                )
            )
            await session.commit()
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def queue_lag_seconds(self) -> float:
        """Seconds the oldest due, still queued message has been waiting (0 when none)."""
        from sqlalchemy import func

        now = utcnow()
        async with self.gateway.db.session() as session:
            oldest = await session.scalar(
                select(func.min(OutboxMessage.due_at)).where(
                    OutboxMessage.status == "queued", OutboxMessage.due_at <= now
                )
            )
        return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0

    async def queue_depth(self) -> dict[str, int]:
        """Queued messages per channel."""
        from sqlalchemy import func

        async with self.gateway.db.session() as session:
            rows = await session.execute(
                select(OutboxMessage.channel, func.count(OutboxMessage.id))
                .where(OutboxMessage.status.in_(["queued", "sending"]))
                .group_by(OutboxMessage.channel)
            )
            return {channel: count for channel, count in rows}


@dataclass(slots=True)
class _RecordRow:
    """One outcome's UPDATE parameters (see ``_record``): ``values`` per row, the columns it
    sets to NULL, whether it stamps ``updated_at`` (and ``sent_at``) with the record time."""

    values: dict[str, Any]
    nulls: list[str]
    stamped: bool
    sent_now: bool

    def shape(self) -> tuple[Any, ...]:
        """Rows of one shape share one executemany statement."""
        return (tuple(self.values), tuple(self.nulls), self.stamped, self.sent_now)


class _Turn:
    """Messages to one recipient in this process, taking turns (see ``_send_in_turn``)."""

    __slots__ = ("lock", "waiting")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.waiting = 0


@dataclass
class _Outcome:
    row: ClaimedMessage
    kind: str
    status: str
    provider_id: str | None = None
    code: str | None = None
    reason: str | None = None
    due_at: datetime | None = None
    endpoint_state: str | None = None
    units: int | None = None
    reconciled: bool = False
    retry_reconcile: bool = False


def _status_event(outcome: _Outcome) -> MessageStatusEvent:
    """The ``gateway_message_status`` event of one send outcome."""
    return MessageStatusEvent(
        message_id=outcome.row.id,
        channel=outcome.row.channel,
        status=outcome.status,
        occurred_at=utcnow(),
        provider_message_id=outcome.provider_id,
        error_code=outcome.code,
        reason=outcome.reason,
        source="dispatch",
    )


#: Payload keys a channel sees as :attr:`OutboundMessage.metadata`.
METADATA_KEYS = ("survey_id", "question_id", "template")


def to_outbound(row: OutboxMessage | ClaimedMessage) -> OutboundMessage:
    """The channel-facing form of an outbox row."""
    payload = row.payload or {}
    buttons = payload.get("buttons")
    attachments = payload.get("attachments")
    return OutboundMessage(
        message_id=row.id,
        channel=row.channel,
        address=row.address,
        language=row.language,
        body=row.body,
        subject=row.subject,
        html=row.html,
        buttons=tuple(Button(str(v), str(label)) for v, label in buttons) if buttons else (),
        reply_token=row.reply_token,
        unsubscribe_url=payload.get("unsubscribe_url"),
        text_direction=payload.get("direction", "ltr"),
        family_id=payload.get("family_id"),
        broadcast_id=row.broadcast_id,
        attempt=row.attempts,
        metadata={key: payload[key] for key in METADATA_KEYS if key in payload},
        attachments=tuple(
            Attachment(
                filename=str(a["name"]),
                content_type=str(a["type"]),
                path=Path(str(a["path"])),
                url=a.get("url"),
                size=int(a.get("size") or 0),
            )
            for a in attachments
        )
        if attachments
        else (),
    )
