"""Where replies and delivery reports from providers enter the gateway; nothing accepted is lost.

Every channel hands what it receives to the core through its context
(:class:`~gateway.channels.ChannelContext` ``accept`` / ``receive`` / ``update_status``), which
lands here. The database must take it within ``intake.store_deadline_seconds``; when it cannot
(locked, unreachable, connection killed, too slow), the record is appended to the local
durable spool (:class:`~gateway.storage.spool.Spool`) and the provider is answered with success
all the same. :meth:`Intake.run` (in ``gateway serve`` and ``gateway worker``) replays the spool
in order at start-up and as soon as the database is back, retrying with backoff. While the
spool holds anything, new arrivals are appended behind it rather than stored directly, so
replies and reports are applied in the order they came.

Replay is idempotent: a reply is stored once per provider id whatever happens (the original
attempt may still have reached the database after its deadline), and a delivery report goes
through :meth:`~gateway.outbox.dispatcher.OutboxDispatcher.apply_status`, which never moves a
status backwards and keeps reports for ids not stored yet.

The same background task sweeps kept delivery reports (applies those whose id is stored by now,
drops those past their bounds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.channels import InboundMessage, InboundOutcome, StatusOutcome, StatusUpdate
from gateway.storage.db import database_unavailable
from gateway.storage.spool import Spool, SpoolEntry

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from gateway.app import Gateway

__all__ = ["SPOOLED", "Intake"]

log = logging.getLogger("gateway.intake")
SPOOLED = "spooled"
"""Classification of a reply that waits in the spool (:meth:`Intake.receive`)."""
REPLAY_BATCH = 200
MAINTENANCE_SECONDS = 30.0
#: Longest wait for the database during replay, per record.
REPLAY_TIMEOUT_SECONDS = 30.0


class Intake:
    """The durable front door of one gateway process."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.config = gateway.config.intake
        self.spool = Spool(gateway.config.spool_dir)
        self._wake = asyncio.Event()
        self._replay_lock = asyncio.Lock()
        self._last_maintenance = 0.0

    # -- the doors ---------------------------------------------------------------------------
    async def accept(self, message: InboundMessage) -> bool:
        """Store a reply for background processing; False for a duplicate (see module doc)."""
        message = self.gateway.inbound.sanitize(message)
        if not self._spool_is_empty():
            await self._to_spool("inbound", _message_record(message))
            return True
        try:
            return await self._within_deadline(self.gateway.inbound.accept(message))
        except Exception as exc:
            if not _spoolable(exc):
                raise
            await self._to_spool("inbound", _message_record(message), exc)
            return True

    async def receive(self, message: InboundMessage) -> InboundOutcome:
        """Store a reply and process it now; when the database cannot take it in time, spool
        it (``classification == "spooled"``; processed after replay)."""
        pipeline = self.gateway.inbound
        message = pipeline.sanitize(message)
        spooled = InboundOutcome(inbound_id=None, duplicate=False, classification=SPOOLED)
        if not self._spool_is_empty():
            await self._to_spool("inbound", _message_record(message))
            return spooled
        try:
            stored, record_id = await self._within_deadline(pipeline.store(message))
        except Exception as exc:
            if not _spoolable(exc):
                raise
            await self._to_spool("inbound", _message_record(message), exc)
            return spooled
        if not stored or record_id is None:
            return InboundOutcome(inbound_id=record_id, duplicate=True, classification="duplicate")
        # Stored: from here on a failure leaves it pending for the background processor.
        return await pipeline.process_stored(record_id)

    async def update_status(self, update: StatusUpdate) -> StatusOutcome:
        """Apply a delivery report (or keep it), or spool it when the database is away."""
        if not self._spool_is_empty():
            await self._to_spool("status", _status_record(update))
            return StatusOutcome.SPOOLED
        try:
            return await self._within_deadline(self.gateway.dispatcher.apply_status(update))
        except Exception as exc:
            if not _spoolable(exc):
                raise
            await self._to_spool("status", _status_record(update), exc)
            return StatusOutcome.SPOOLED

    async def _within_deadline(self, work: Awaitable[Any]) -> Any:
        return await asyncio.wait_for(work, timeout=self.config.store_deadline_seconds)

    def _spool_is_empty(self) -> bool:
        # Two stat() calls: cheap enough for every webhook, and it sees other processes' spooling.
        return not self.spool.has_records()

    async def _to_spool(self, kind: str, data: dict[str, Any], cause: BaseException | None = None) -> None:
        first = self._spool_is_empty()
        await asyncio.to_thread(self.spool.append, {"kind": kind, "data": data})
        metrics = self.gateway.metrics
        metrics.spooled.labels(kind=kind).inc()
        metrics.spool_depth.inc()
        what = "reply" if kind == "inbound" else "delivery report"
        if first:
            # Once per outage; the spooled counter tells how many followed.
            log.warning(
                "database unavailable (%s): %s spooled in %s and answered with success; "
                "replayed when the database is back",
                type(cause).__name__ if cause is not None else "spool not empty",
                what,
                self.spool.path,
            )
        else:
            log.debug("%s spooled behind earlier ones", what)
        self._wake.set()

    # -- replay -------------------------------------------------------------------------------
    async def replay(self) -> int:
        """Apply every spooled record in order; how many. Stops (raising) at the first record
        the database cannot take; a record that fails for another reason is set aside."""
        applied = 0
        async with self._replay_lock:
            while True:
                entries = await asyncio.to_thread(self.spool.read, REPLAY_BATCH)
                if not entries:
                    self.gateway.metrics.spool_depth.set(0)
                    if applied:
                        log.info("replayed %d spooled record(s); the spool is empty", applied)
                    return applied
                done = 0
                try:
                    for entry in entries:
                        await self._apply(entry)
                        done = entry.end
                        applied += 1
                finally:
                    if done:
                        await asyncio.to_thread(self.spool.consume, done)

    async def _apply(self, entry: SpoolEntry) -> None:
        kind = entry.record.get("kind")
        try:
            if kind == "inbound":
                message = _message_from(entry.record["data"])
                await asyncio.wait_for(self.gateway.inbound.accept(message), REPLAY_TIMEOUT_SECONDS)
            elif kind == "status":
                update = _status_from(entry.record["data"])
                await asyncio.wait_for(self.gateway.dispatcher.apply_status(update), REPLAY_TIMEOUT_SECONDS)
            else:
                raise ValueError(f"unknown spool record kind {kind!r}")
        except Exception as exc:
            if _spoolable(exc):
                raise
            log.exception("spooled %s record could not be applied; set aside", kind)
            await asyncio.to_thread(self.spool.set_aside, _line_for(entry), f"not applicable: {exc!r}"[:500])
            self.gateway.metrics.spool_rejected.inc()
            return
        self.gateway.metrics.spool_replayed.labels(kind=str(kind)).inc()
        self.gateway.metrics.spool_depth.dec()

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: replay the spool (at once, then whenever something is spooled),
        retrying with backoff while the database is away; sweep kept delivery reports."""
        backoff = 0.5
        retry_at = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if now >= retry_at:
                try:
                    if not self._spool_is_empty():
                        await self.replay()
                    if now - self._last_maintenance >= MAINTENANCE_SECONDS:
                        self._last_maintenance = now
                        await self.gateway.dispatcher.sweep_pending_reports()
                        await self.gateway.dispatcher.prune_pending_reports()
                    backoff = 0.5
                    retry_at = 0.0
                except Exception as exc:
                    if not _spoolable(exc):
                        log.exception("replaying the spool failed; retrying in %.1f s", backoff)
                    else:
                        log.info(
                            "database still unavailable (%s); retrying in %.1f s", type(exc).__name__, backoff
                        )
                    retry_at = time.monotonic() + backoff
                    backoff = min(backoff * 2, self.config.replay_max_backoff_seconds)
            self._wake.clear()
            wait = MAINTENANCE_SECONDS if self._spool_is_empty() else 1.0
            if retry_at:
                wait = max(0.01, retry_at - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(stop.wait(), self._wake.wait()), timeout=wait)


async def _first(*waits: Awaitable[Any]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def _spoolable(exc: BaseException) -> bool:
    """The database did not take it in time, or is unavailable: spool and replay later."""
    return isinstance(exc, TimeoutError) or database_unavailable(exc)


# -- records -------------------------------------------------------------------------------------
def _message_record(message: InboundMessage) -> dict[str, Any]:
    """A sanitised reply as a JSON object (its raw payload is JSON-safe by then)."""
    return {
        "channel": message.channel,
        "provider_message_id": message.provider_message_id,
        "sender": message.sender,
        "text": message.text,
        "received_at": message.received_at.isoformat(),
        "choice": message.choice,
        "in_reply_to_message_id": message.in_reply_to_message_id,
        "reply_token": message.reply_token,
        "provider_in_reply_to": list(message.provider_in_reply_to),
        "raw": dict(message.raw),
    }


def _message_from(data: dict[str, Any]) -> InboundMessage:
    return InboundMessage(
        channel=data["channel"],
        provider_message_id=data["provider_message_id"],
        sender=data["sender"],
        text=data["text"],
        received_at=datetime.fromisoformat(data["received_at"]),
        choice=data.get("choice"),
        in_reply_to_message_id=data.get("in_reply_to_message_id"),
        reply_token=data.get("reply_token"),
        provider_in_reply_to=tuple(data.get("provider_in_reply_to") or ()),
        raw=data.get("raw") or {},
    )


def _status_record(update: StatusUpdate) -> dict[str, Any]:
    data = asdict(update)
    data["occurred_at"] = update.occurred_at.isoformat()
    return data


def _status_from(data: dict[str, Any]) -> StatusUpdate:
    return StatusUpdate(**{**data, "occurred_at": datetime.fromisoformat(data["occurred_at"])})


def _line_for(entry: SpoolEntry) -> bytes:
    import json

    return json.dumps(entry.record, ensure_ascii=False).encode("utf-8") + b"\n"
