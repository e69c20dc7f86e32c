"""The inbound pipeline: every reply, whatever the channel, goes through :meth:`handle`.

dedupe on the provider id → match the sender to a family endpoint (or the message a reply
token / button names) → classify (opt-out, opt-in, HELP, survey answer, RSVP, free text,
unknown sender) → act (opt out and confirm, answer the survey and ask the next question,
re-prompt once, file in the staff inbox with a translation) → record what it did.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.channels import InboundMessage, InboundOutcome
from gateway.domain.languages import LanguageError, display_name, normalize_language
from gateway.errors import StaffFacingError
from gateway.inbound import notes
from gateway.inbound.answers import AnswerMatcher
from gateway.inbound.detect import LanguageDetector
from gateway.inbound.keywords import KeywordTable
from gateway.inbound.normalize import zawgyi_to_unicode
from gateway.inbound.sanitize import is_truncated, sanitize_inbound
from gateway.inbound.urgency import UrgentWords
from gateway.outbox.conversation import queue_conversation
from gateway.privacy import mask_address
from gateway.staff_text import StaffNote
from gateway.storage.db import database_unavailable
from gateway.storage.endpoints import (
    ChannelState,
    blocked_pairs,
    channel_states,
    effective_state,
    find_endpoints,
    opt_in_on_channel,
    opt_out_everywhere,
    set_channel_state,
)
from gateway.storage.models import (
    Endpoint,
    Family,
    Guardian,
    InboundRecord,
    OutboxMessage,
    utcnow,
)

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.inbound.surveys import SurveyRuntime

__all__ = ["InboundPipeline"]

log = logging.getLogger("gateway.inbound")
PENDING = "pending"
"""Classification of a reply stored by :meth:`InboundPipeline.accept` and not yet processed."""
FAILED = "failed"
"""Classification of a reply whose processing raised ``inbound.max_attempts`` times; it is in
the staff inbox for a person to read."""
PROCESS_LEASE = 60.0
"""Seconds a reply stored by :meth:`InboundPipeline.handle` is left to the process handling it
before the background processor may take it (that process died)."""
MAX_RETRY_SECONDS = 3600.0
STATS_INTERVAL = 5.0
YIELD_SECONDS = 0.02
"""The background processor waits while webhooks arrived less than this long ago."""


@dataclass
class _Match:
    endpoint: Endpoint | None
    guardian: Guardian | None
    family: Family | None
    message: OutboxMessage | None


class InboundPipeline:
    """Decides what a reply means, and does it."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._accept_buffer: list[tuple[InboundMessage, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._pending = asyncio.Event()
        self._drain_lock = asyncio.Lock()
        self._last_accept = 0.0

    # The word tables (dozens of YAML files, hundreds of patterns) are loaded on first use: a
    # `gateway worker` that only sends never pays for them at start-up.
    @cached_property
    def keywords(self) -> KeywordTable:
        """Opt-out, opt-in and help words of every language."""
        config = self.gateway.config.inbound
        return KeywordTable.load(
            self.gateway.config.locales_dir,
            {"opt_out": config.opt_out_words, "opt_in": config.opt_in_words, "help": config.help_words},
        )

    @cached_property
    def answers(self) -> AnswerMatcher:
        """Yes / no / maybe and choice words of every language."""
        return AnswerMatcher.load(self.gateway.config.locales_dir)

    @cached_property
    def detector(self) -> LanguageDetector:
        """The reply language detector."""
        return LanguageDetector()

    @cached_property
    def urgency(self) -> UrgentWords:
        """Words that flag a reply as urgent."""
        return UrgentWords.load(self.gateway.config.locales_dir, self.gateway.config.inbound.urgent_words)

    @cached_property
    def surveys(self) -> SurveyRuntime:
        """Survey sessions and answers."""
        from gateway.inbound.surveys import SurveyRuntime

        return SurveyRuntime(self.gateway, self.answers)

    async def handle(self, message: InboundMessage) -> InboundOutcome:
        """Store one reply, then process it now, exactly once (CLI, e-mail poller, Telegram).

        The reply is committed (``pending``) before processing starts, so a reply whose
        processing raises is not lost: it is retried in the background like any accepted
        reply (:meth:`drain`), and the outcome says ``pending``.
        """
        stored, record_id = await self.store(message)
        if not stored or record_id is None:
            return InboundOutcome(inbound_id=record_id, duplicate=True, classification="duplicate")
        return await self.process_stored(record_id)

    async def store(self, message: InboundMessage) -> tuple[bool, int | None]:
        """Store one reply (sanitised) as ``pending``, leased to this process for
        :data:`PROCESS_LEASE`; ``(new, id)`` — ``(False, id)`` for a duplicate."""
        return await self._store_one(self.sanitize(message))

    async def process_stored(self, record_id: int) -> InboundOutcome:
        """Process a reply :meth:`store` returned, now (failures: see :meth:`drain`)."""
        outcome = await self._process_one(record_id)
        if outcome is None:  # another process took it meanwhile
            return InboundOutcome(inbound_id=record_id, duplicate=False, classification=PENDING)
        return outcome

    def sanitize(self, message: InboundMessage) -> InboundMessage:
        """The reply cleaned and bounded as it will be stored (:mod:`gateway.inbound.sanitize`)."""
        cleaned = sanitize_inbound(message, self.gateway.config.inbound.max_text_chars)
        if cleaned is not message and is_truncated(cleaned) and not is_truncated(message):
            self.gateway.metrics.inbound_truncated.labels(channel=message.channel).inc()
        return cleaned

    async def _store_one(self, message: InboundMessage) -> tuple[bool, int | None]:
        """Insert one reply as ``pending``, leased to this process for :data:`PROCESS_LEASE`
        so the background processor leaves it alone meanwhile; ``(new, id)``."""
        table = InboundRecord.__table__
        values = {
            **_record_values(message),
            "classification": PENDING,
            "next_attempt_at": utcnow() + timedelta(seconds=PROCESS_LEASE),
        }
        statement = (
            self._insert(table)
            .values(values)
            .on_conflict_do_nothing(index_elements=["channel", "provider_message_id"])
            .returning(table.c.id)
        )
        async with self.gateway.db.session() as session:
            record_id = (await session.execute(statement)).scalar()
            await session.commit()
            if record_id is not None:
                return True, int(record_id)
            existing = await session.scalar(
                select(InboundRecord.id).where(
                    InboundRecord.channel == message.channel,
                    InboundRecord.provider_message_id == message.provider_message_id,
                )
            )
            return False, existing

    def _insert(self, table: Any) -> Any:
        if self.gateway.db.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        return dialect_insert(table)

    # -- accept now, process in the background (webhooks) -------------------------------
    async def accept(self, message: InboundMessage) -> bool:
        """Store a reply durably and return; False for a duplicate. Processing follows in the
        background (:meth:`run_processor`), in arrival order; a crash loses nothing, because
        stored replies stay ``pending`` until processed.

        Concurrent calls are written together in one statement (group commit), so a provider
        posting a thousand replies a second gets its answers in milliseconds.
        """
        loop = asyncio.get_running_loop()
        self._last_accept = loop.time()
        message = self.sanitize(message)
        future: asyncio.Future[bool] = loop.create_future()
        self._accept_buffer.append((message, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_accepted())
        return await future

    async def _write_accepted(self) -> None:
        while self._accept_buffer:
            await asyncio.sleep(0)  # let the other requests of this moment join the batch
            batch, self._accept_buffer = self._accept_buffer[:500], self._accept_buffer[500:]
            try:
                stored = await self._insert_pending([m for m, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for message, future in batch:
                if not future.done():
                    key = (message.channel, message.provider_message_id)
                    future.set_result(key in stored)
                    stored.discard(key)  # the same id twice in one batch: the second is a duplicate
            self._pending.set()

    async def _insert_pending(self, messages: list[InboundMessage]) -> set[tuple[str, str]]:
        """Insert, skipping provider ids already stored; the keys that were new."""
        table = InboundRecord.__table__
        rows = []
        seen: set[tuple[str, str]] = set()
        for message in messages:
            key = (message.channel, message.provider_message_id)
            if key not in seen:
                seen.add(key)
                rows.append({**_record_values(message), "classification": PENDING})
        statement = (
            self._insert(table)
            .on_conflict_do_nothing(index_elements=["channel", "provider_message_id"])
            .returning(table.c.channel, table.c.provider_message_id)
        )
        async with self.gateway.db.session() as session:
            result = await session.execute(statement, rows)
            stored = {(channel, pid) for channel, pid in result}
            await session.commit()
        return stored

    async def run_processor(self, stop: asyncio.Event) -> None:
        """Process accepted replies until ``stop`` is set (``gateway serve``); replies waiting
        for a retry are taken up when they are due."""
        while not stop.is_set():
            try:
                handled = await self.drain(yield_to_webhooks=True)
            except Exception:
                log.exception("processing accepted replies failed; retrying")
                handled = 0
            if handled:
                continue
            self._pending.clear()
            wait = 1.0
            with contextlib.suppress(Exception):
                due = await self.next_due_in()
                if due is not None:
                    wait = min(wait, max(due, 0.01))
            try:
                await asyncio.wait_for(self._pending.wait(), timeout=wait)
            except TimeoutError:
                pass

    async def drain(self, limit: int = 200, *, yield_to_webhooks: bool = False) -> int:
        """Process every stored reply that is pending and due, oldest first; how many were
        processed (failed attempts not counted).

        Each reply is processed in its own transaction: one that raises is rolled back, its
        attempt recorded (:meth:`_failed_attempt`), and the replies behind it go on. With
        ``yield_to_webhooks`` (the background processor), each reply waits while webhooks are
        arriving, so a burst of replies is answered at full speed and worked through right
        after it.
        """
        total = 0
        tried: set[int] = set()
        async with self._drain_lock:
            while True:
                now = utcnow()
                async with self.gateway.db.session() as session:
                    ids = [
                        record_id
                        for record_id in await session.scalars(
                            select(InboundRecord.id)
                            .where(
                                InboundRecord.classification == PENDING,
                                or_(
                                    InboundRecord.next_attempt_at.is_(None),
                                    InboundRecord.next_attempt_at <= now,
                                ),
                            )
                            .order_by(InboundRecord.id)
                            .limit(limit + len(tried))
                        )
                        if record_id not in tried
                    ][:limit]
                if not ids:
                    return total
                for record_id in ids:
                    tried.add(record_id)
                    if yield_to_webhooks:
                        await self._yield_to_webhooks()
                    outcome = await self._process_one(record_id)
                    if outcome is not None and outcome.classification != PENDING:
                        total += 1

    async def next_due_in(self) -> float | None:
        """Seconds until the earliest pending reply waiting for a retry is due (None: none)."""
        async with self.gateway.db.session() as session:
            due = await session.scalar(
                select(func.min(InboundRecord.next_attempt_at)).where(
                    InboundRecord.classification == PENDING, InboundRecord.next_attempt_at.is_not(None)
                )
            )
        return None if due is None else max(0.0, (due - utcnow()).total_seconds())

    async def _process_one(self, record_id: int) -> InboundOutcome | None:
        """Process one pending reply in isolation; None when it is no longer pending (another
        process has it, or it is done). A failure is recorded and answered with ``pending``
        (or ``failed`` when attempts are used up)."""
        message: InboundMessage | None = None
        try:
            async with self.gateway.db.session() as session:
                query = select(InboundRecord).where(
                    InboundRecord.id == record_id, InboundRecord.classification == PENDING
                )
                if not self.gateway.db.is_sqlite:
                    # Another serve process may be on it: skip, never process twice.
                    query = query.with_for_update(skip_locked=True)
                record = await session.scalar(query)
                if record is None:
                    return None
                message = _message_from_record(record)
                outcome = await self._process(session, message, record)
        except Exception as exc:  # one reply must not stop the others
            if database_unavailable(exc):
                # Not the reply's fault: it stays pending and is tried when the database is back.
                log.warning(
                    "inbound %s: database unavailable (%s); will retry", record_id, type(exc).__name__
                )
                return InboundOutcome(inbound_id=record_id, duplicate=False, classification=PENDING)
            return await self._failed_attempt(record_id, message, exc)
        try:
            await self._after(message, record, outcome)
        except Exception:  # observers and statistics: the reply itself is done
            log.exception("after-processing of inbound %s failed", record_id)
        return outcome

    async def _failed_attempt(
        self, record_id: int, message: InboundMessage | None, exc: Exception
    ) -> InboundOutcome:
        """Count a failed attempt: try again later with backoff, or, when
        ``inbound.max_attempts`` are used up, mark it ``failed`` and put it in the staff inbox."""
        cfg = self.gateway.config.inbound
        error = f"{type(exc).__name__}: {exc}"[:1000]
        channel = message.channel if message else "?"
        try:
            async with self.gateway.db.session() as session:
                record = await session.get(InboundRecord, record_id)
                if record is None or record.classification != PENDING:
                    return InboundOutcome(inbound_id=record_id, duplicate=False, classification=PENDING)
                channel = record.channel
                record.attempts = (record.attempts or 0) + 1
                record.last_error = error
                if record.attempts >= cfg.max_attempts:
                    record.classification = FAILED
                    record.next_attempt_at = None
                    record.inbox = True
                    record.action = (
                        f"processing failed {record.attempts} times ({type(exc).__name__}); "
                        "read it and answer by hand"
                    )
                    tries = {"attempts": str(record.attempts), "error": type(exc).__name__}
                    note = StaffNote(notes.PROCESSING_FAILED, tries)
                    record.note, record.note_data = note.text(), note.as_json()
                    if record.family_id is None:
                        await self._best_effort_family(session, record)
                else:
                    delay = min(MAX_RETRY_SECONDS, cfg.retry_base_seconds * 2 ** (record.attempts - 1))
                    record.next_attempt_at = utcnow() + timedelta(seconds=delay)
                attempts, classification = record.attempts, record.classification
                await session.commit()
        except Exception:
            # The database itself is failing: the reply stays pending and is tried again.
            log.warning(
                "inbound %s: processing failed (%s) and the attempt could not be recorded",
                record_id,
                type(exc).__name__,
                exc_info=True,
            )
            return InboundOutcome(inbound_id=record_id, duplicate=False, classification=PENDING)
        if classification == FAILED:
            self.gateway.metrics.inbound_failed.labels(channel=channel).inc()
            log.error(
                "inbound %s on %s: processing failed %d times (%s); put in the staff inbox",
                record_id,
                channel,
                attempts,
                type(exc).__name__,
                exc_info=exc,
            )
        else:
            self.gateway.metrics.inbound_retries.labels(channel=channel).inc()
            log.warning(
                "inbound %s on %s: processing failed (attempt %d of %d, %s); will retry",
                record_id,
                channel,
                attempts,
                cfg.max_attempts,
                type(exc).__name__,
                exc_info=exc,
            )
        return InboundOutcome(inbound_id=record_id, duplicate=False, classification=classification)

    async def _best_effort_family(self, session: AsyncSession, record: InboundRecord) -> None:
        """Attach the sender's family to a failed reply, so staff scoped to schools see it."""
        try:
            kind = self.gateway.address_kinds[self.gateway.channel(record.channel).kind]
            found = await find_endpoints(session, kind, record.sender)
            endpoint = found[0] if found else None
            if endpoint is not None:
                guardian = await session.get(Guardian, endpoint.guardian_id)
                if guardian is not None:
                    record.endpoint_id, record.guardian_id = endpoint.id, guardian.id
                    record.family_id = guardian.family_id
        except Exception:
            log.debug("no family found for failed inbound %s", record.id, exc_info=True)

    async def _yield_to_webhooks(self) -> None:
        loop = asyncio.get_running_loop()
        quiet_for = loop.time() - self._last_accept
        while quiet_for < YIELD_SECONDS:
            await asyncio.sleep(YIELD_SECONDS - quiet_for)
            quiet_for = loop.time() - self._last_accept

    # -- processing -----------------------------------------------------------------------
    async def _process(
        self, session: AsyncSession, message: InboundMessage, record: InboundRecord
    ) -> InboundOutcome:
        """Match, classify, act; commits ``session``."""
        text, converted = zawgyi_to_unicode(message.text)
        if converted:
            # Burmese typed in Zawgyi: Unicode from here on (matching, detection, translation,
            # the inbox); the original stays in the raw payload.
            record.raw = {**(record.raw or {}), "zawgyi_original": message.text}
            record.text = text
            message = dataclasses.replace(message, text=text)
        match = await self._match(session, message)
        record.endpoint_id = match.endpoint.id if match.endpoint else None
        record.guardian_id = match.guardian.id if match.guardian else None
        record.family_id = match.family.id if match.family else None
        record.in_reply_to_id = match.message.id if match.message else None
        outcome = await self._classify_and_act(session, message, record, match)
        await session.commit()
        return outcome

    async def _after(self, message: InboundMessage, record: InboundRecord, outcome: InboundOutcome) -> None:
        gw = self.gateway
        await gw.translation.flush_stats(min_interval=STATS_INTERVAL)
        log.info(
            "inbound %s on %s from %s: %s",
            record.id,
            message.channel,
            mask_address(message.sender),
            outcome.classification,
        )
        await gw.call_hook("gateway_inbound_processed", inbound=message, outcome=outcome)

    # -- matching -----------------------------------------------------------------------
    async def _match(self, session: AsyncSession, message: InboundMessage) -> _Match:
        gw = self.gateway
        related: OutboxMessage | None = None
        if message.in_reply_to_message_id:
            related = await session.get(OutboxMessage, message.in_reply_to_message_id)
        if related is None and message.reply_token:
            related = await session.scalar(
                select(OutboxMessage).where(OutboxMessage.reply_token == message.reply_token)
            )
        if related is None and message.provider_in_reply_to:
            related = await session.scalar(
                select(OutboxMessage)
                .where(
                    OutboxMessage.channel == message.channel,
                    OutboxMessage.provider_message_id.in_(list(message.provider_in_reply_to)),
                )
                .limit(1)
            )
        endpoint: Endpoint | None = None
        if related is not None and related.endpoint_id:
            endpoint = await session.get(Endpoint, related.endpoint_id)
        if endpoint is None:
            try:
                kind = gw.address_kinds[gw.channel(message.channel).kind]
            except Exception:
                kind = None
            if kind is not None:
                candidates = await find_endpoints(session, kind, message.sender)
                endpoint = await self._most_recent(session, candidates)
        guardian = await session.get(Guardian, endpoint.guardian_id) if endpoint else None
        family = await session.get(Family, guardian.family_id) if guardian else None
        return _Match(endpoint, guardian, family, related)

    async def _channel_state(self, session: AsyncSession, endpoint: Endpoint, channel: str) -> ChannelState:
        """``endpoint``'s consent on ``channel`` (its every-channel marks included)."""
        own = (await channel_states(session, [endpoint.id])).get(endpoint.id)
        return effective_state(endpoint.opted_out, endpoint.invalid, endpoint.invalid_reason, own, channel)

    async def _same_address(self, session: AsyncSession, endpoint: Endpoint) -> list[Endpoint]:
        """Every endpoint with ``endpoint``'s kind and address (guardians sharing a phone)."""
        return list(
            await session.scalars(
                select(Endpoint).where(Endpoint.kind == endpoint.kind, Endpoint.address == endpoint.address)
            )
        )

    async def _most_recent(self, session: AsyncSession, endpoints: list[Endpoint]) -> Endpoint | None:
        """Of several guardians sharing an address, the one we wrote to last."""
        if len(endpoints) <= 1:
            return endpoints[0] if endpoints else None
        last = await session.scalar(
            select(OutboxMessage.endpoint_id)
            .where(OutboxMessage.endpoint_id.in_([e.id for e in endpoints]))
            .order_by(OutboxMessage.id.desc())
            .limit(1)
        )
        for endpoint in endpoints:
            if endpoint.id == last:
                return endpoint
        return endpoints[0]

    # -- classification -----------------------------------------------------------------
    async def _classify_and_act(
        self, session: AsyncSession, message: InboundMessage, record: InboundRecord, match: _Match
    ) -> InboundOutcome:
        gw = self.gateway

        def outcome(classification: str, answer_label: str | None = None) -> InboundOutcome:
            record.classification = classification
            return InboundOutcome(
                inbound_id=record.id,
                duplicate=False,
                classification=classification,
                family_id=match.family.external_id if match.family else None,
                answer_label=answer_label,
            )

        if match.endpoint is None or match.guardian is None:
            record.inbox = True
            record.action = "kept as unknown sender"
            record.language = await self.detector.detect_async(message.text)
            record.detected_language = record.language
            await self._translate_for_inbox(session, record, record.language)
            return outcome("unknown_sender")
        endpoint, guardian = match.endpoint, match.guardian
        language = guardian.language
        record.language = language
        tapped = message.choice is not None or message.raw.get("button_index") is not None
        state = await self._channel_state(session, endpoint, message.channel)
        keyword = None
        if not tapped:  # read with the words of the family's language and English
            keyword = self.keywords.classify(message.text, opted_out=state.opted_out, language=language)
        if keyword in ("opt_out", "opt_out_all"):
            already = state.opted_out
            same_address = await self._same_address(session, endpoint)
            if keyword == "opt_out_all":
                # Every channel and every address of the guardian (and of guardians sharing
                # this address): the family said "all".
                guardians = {e.guardian_id for e in same_address}
                await opt_out_everywhere(session, guardians)
                action = "opted out of every channel"
            else:
                await set_channel_state(session, [e.id for e in same_address], message.channel, "opted_out")
                action = f"opted out on {message.channel}"
            if not already:
                await queue_conversation(
                    gw,
                    session,
                    template="opt_out_confirmation",
                    channel_name=message.channel,
                    address=message.sender,
                    language=language,
                    guardian=guardian,
                    family=match.family,
                    endpoint=endpoint,
                    compliance=True,
                    # Says what happened: this number only, or every channel ("STOP ALL").
                    context={"everywhere": keyword == "opt_out_all"},
                )
            record.action = action + ("" if not already else " (already)")
            return outcome("opt_out")
        if keyword == "opt_in":
            same_address = await self._same_address(session, endpoint)
            others = [c.name for c in gw.channels_for_endpoint(endpoint.kind)]
            was_out = await opt_in_on_channel(session, [e.id for e in same_address], message.channel, others)
            was_out = was_out or state.opted_out
            if was_out:
                await queue_conversation(
                    gw,
                    session,
                    template="opt_in_confirmation",
                    channel_name=message.channel,
                    address=message.sender,
                    language=language,
                    guardian=guardian,
                    family=match.family,
                    endpoint=endpoint,
                    compliance=True,
                )
            record.action = f"opted in on {message.channel}" if was_out else "already subscribed"
            return outcome("opt_in")
        if keyword == "help":
            resources = [r.model_dump() for r in gw.config.district.resources]
            strings = await gw.composer.strings(
                language, ["help_reply"], [r["name"] for r in resources], session=session
            )
            await queue_conversation(
                gw,
                session,
                template="help_reply",
                channel_name=message.channel,
                address=message.sender,
                language=language,
                guardian=guardian,
                family=match.family,
                endpoint=endpoint,
                compliance=True,
                strings=strings,
                context={"resources": [{**r, "name": strings.text(r["name"])} for r in resources]},
            )
            record.action = "sent help text"
            return outcome("help")
        language_change = re.fullmatch(r"/language\s+(\S+)", message.text.strip())
        if language_change:
            try:
                new = normalize_language(language_change.group(1))
            except LanguageError as exc:
                record.action = f"language change refused: {exc}"
                return outcome("language_change")
            guardian.language = new
            record.action = f"language set to {new} ({display_name(new)})"
            return outcome("language_change")
        if state.opted_out:
            await self._file(session, message, record, match, language, "from an opted-out endpoint")
            return outcome("free_text")
        answered = await self.surveys.handle_reply(session, message, record, match)
        if answered is not None and not answered.inbox and not self.urgency.is_urgent(message.text):
            return outcome(answered.classification, answered.label)
        await self._file(session, message, record, match, language)
        if answered is not None:
            return outcome(answered.classification, answered.label)
        return outcome("free_text")

    async def _file(
        self,
        session: AsyncSession,
        message: InboundMessage,
        record: InboundRecord,
        match: _Match,
        language: str,
        why: str | None = None,
    ) -> None:
        """Put a reply in front of staff: its language detected, translated into the staff
        language, flagged urgent (on-call told, crisis resources to the family) or as a
        possible opt-out."""
        staff_language = self.gateway.config.translation.staff_language
        detected = await self.detector.detect_async(message.text, (language, staff_language))
        record.detected_language = detected
        if detected and detected != language.split("-")[0]:
            record.language = detected
        record.inbox = True
        await self._translate_for_inbox(session, record, record.language or language)
        record.urgent = self.urgency.is_urgent(message.text, record.translation)
        record.possible_opt_out = self.keywords.mentions_opt_out(message.text)
        action = "filed in the staff inbox" if why is None else f"{why}: filed in the staff inbox"
        flags = [
            flag
            for flag, on in (("urgent", record.urgent), ("possible opt-out", record.possible_opt_out))
            if on
        ]
        record.action = (record.action + "; " if record.action else "") + action + (
            f" ({', '.join(flags)})" if flags else ""
        )
        if record.urgent:
            await self._notify_on_call(session, record, match)
            if match.endpoint is not None and (
                await self._channel_state(session, match.endpoint, message.channel)
            ).usable:
                await self._send_crisis_resources(session, message, match, language)

    async def _send_crisis_resources(
        self, session: AsyncSession, message: InboundMessage, match: _Match, language: str
    ) -> None:
        """The district's crisis resources (HELP resources of kind ``crisis``), in the family's
        language, at once."""
        gw = self.gateway
        resources = [r.model_dump() for r in gw.config.district.resources if r.kind == "crisis"]
        strings = await gw.composer.strings(
            language, ["crisis_reply"], [r["name"] for r in resources], session=session
        )
        await queue_conversation(
            gw,
            session,
            template="crisis_reply",
            channel_name=message.channel,
            address=message.sender,
            language=language,
            guardian=match.guardian,
            family=match.family,
            endpoint=match.endpoint,
            compliance=True,
            strings=strings,
            context={
                "resources": [{**r, "name": strings.text(r["name"])} for r in resources],
                "emergency_number": gw.config.district.emergency_number,
            },
        )

    async def _translate_for_inbox(
        self, session: AsyncSession, record: InboundRecord, language: str | None
    ) -> None:
        """The reply in the staff language, with where the translation came from; None (and the
        origin ``fallback``) when no engine could translate it."""
        staff = self.gateway.config.translation.staff_language
        if not language or language.split("-")[0] == staff.split("-")[0]:
            record.translation = None
            record.translation_origin = None
            return
        result = await self.gateway.translation.translate(
            record.text, staff, source=language, session=session
        )
        record.translation_origin = result.origin
        record.translation_engine = result.engine
        record.translation = result.text if result.origin in ("machine", "memory", "reviewed") else None

    async def _notify_on_call(self, session: AsyncSession, record: InboundRecord, match: _Match) -> None:
        gw = self.gateway
        cfg = gw.config.inbound
        if not cfg.on_call or cfg.on_call_channel not in gw.channels:
            return
        family = match.family.external_id if match.family else "unknown"
        for address in cfg.on_call:
            session.add(
                OutboxMessage(
                    channel=cfg.on_call_channel,
                    address=address,
                    language=gw.config.translation.staff_language,
                    subject=f"URGENT reply from family {family}",
                    body=(
                        f"An urgent reply arrived (inbox item {record.id}, family {family}, "
                        f"channel {record.channel}).\n\nOriginal: {record.text}\n"
                        f"Translation: {record.translation or '(none)'}\n"
                    ),
                    html=None,
                    payload={"staff_alert": True},
                    conversation=True,
                    status="queued",
                    due_at=utcnow(),
                )
            )

    # -- staff replies ------------------------------------------------------------------
    async def staff_reply(self, inbound_id: int, text: str, staff: str | None = None) -> OutboxMessage:
        """Translate a staff answer into the family's language and queue it on their channel;
        :class:`StaffFacingError` (nothing queued) when the family opted out of that channel or
        its address there does not work."""
        gw = self.gateway
        async with gw.db.session() as session:
            record = await session.get(InboundRecord, inbound_id)
            if record is None:
                raise LookupError(f"no inbox item {inbound_id}")
            guardian = await session.get(Guardian, record.guardian_id) if record.guardian_id else None
            family = await session.get(Family, record.family_id) if record.family_id else None
            endpoint = await session.get(Endpoint, record.endpoint_id) if record.endpoint_id else None
            if endpoint is not None and await blocked_pairs(session, [(endpoint.id, record.channel)]):
                # It would only be cancelled at dispatch: say so now, and queue nothing.
                raise StaffFacingError(StaffNote(notes.REPLY_NOT_ALLOWED, {"channel": record.channel}))
            language = guardian.language if guardian else (record.language or "en")
            strings = await gw.composer.strings(
                language,
                ["staff_reply"],
                [text],
                session=session,
                names=[guardian.name] if guardian and guardian.name else (),
                text_language=gw.config.translation.staff_language,
            )
            translated = strings.text(text)
            row = await queue_conversation(
                gw,
                session,
                template="staff_reply",
                channel_name=record.channel,
                address=record.sender,
                language=language,
                guardian=guardian,
                family=family,
                endpoint=endpoint,
                strings=strings,
                context={"text": translated},
                payload={
                    "in_reply_to_inbound": record.id,
                    "translation_origin": str(translated.origin),
                    "staff_text": text,
                },
            )
            record.answered_at = utcnow()
            record.read = True
            await session.commit()
            return row


def _record_values(message: InboundMessage) -> dict[str, Any]:
    """Column values of a new inbound record; the fields without a column ride in ``raw``."""
    raw = _jsonable(dict(message.raw))
    extra = {
        "choice": message.choice,
        "in_reply_to_message_id": message.in_reply_to_message_id,
        "reply_token": message.reply_token,
        "provider_in_reply_to": list(message.provider_in_reply_to),
    }
    if any(extra.values()):
        raw = {**raw, "_gateway": extra}
    return {
        "channel": message.channel,
        "provider_message_id": message.provider_message_id,
        "sender": message.sender,
        "text": message.text,
        "received_at": message.received_at,
        "raw": raw,
        "truncated": is_truncated(message),
    }


def _message_from_record(record: InboundRecord) -> InboundMessage:
    """The reply as the channel handed it, rebuilt from its stored record."""
    raw = dict(record.raw or {})
    extra = raw.pop("_gateway", {}) or {}
    return InboundMessage(
        channel=record.channel,
        provider_message_id=record.provider_message_id,
        sender=record.sender,
        text=record.text,
        received_at=record.received_at,
        choice=extra.get("choice"),
        in_reply_to_message_id=extra.get("in_reply_to_message_id"),
        reply_token=extra.get("reply_token"),
        provider_in_reply_to=tuple(extra.get("provider_in_reply_to") or ()),
        raw=raw,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
