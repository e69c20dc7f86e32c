"""The outbox dispatcher: claim due messages with a lease, respect rate limits, send through
the channel plugins, and record what happened. The one place that turns a channel's
:class:`~gateway.errors.SendError` into a status (retry with backoff, fail, or unknown).

Claims: ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`` on
PostgreSQL, so several workers share one outbox; on SQLite the single UPDATE is the
single-writer path. A lease that expires (a worker died) puts its messages back in the queue.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, insert, or_, select, text, update

from gateway.channels import DELIVERY_STATUS_ORDER, Button, OutboundMessage, StatusUpdate
from gateway.domain.contacts import mask_address
from gateway.errors import DeliveryUnknownError, SendError
from gateway.outbox.rate_limit import LocalRateLimiter, RateLimiter
from gateway.storage.models import Endpoint, OutboxMessage, StatusEvent, utcnow

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.channels import Channel

__all__ = ["DispatchResult", "OutboxDispatcher"]

log = logging.getLogger("gateway.outbox")
FINAL = frozenset({"sent", "delivered", "read", "failed", "undelivered", "cancelled"})


@dataclass
class DispatchResult:
    """Counts of one dispatch run."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    unknown: int = 0
    cancelled: int = 0

    def add(self, other: DispatchResult) -> None:
        """Accumulate."""
        for name in ("sent", "failed", "retried", "unknown", "cancelled"):
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
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.limiter: RateLimiter = limiter or LocalRateLimiter()
        self.metrics: Counter[str] = Counter()
        self._semaphores: dict[str, asyncio.Semaphore] = {}

    # -- claiming -----------------------------------------------------------------------
    async def claim(self, limit: int, channels: list[str] | None = None) -> list[OutboxMessage]:
        """Lease up to ``limit`` due messages to this worker."""
        db = self.gateway.db
        now = utcnow()
        lease_until = now + timedelta(seconds=self.config.lease_seconds)
        names = channels or list(self.gateway.channels)
        due = or_(
            and_(OutboxMessage.status == "queued", OutboxMessage.due_at <= now),
            and_(OutboxMessage.status == "sending", OutboxMessage.lease_until < now),
        )
        candidates = (
            select(OutboxMessage.id)
            .where(due, OutboxMessage.channel.in_(names))
            .order_by(OutboxMessage.due_at, OutboxMessage.id)
            .limit(limit)
        )
        if not db.is_sqlite:
            candidates = candidates.with_for_update(skip_locked=True)
        statement = (
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(candidates.scalar_subquery()))
            .values(
                status="sending",
                lease_owner=self.worker_id,
                lease_until=lease_until,
                attempts=OutboxMessage.attempts + 1,
                updated_at=now,
            )
            .returning(OutboxMessage)
            .execution_options(synchronize_session=False)
        )
        async with db.session() as session:
            rows = list((await session.scalars(statement)).all())
            await session.commit()
        rows.sort(key=lambda r: (r.due_at, r.id))
        return rows

    # -- running ------------------------------------------------------------------------
    async def run_until_idle(
        self, channels: list[str] | None = None, max_batches: int | None = None
    ) -> DispatchResult:
        """Send everything due now, then return (CLI, demo, tests)."""
        total = DispatchResult()
        batches = 0
        while max_batches is None or batches < max_batches:
            batch = await self.claim(self.config.batch_size, channels)
            if not batch:
                break
            total.add(await self.process(batch))
            batches += 1
        return total

    async def run_forever(self, stop: asyncio.Event, channels: list[str] | None = None) -> None:
        """Claim and send until ``stop`` is set; then release nothing in flight is lost."""
        while not stop.is_set():
            try:
                batch = await self.claim(self.config.batch_size, channels)
            except Exception:
                log.exception("claiming from the outbox failed; retrying")
                batch = []
            if batch:
                await self.process(batch)
                continue
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.config.poll_seconds)
            except TimeoutError:
                pass

    async def process(self, batch: list[OutboxMessage]) -> DispatchResult:
        """Send a claimed batch concurrently and record every outcome in one transaction."""
        opted_out = await self._opted_out_endpoints(batch)
        results = await asyncio.gather(*(self._send(row, opted_out) for row in batch))
        await self._record(results)
        summary = DispatchResult()
        for outcome in results:
            setattr(summary, outcome.kind, getattr(summary, outcome.kind) + 1)
        return summary

    async def _opted_out_endpoints(self, batch: list[OutboxMessage]) -> set[int]:
        ids = {r.endpoint_id for r in batch if r.endpoint_id and not (r.payload or {}).get("compliance")}
        if not ids:
            return set()
        async with self.gateway.db.session() as session:
            rows = await session.scalars(
                select(Endpoint.id).where(Endpoint.id.in_(ids), or_(Endpoint.opted_out, Endpoint.invalid))
            )
            return set(rows)

    def _semaphore(self, channel: Channel) -> asyncio.Semaphore:
        sem = self._semaphores.get(channel.name)
        if sem is None:
            sem = self._semaphores[channel.name] = asyncio.Semaphore(channel.settings.concurrency)
        return sem

    async def _send(self, row: OutboxMessage, opted_out: set[int]) -> _Outcome:
        channel = self.gateway.channels.get(row.channel)
        if channel is None:
            return _Outcome(
                row,
                "failed",
                "failed",
                code="no-channel",
                reason=f"channel {row.channel!r} is not configured",
            )
        if row.endpoint_id in opted_out:
            return _Outcome(row, "cancelled", "cancelled", reason="endpoint opted out or invalid")
        message = to_outbound(row)
        async with self._semaphore(channel):
            await self.limiter.acquire(
                f"channel:{channel.name}", channel.rate_per_second, channel.cost_units(message)
            )
            if channel.rate_per_recipient_per_second:
                await self.limiter.acquire(
                    f"recipient:{channel.name}:{row.address}", channel.rate_per_recipient_per_second
                )
            try:
                result = await channel.send(message)
            except DeliveryUnknownError as exc:
                log.warning("message %s to %s: delivery unknown (%s)", row.id, mask_address(row.address), exc)
                return _Outcome(row, "unknown", "unknown", code=exc.code, reason=exc.reason)
            except SendError as exc:
                return self._failure(row, exc)
            except Exception as exc:  # a plugin bug must not lose the message
                log.exception("channel %s crashed sending message %s", channel.name, row.id)
                return self._failure(row, SendError(f"{type(exc).__name__}: {exc}", retryable=True))
        status = "delivered" if result.status == "delivered" else "sent"
        self.metrics[f"sent:{channel.name}"] += 1
        return _Outcome(row, "sent", status, provider_id=result.provider_message_id, units=result.segments)

    def _failure(self, row: OutboxMessage, exc: SendError) -> _Outcome:
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
            self.metrics[f"retried:{row.channel}"] += 1
            return _Outcome(
                row,
                "retried",
                "queued",
                code=exc.code,
                reason=exc.reason,
                due_at=utcnow() + timedelta(seconds=delay),
            )
        reason = exc.reason if not exc.retryable else f"gave up after {row.attempts} attempts: {exc.reason}"
        log.info("message %s to %s failed: [%s] %s", row.id, mask_address(row.address), exc.code, exc.reason)
        self.metrics[f"failed:{row.channel}"] += 1
        return _Outcome(
            row, "failed", "failed", code=exc.code, reason=reason, endpoint_state=exc.endpoint_state
        )

    # -- recording ----------------------------------------------------------------------
    async def _record(self, outcomes: list[_Outcome]) -> None:
        now = utcnow()
        updates: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        endpoint_states: list[_Outcome] = []
        fallbacks: list[_Outcome] = []
        for o in outcomes:
            values: dict[str, Any] = {
                "id": o.row.id,
                "status": o.status,
                "lease_owner": None,
                "lease_until": None,
                "updated_at": now,
                "error_code": o.code,
                "error_reason": o.reason,
            }
            if o.kind == "sent":
                values.update(provider_message_id=o.provider_id, sent_at=now)
                if o.units:
                    values["cost_units"] = o.units
            if o.due_at is not None:
                values["due_at"] = o.due_at
            updates.append(values)
            detail = f"[{o.code}] {o.reason}" if o.code else o.reason
            events.append({"message_id": o.row.id, "status": o.status, "detail": detail, "at": now})
            if o.endpoint_state and o.row.endpoint_id:
                endpoint_states.append(o)
            if o.status == "failed" and (o.row.payload or {}).get("fallback"):
                fallbacks.append(o)
        async with self.gateway.db.session() as session:
            await session.execute(update(OutboxMessage), updates)
            await session.execute(insert(StatusEvent), events)
            for o in endpoint_states:
                values = (
                    {"opted_out": True, "opted_out_at": now}
                    if o.endpoint_state == "opted_out"
                    else {"invalid": True, "invalid_reason": (o.reason or "")[:200]}
                )
                await session.execute(
                    update(Endpoint).where(Endpoint.id == o.row.endpoint_id).values(**values)
                )
            for o in fallbacks:
                await self._fall_back(session, o.row)
            await session.commit()
        for o in outcomes:
            await self.gateway.call_hook(
                "gateway_message_status",
                gateway=self.gateway,
                message_id=o.row.id,
                status=o.status,
                detail=o.reason,
            )

    async def _fall_back(self, session: Any, row: OutboxMessage) -> None:
        """Queue the message again on the guardian's next usable endpoint (policy ``preferred``)."""
        from gateway.outbox.fallback import requeue_on_next_endpoint

        await requeue_on_next_endpoint(self.gateway, session, row)

    # -- delivery reports ---------------------------------------------------------------
    async def apply_status(self, report: StatusUpdate) -> bool:
        """Apply a provider's delivery report; statuses never move backwards; repeats are no-ops."""
        async with self.gateway.db.session() as session:
            row = await session.scalar(
                select(OutboxMessage)
                .where(
                    OutboxMessage.channel == report.channel,
                    OutboxMessage.provider_message_id == report.provider_message_id,
                )
                .limit(1)
            )
            if row is None:
                return False
            current = DELIVERY_STATUS_ORDER.get(row.status, 0)
            new = DELIVERY_STATUS_ORDER.get(report.status, 0)
            if new <= current:
                return False
            row.status = report.status
            row.updated_at = utcnow()
            if report.error_code:
                row.error_code = report.error_code
                row.error_reason = report.error_reason
            detail = f"[{report.error_code}] {report.error_reason}" if report.error_code else None
            session.add(
                StatusEvent(message_id=row.id, status=report.status, detail=detail, at=report.occurred_at)
            )
            if report.endpoint_state and row.endpoint_id:
                endpoint = await session.get(Endpoint, row.endpoint_id)
                if endpoint is not None:
                    if report.endpoint_state == "opted_out":
                        endpoint.opted_out, endpoint.opted_out_at = True, utcnow()
                    else:
                        endpoint.invalid, endpoint.invalid_reason = True, (report.error_reason or "")[:200]
            if report.status in ("failed", "undelivered") and (row.payload or {}).get("fallback"):
                await self._fall_back(session, row)
            await session.commit()
            message_id = row.id
        await self.gateway.call_hook(
            "gateway_message_status",
            gateway=self.gateway,
            message_id=message_id,
            status=report.status,
            detail=report,
        )
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

    async def ping(self) -> None:
        """Check the database answers."""
        async with self.gateway.db.session() as session:
            await session.execute(text("SELECT 1"))


@dataclass
class _Outcome:
    row: OutboxMessage
    kind: str
    status: str
    provider_id: str | None = None
    code: str | None = None
    reason: str | None = None
    due_at: datetime | None = None
    endpoint_state: str | None = None
    units: int | None = None


def to_outbound(row: OutboxMessage) -> OutboundMessage:
    """The channel-facing form of an outbox row."""
    payload = row.payload or {}
    unsubscribe = payload.get("unsubscribe_url")
    return OutboundMessage(
        message_id=row.id,
        channel=row.channel,
        address=row.address,
        language=row.language,
        body=row.body,
        subject=row.subject,
        html=row.html,
        buttons=tuple(Button(str(v), str(label)) for v, label in payload.get("buttons", [])),
        reply_token=row.reply_token,
        unsubscribe_url=unsubscribe,
        text_direction=payload.get("direction", "ltr"),
        family_id=payload.get("family_id"),
        broadcast_id=row.broadcast_id,
        attempt=row.attempts,
        metadata={k: v for k, v in payload.items() if k in ("survey_id", "question_id")},
    )
