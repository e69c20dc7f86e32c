"""Broadcast planning: audience → one outbox row per guardian × endpoint, rendered in the
guardian's language, written in one transaction before anything is sent.

Nothing here sends. A template error anywhere aborts the whole broadcast before any row is
written; opted-out and invalid endpoints are never planned; quiet hours set ``due_at``.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.channels import Button, Channel, OutboundMessage
from gateway.domain.audience import Audience, parse_audience
from gateway.domain.statuses import overall_status
from gateway.domain.surveys import SurveySpec
from gateway.errors import GatewayError
from gateway.outbox.quiet_hours import (
    defer_for_quiet_hours,
    defer_for_quiet_hours_everywhere,
    quiet_hours_apply,
)
from gateway.outbox.routing import check_max_length, endpoint_for_channel, parse_fallback, route
from gateway.rendering.composer import (
    ComposedMessage,
    fallback_note_origin,
    localize_event,
    shows_buttons,
    what_families_got,
)
from gateway.rendering.formatting import format_names
from gateway.storage.db import BROADCAST_TABLES
from gateway.storage.endpoints import ChannelState, channel_states
from gateway.storage.models import (
    Broadcast,
    Endpoint,
    Family,
    Guardian,
    OutboxMessage,
    Student,
    SurveySession,
    utcnow,
)
from gateway.translation.strings import LanguageStrings, Origin

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = [
    "BroadcastPlanner",
    "BroadcastRequest",
    "BroadcastSummary",
    "event_context",
    "request_from_broadcast",
    "shown_choices",
    "translation_summary",
]

log = logging.getLogger("gateway.planner")
#: Families read per query (keyset pagination), and outbox rows / survey sessions written per
#: statement: what bounds the planner's memory and every query's parameter count.
FAMILY_CHUNK = 1000
INSERT_CHUNK = 2000
#: Listed families or guardians up to this many are matched in SQL; more are matched chunk by
#: chunk in Python (a parameter list as long as the audience fails on SQLite and PostgreSQL).
LISTED_IN_QUERY = 1000


@dataclass
class BroadcastRequest:
    """What to send, to whom, how and when."""

    template: str
    audience: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    event: dict[str, Any] | None = None
    event_id: int | None = None
    survey: SurveySpec | None = None
    survey_id: int | None = None
    question_id: str | None = None
    channels: list[str] | None = None
    policy: Literal["preferred", "all"] = "preferred"
    send_at: datetime | None = None
    urgent: bool = False
    kind: str = "message"
    created_by: str | None = None
    idempotency_key: str | None = None
    idempotency_hash: str | None = None
    only_guardians: set[int] | None = None
    exclude_guardians: set[int] | None = None
    school_scope: list[str] | None = None


@dataclass
class BroadcastSummary:
    """The ``broadcast send --json`` shape, plus details for the dry-run summary."""

    broadcast_id: int | None
    status: str
    families: int = 0
    messages: int = 0
    by_language: Counter[str] = field(default_factory=Counter)
    by_channel: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    deferred_quiet_hours: int = 0
    """Messages not yet sent because quiet hours had begun where the family lives."""
    deferred_until: datetime | None = None
    """When the first of them goes (the earliest end of quiet hours)."""
    translation: dict[str, dict[str, Any]] = field(default_factory=dict)
    preview: dict[str, dict[str, Any]] = field(default_factory=dict)
    send_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "broadcast_id": self.broadcast_id,
            "status": self.status,
            "families": self.families,
            "messages": self.messages,
            "by_language": dict(sorted(self.by_language.items())),
            "by_channel": dict(sorted(self.by_channel.items())),
            "by_status": dict(sorted(self.by_status.items())),
            "skipped": self.skipped,
            "deferred_quiet_hours": self.deferred_quiet_hours,
            "deferred_until": self.deferred_until.isoformat() if self.deferred_until else None,
            "translation": self.translation,
            "preview": self.preview,
            "send_at": self.send_at.isoformat() if self.send_at else None,
        }


@dataclass
class _LanguagePack:
    """Everything translated once per language for one broadcast."""

    language: str
    strings: LanguageStrings
    event: dict[str, Any] | None
    question: dict[str, Any] | None
    survey: dict[str, Any] | None
    extra: dict[str, Any]
    pieces: set[tuple[str, str, Origin]] = field(default_factory=set)
    """What the messages rendered so far in this language were made of."""


#: Context keys of a plain message whose string value is free text to translate.
TEXT_KEYS = frozenset({"text", "title", "body", "link_text"})
#: Context values that differ from one family to the next.
PERSONAL = frozenset({"guardian", "family", "student_names"})
#: Stands in for the per-message unsubscribe token while a shared rendering is made.
TOKEN_SENTINEL = "GWTOKENSENTINELx7Qz"


@dataclass
class _RenderState:
    """Per-plan state of the renderer loop: shared renderings and one timestamp."""

    now: datetime
    cache: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    zones: frozenset[str] = frozenset()
    """The district's time zones: quiet hours for a guardian whose own is unknown."""


@dataclass(slots=True)
class AudienceEndpoint:
    """An endpoint as the planner reads it."""

    id: int
    kind: str
    address: str
    opted_out: bool
    invalid: bool
    channel_states: dict[str, ChannelState] = field(default_factory=dict)
    """Marks of this endpoint on single channels (its own ``opted_out``/``invalid``: all)."""


@dataclass(slots=True)
class AudienceGuardian:
    """A guardian as the planner reads it."""

    id: int
    name: str
    language: str
    timezone: str
    preferred_channel: str | None
    endpoints: list[AudienceEndpoint] = field(default_factory=list)
    timezone_assumed: bool = False


@dataclass(slots=True)
class AudienceStudent:
    """A student as the planner reads it."""

    name: str
    school: str | None
    grade: str | None
    tags: list[str]


@dataclass(slots=True)
class AudienceFamily:
    """A family as the planner reads it."""

    id: int
    external_id: str
    guardians: list[AudienceGuardian] = field(default_factory=list)
    students: list[AudienceStudent] = field(default_factory=list)


async def _load_audience_chunk(session: AsyncSession, family_ids: list[int]) -> list[AudienceFamily]:
    """Families, guardians, endpoints and students of ``family_ids`` in four plain queries."""
    families = {
        fid: AudienceFamily(fid, ext)
        for fid, ext in await session.execute(
            select(Family.id, Family.external_id).where(Family.id.in_(family_ids)).order_by(Family.id)
        )
    }
    guardians: dict[int, AudienceGuardian] = {}
    for gid, fid, name, language, timezone, preferred, assumed in await session.execute(
        select(
            Guardian.id,
            Guardian.family_id,
            Guardian.name,
            Guardian.language,
            Guardian.timezone,
            Guardian.preferred_channel,
            Guardian.timezone_assumed,
        )
        .where(Guardian.family_id.in_(family_ids))
        .order_by(Guardian.id)
    ):
        guardian = AudienceGuardian(gid, name, language, timezone, preferred, timezone_assumed=bool(assumed))
        guardians[gid] = guardian
        families[fid].guardians.append(guardian)
    if guardians:
        for eid, gid, kind, address, opted_out, invalid in await session.execute(
            select(
                Endpoint.id,
                Endpoint.guardian_id,
                Endpoint.kind,
                Endpoint.address,
                Endpoint.opted_out,
                Endpoint.invalid,
            )
            # By family, not by guardian id: as many parameters as families in the chunk.
            .where(Endpoint.guardian_id.in_(select(Guardian.id).where(Guardian.family_id.in_(family_ids))))
            .order_by(Endpoint.id)
        ):
            guardians[gid].endpoints.append(AudienceEndpoint(eid, kind, address, opted_out, invalid))
        await _load_channel_states(session, guardians.values())
    for fid, name, school, grade, tags in await session.execute(
        select(Student.family_id, Student.name, Student.school, Student.grade, Student.tags)
        .where(Student.family_id.in_(family_ids))
        .order_by(Student.id)
    ):
        families[fid].students.append(AudienceStudent(name, school, grade, list(tags or [])))
    return list(families.values())


async def _load_channel_states(session: AsyncSession, guardians: Any) -> None:
    """Attach per-channel consent to the endpoints of ``guardians``."""
    endpoints = {e.id: e for g in guardians for e in g.endpoints}
    if endpoints:
        for endpoint_id, states in (await channel_states(session, endpoints)).items():
            endpoints[endpoint_id].channel_states = states


class Rerenderer:
    """Renders rows of a stored broadcast again through the planner's own path (held messages
    once reviewed, a fallback to the guardian's next endpoint), translating once per language
    and question."""

    def __init__(self, planner: BroadcastPlanner, session: AsyncSession, broadcast: Broadcast) -> None:
        self.planner = planner
        self.session = session
        self.broadcast = broadcast
        self.state = _RenderState(now=utcnow(), zones=planner.configured_zones())
        self._packs: dict[tuple[str, str | None], tuple[BroadcastRequest, _LanguagePack]] = {}

    async def row(self, row: Any, channel_name: str, endpoint_id: int | None) -> dict[str, Any] | None:
        """The row's columns rendered for ``channel_name`` and ``endpoint_id``; None while its
        text waits for review, or when the family, guardian or endpoint is gone."""
        gw = self.planner.gateway
        question_id = (row.payload or {}).get("question_id")
        key = (row.language, question_id)
        if key not in self._packs:
            request = await request_from_broadcast(gw, self.session, self.broadcast, question_id)
            pack = await self.planner._language_pack(request, row.language, self.session)
            self._packs[key] = (request, pack)
        request, pack = self._packs[key]
        if row.family_id is None:
            return None
        families = await _load_audience_chunk(self.session, [row.family_id])
        family = families[0] if families else None
        guardian = next((g for g in family.guardians if g.id == row.guardian_id), None) if family else None
        endpoint = next((e for e in guardian.endpoints if e.id == endpoint_id), None) if guardian else None
        if family is None or guardian is None or endpoint is None:
            return None
        channel = gw.channel(channel_name)
        reached = endpoint_for_channel(gw, channel, [endpoint])
        if not reached:
            return None
        endpoint = reached[0]
        steps = parse_fallback((row.payload or {}).get("fallback"))
        remaining = [[c, e] for c, e in steps if (c, e) != (channel_name, endpoint_id)]
        fresh = self.planner._render_row(
            request,
            pack,
            family,
            guardian,
            family.students,
            channel,
            endpoint,
            self.state.now,
            self.broadcast.id,
            remaining,
            self.state,
        )
        return None if fresh["status"] == "held" else fresh


class BroadcastPlanner:
    """Turns a :class:`BroadcastRequest` into outbox rows."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    # -- time zones ---------------------------------------------------------------------
    def configured_zones(self) -> frozenset[str]:
        """The district's configured time zones (``district.timezone``, the families' default)."""
        config = self.gateway.config
        return frozenset({config.district_timezone, config.families.default_timezone})

    def due_at(
        self,
        channel: Channel,
        guardian: AudienceGuardian,
        send_at: datetime,
        urgent: bool,
        zones: frozenset[str],
    ) -> datetime:
        """When a message of a broadcast sent at ``send_at`` goes to ``guardian`` on ``channel``:
        then, or at the end of quiet hours where the guardian lives (everywhere the district's
        families live, ``zones``, when their own time zone is unknown)."""
        quiet = self.gateway.config.quiet_hours
        if urgent or not quiet.enabled or not quiet_hours_apply(channel):
            return send_at
        if guardian.timezone_assumed:
            return defer_for_quiet_hours_everywhere(send_at, zones, quiet.start, quiet.end)
        return defer_for_quiet_hours(send_at, guardian.timezone, quiet.start, quiet.end)

    async def district_zones(self, session: AsyncSession) -> frozenset[str]:
        """Every time zone the district's guardians live in, and the configured ones: quiet hours
        for a guardian whose own time zone is unknown take the most restrictive window of all."""
        rows = await session.scalars(
            select(Guardian.timezone).where(Guardian.timezone_assumed.is_(False)).distinct()
        )
        return self.configured_zones() | frozenset(rows)

    # -- public -------------------------------------------------------------------------
    async def plan(
        self, request: BroadcastRequest, *, dry_run: bool = False, session: AsyncSession | None = None
    ) -> BroadcastSummary:
        """Plan (and unless ``dry_run``, write) a broadcast; returns its summary.

        With ``session``, everything is written in the caller's transaction, which the caller
        commits (so what the broadcast belongs to — its survey, its scheduled jobs — is
        committed with it, or nothing is).
        """
        if session is not None and dry_run:
            raise ValueError("a dry run plans in a session of its own")
        own_session = session is None
        gw = self.gateway
        gw.renderer.check(request.template)
        audience = parse_audience(request.audience)
        if request.school_scope is not None:
            audience = audience.restricted_to_schools(request.school_scope)
        channels = self._allowed_channels(request.channels)
        send_at = request.send_at or utcnow()
        summary = BroadcastSummary(
            broadcast_id=None, status="dry-run" if dry_run else "queued", send_at=request.send_at
        )
        packs: dict[str, _LanguagePack] = {}
        async with gw.db.session() if own_session else contextlib.nullcontext(session) as session:
            # A repeated idempotency key is answered before planning (gateway.web.actions); a
            # concurrent one fails on the key's unique constraint when the broadcast is flushed.
            broadcast = None
            if not dry_run:
                broadcast = Broadcast(
                    kind=request.kind,
                    template=request.template,
                    context=_jsonable(request.context),
                    audience=request.audience,
                    channels=request.channels,
                    policy=request.policy,
                    urgent=request.urgent,
                    status="planning",
                    send_at=send_at,
                    event_id=request.event_id,
                    survey_id=request.survey_id,
                    idempotency_key=request.idempotency_key,
                    idempotency_hash=request.idempotency_hash,
                    created_by=request.created_by,
                )
                session.add(broadcast)
                await session.flush()
                summary.broadcast_id = broadcast.id
            rows: list[dict[str, Any]] = []
            sessions: list[dict[str, Any]] = []
            previewed: set[tuple[str, str]] = set()
            queue_units: Counter[str] = Counter()
            state = _RenderState(now=utcnow(), zones=await self.district_zones(session))
            async for family, guardians, students in self._audience(session, audience, request):
                planned_family = False
                for guardian in guardians:
                    targets, reason = self._targets(guardian, channels, request.policy)
                    if not targets:
                        summary.skipped.append(
                            {"family_id": family.external_id, "guardian": guardian.name, "reason": reason}
                        )
                        continue
                    pack = packs.get(guardian.language)
                    if pack is None:
                        # A dry run rolls its session back; its translations are kept all the same.
                        pack = await self._language_pack(
                            request, guardian.language, None if dry_run else session
                        )
                        packs[guardian.language] = pack
                    fallback_ids = (
                        [[c.name, e.id] for c, e in targets[1:]] if request.policy == "preferred" else []
                    )
                    chosen = targets[:1] if request.policy == "preferred" else targets
                    for channel, endpoint in chosen:
                        row = self._render_row(
                            request,
                            pack,
                            family,
                            guardian,
                            students,
                            channel,
                            endpoint,
                            send_at,
                            broadcast.id if broadcast else None,
                            fallback_ids,
                            state,
                        )
                        check_max_length(channel, guardian.language, row["body"])
                        if row["due_at"] != send_at:
                            summary.deferred_quiet_hours += 1
                            if summary.deferred_until is None or row["due_at"] < summary.deferred_until:
                                summary.deferred_until = row["due_at"]
                        rows.append(row)
                        summary.messages += 1
                        summary.by_language[guardian.language] += 1
                        summary.by_channel[channel.name] += 1
                        summary.by_status[row["status"]] += 1
                        if channel.rate_per_second:
                            queue_units[channel.name] += channel.cost_units(_as_outbound(row))
                        key = (guardian.language, channel.name)
                        if key not in previewed:
                            previewed.add(key)
                            details = dict(channel.preview_details(_as_outbound(row)))
                            if details:
                                summary.preview.setdefault(guardian.language, {})[channel.name] = details
                    if request.survey_id is not None and request.question_id and not dry_run:
                        channel, endpoint = chosen[0]
                        sessions.append(
                            {
                                "survey_id": request.survey_id,
                                "family_id": family.id,
                                "guardian_id": guardian.id,
                                "channel": channel.name,
                                "address": endpoint.address,
                                "language": guardian.language,
                                "current_question": request.question_id,
                                "status": "open",
                            }
                        )
                    planned_family = True
                if planned_family:
                    summary.families += 1
                if len(rows) >= INSERT_CHUNK:
                    await self._write_chunk(session, rows, sessions, dry_run)
            self._check_queue_time(queue_units)
            await self._write_chunk(session, rows, sessions, dry_run)
            for language, pack in packs.items():
                summary.translation[language] = translation_summary(gw, language, pack.pieces, pack.strings)
                reviewed = sum(1 for kind, _, o in pack.pieces if kind == "template" and o is Origin.REVIEWED)
                if reviewed:
                    gw.translation.count(language, "reviewed", reviewed)
            if broadcast is not None:
                broadcast.status = "queued" if summary.messages else "empty"
                broadcast.summary = summary.as_dict()
                summary.status = str(overall_status(broadcast.status, summary.by_status, send_at))
                if own_session:
                    await session.commit()
                else:
                    await session.flush()
            else:
                await session.rollback()
        if own_session:
            if not dry_run:
                await gw.db.refresh_statistics(BROADCAST_TABLES, summary.messages)
            await gw.translation.flush_stats()
        return summary

    async def samples(
        self,
        request: BroadcastRequest,
        *,
        languages: Sequence[str] | None = None,
        wanted: set[tuple[str, str]] | None = None,
        sample_timezone: str | None = None,
    ) -> list[dict[str, Any]]:
        """The preview: for each language × channel of the audience, the message exactly as
        :meth:`plan` renders it for the first guardian who reads that language on that channel.

        ``languages`` limits (and, where the audience has nobody for one, adds) languages: a
        sample guardian stands in for those. ``wanted`` lets the walk stop once every
        (language, channel) pair in it has its sample. Nothing is written.
        """
        gw = self.gateway
        gw.renderer.check(request.template)
        audience = parse_audience(request.audience)
        if request.school_scope is not None:
            audience = audience.restricted_to_schools(request.school_scope)
        channels = self._allowed_channels(request.channels)
        state = _RenderState(now=utcnow(), zones=self.configured_zones())
        send_at = request.send_at or state.now
        packs: dict[str, _LanguagePack] = {}
        found: dict[tuple[str, str], dict[str, Any]] = {}

        async def render(family: Any, guardian: Any, channel: Channel, endpoint: Any, sample: bool) -> None:
            pack = packs.get(guardian.language)
            if pack is None:
                pack = packs[guardian.language] = await self._language_pack(request, guardian.language)
            row = self._render_row(
                request, pack, family, guardian, family.students, channel, endpoint, send_at, None, [], state
            )
            found[(guardian.language, channel.name)] = {
                "language": guardian.language,
                "channel": channel.name,
                "variant": channel.variant,
                "family_id": None if sample else family.external_id,
                "guardian": guardian.name,
                "subject": row["subject"],
                "body": row["body"],
                "html": row["html"],
                "status": row["status"],
                "sources": row["payload"]["sources"],
                "received": what_families_got(
                    (o for kind in row["payload"]["sources"].values() for o in kind),
                    fallback_note_origin(pack.pieces),
                ),
                "details": dict(channel.preview_details(_as_outbound(row))),
            }

        async with gw.db.session() as session:
            async for family, guardians, _students in self._audience(session, audience, request):
                for guardian in guardians:
                    if languages is not None and guardian.language not in languages:
                        continue
                    targets, _reason = self._targets(guardian, channels, request.policy)
                    chosen = targets[:1] if request.policy == "preferred" else targets
                    for channel, endpoint in chosen:
                        if (guardian.language, channel.name) not in found:
                            await render(family, guardian, channel, endpoint, sample=False)
                if wanted is not None and wanted <= set(found):
                    break
            await session.rollback()
        zone = sample_timezone or gw.config.families.default_timezone
        for language in languages or ():
            for channel in channels:
                if (language, channel.name) in found:
                    continue
                endpoint = AudienceEndpoint(0, channel.kind, "", False, False)
                guardian = AudienceGuardian(0, "Amina", language, zone, channel.name, [endpoint])
                family = AudienceFamily(0, "PREVIEW", [guardian], [AudienceStudent("Omar", None, None, [])])
                await render(family, guardian, channel, endpoint, sample=True)
        await gw.translation.flush_stats()
        language_order = {lang: i for i, lang in enumerate(languages or ())}
        channel_order = {c.name: i for i, c in enumerate(channels)}
        return [
            found[key]
            for key in sorted(found, key=lambda k: (language_order.get(k[0], len(language_order)), k[0],
                                                    channel_order.get(k[1], 0)))
        ]

    def _check_queue_time(self, units: Counter[str]) -> None:
        """Refuse a broadcast that would sit in a provider's queue longer than the channel's
        ``max_queue_hours`` (Twilio drops messages queued more than 10 hours per sender)."""
        for name, total in units.items():
            channel = self.gateway.channels[name]
            limit = getattr(channel.settings, "max_queue_hours", None)
            rate = channel.rate_per_second
            if not limit or not rate:
                continue
            hours = total / rate / 3600
            if hours > limit:
                raise GatewayError(
                    f"channel {name}: {total} units at {rate:g}/s would take about {hours:.1f} hours, "
                    f"more than its provider queue limit of {limit:g} hours; split the audience "
                    "or raise the channel's rate_per_second"
                )

    async def status(self, broadcast_id: int, family_ids: Select[Any] | None = None) -> BroadcastSummary:
        """Current counts of a broadcast from the outbox; of the families ``family_ids``
        selects (a sub-select of family ids), when given."""
        async with self.gateway.db.session() as session:
            broadcast = await session.get(Broadcast, broadcast_id)
            if broadcast is None:
                raise GatewayError(f"no broadcast with id {broadcast_id}")
            mine = [OutboxMessage.broadcast_id == broadcast_id]
            if family_ids is not None:
                mine.append(OutboxMessage.family_id.in_(family_ids))
            result = await session.execute(
                select(
                    OutboxMessage.language,
                    OutboxMessage.channel,
                    OutboxMessage.status,
                    func.count(OutboxMessage.id),
                    func.count(func.distinct(OutboxMessage.family_id)),
                )
                .where(*mine)
                .group_by(OutboxMessage.language, OutboxMessage.channel, OutboxMessage.status)
            )
            families = await session.scalar(
                select(func.count(func.distinct(OutboxMessage.family_id))).where(*mine)
            )
            # Never tried and due after the broadcast's own time: waiting for quiet hours to end.
            deferred, deferred_until = (
                await session.execute(
                    select(func.count(OutboxMessage.id), func.min(OutboxMessage.due_at)).where(
                        *mine,
                        OutboxMessage.status == "queued",
                        OutboxMessage.attempts == 0,
                        OutboxMessage.due_at > broadcast.send_at,
                    )
                )
            ).one()
        summary = BroadcastSummary(broadcast_id=broadcast_id, status=broadcast.status)
        summary.deferred_quiet_hours = deferred
        summary.deferred_until = deferred_until
        funnel: dict[str, Counter[str]] = defaultdict(Counter)
        for language, channel, status, count, _ in result:
            summary.messages += count
            summary.by_language[language] += count
            summary.by_channel[channel] += count
            summary.by_status[status] += count
            funnel[language][status] += count
        summary.families = families or 0
        stored = broadcast.summary or {}
        summary.skipped = stored.get("skipped", [])
        summary.translation = stored.get("translation", {})
        summary.preview = stored.get("preview", {})
        summary.status = str(overall_status(broadcast.status, summary.by_status, broadcast.send_at))
        summary.send_at = broadcast.send_at
        summary.translation = {**summary.translation}
        summary.funnel = {k: dict(v) for k, v in funnel.items()}  # type: ignore[attr-defined]
        return summary

    async def release_held(self, broadcast_id: int, language: str | None = None) -> dict[str, int]:
        """Render held messages again (reviewed translations now in the memory) and queue them.

        Messages whose free text still has no acceptable translation stay held.
        """
        released = still_held = 0
        async with self.gateway.db.session() as session:
            broadcast = await session.get(Broadcast, broadcast_id)
            if broadcast is None:
                raise GatewayError(f"no broadcast with id {broadcast_id}")
            query = select(OutboxMessage).where(
                OutboxMessage.broadcast_id == broadcast_id, OutboxMessage.status == "held"
            )
            if language:
                query = query.where(OutboxMessage.language == language)
            rerender = Rerenderer(self, session, broadcast)
            for row in list(await session.scalars(query)):
                fresh = await rerender.row(row, row.channel, row.endpoint_id)
                if fresh is None:
                    still_held += 1
                    continue
                for key in ("subject", "body", "html", "payload", "due_at", "reply_token"):
                    setattr(row, key, fresh[key])
                row.status = "queued"
                row.updated_at = fresh["updated_at"]
                released += 1
            await session.commit()
        await self.gateway.translation.flush_stats()
        return {"released": released, "still_held": still_held}

    # -- audience -------------------------------------------------------------------------
    async def _audience(
        self, session: AsyncSession, audience: Audience, request: BroadcastRequest
    ) -> AsyncIterator[tuple[AudienceFamily, list[AudienceGuardian], list[AudienceStudent]]]:
        """Families in the audience, in chunks, with their matching guardians and students.

        Plain rows, not ORM entities, read chunk by chunk (:meth:`_family_id_chunks`): a
        broadcast to 1,000,000 families holds one chunk at a time (memory stays flat).
        """
        async for chunk in self._family_id_chunks(session, audience, request):
            for family in await _load_audience_chunk(session, chunk):
                students = family.students
                if audience.filters_students:
                    students = [
                        s for s in students if audience.matches_student(s.school, s.grade, s.tags or [])
                    ]
                    if not students:
                        continue
                guardians = [
                    g
                    for g in family.guardians
                    if audience.matches_language(g.language)
                    and (request.only_guardians is None or g.id in request.only_guardians)
                    and not (request.exclude_guardians and g.id in request.exclude_guardians)
                ]
                if guardians:
                    yield family, guardians, students

    async def _family_id_chunks(
        self, session: AsyncSession, audience: Audience, request: BroadcastRequest
    ) -> AsyncIterator[list[int]]:
        """Ids of the audience's families, ascending, :data:`FAMILY_CHUNK` at a time (keyset
        pagination on ``families.id``), so no query's parameter count grows with the audience.

        A listed set of families (``family:``) or guardians (``only_guardians``, e.g. a
        reminder's non-respondents) goes into the query while it is small; a longer one is
        matched here against each chunk instead (the chunk is then the whole district's).
        """
        query = select(Family.id, Family.external_id).order_by(Family.id)
        if audience.schools:
            query = query.where(
                Family.id.in_(
                    select(Student.family_id).where(func.lower(Student.school).in_(sorted(audience.schools)))
                )
            )
        listed = audience.families
        if listed and len(listed) <= LISTED_IN_QUERY:
            query = query.where(Family.external_id.in_(sorted(listed)))
            listed = frozenset()
        only = request.only_guardians
        if only is not None and len(only) <= LISTED_IN_QUERY:
            query = query.where(
                Family.id.in_(select(Guardian.family_id).where(Guardian.id.in_(sorted(only))))
            )
        last: int | None = None
        while True:
            page = query if last is None else query.where(Family.id > last)
            rows = (await session.execute(page.limit(FAMILY_CHUNK))).all()
            if not rows:
                return
            last = rows[-1][0]
            # A long ``only_guardians`` is matched guardian by guardian in :meth:`_audience`.
            ids = [fid for fid, ext in rows if not listed or ext in listed]
            if ids:
                yield ids

    def _allowed_channels(self, names: Sequence[str] | None) -> list[Channel]:
        gw = self.gateway
        if names:
            return [gw.channel(n) for n in names]
        return [c for c in gw.channels.values() if c.settings.enabled]

    def _targets(
        self, guardian: AudienceGuardian, channels: list[Channel], policy: str
    ) -> tuple[list[tuple[Channel, AudienceEndpoint]], str]:
        """Usable (channel, endpoint) pairs in preference order, or the reason there are none
        (:func:`gateway.outbox.routing.route`)."""
        return route(self.gateway, guardian, channels, policy)

    # -- translation and rendering --------------------------------------------------------
    async def _language_pack(
        self, request: BroadcastRequest, language: str, session: AsyncSession | None = None
    ) -> _LanguagePack:
        """Translate every string of the broadcast into ``language`` once: the template's own
        strings and the free text (event, question, survey, message text)."""
        gw = self.gateway
        composer = gw.composer
        texts: list[str | None] = []
        event = dict(request.event) if request.event else None
        if event:
            texts += [event.get("title"), event.get("description"), event.get("place")]
        question = (
            request.survey.question(request.question_id) if (request.survey and request.question_id) else None
        )
        if question:
            texts += composer.question_texts(question, request.survey)
        elif request.survey:
            texts.append(request.survey.title)
        extra_keys = [k for k, v in request.context.items() if isinstance(v, str) and k in TEXT_KEYS]
        texts += [request.context[k] for k in extra_keys]
        strings = await composer.strings(language, [request.template], texts, session=session)
        if event:
            for key in ("title", "description", "place"):
                event[key] = strings.text(event.get(key))
        question_ctx = composer.question_context(question, request.survey, strings) if question else None
        survey_ctx = None
        if request.survey:
            survey_ctx = {"id": request.survey.id, "title": strings.text(request.survey.title)}
        extra = {k: strings.text(request.context[k]) for k in extra_keys}
        return _LanguagePack(language, strings, event, question_ctx, survey_ctx, extra)

    def _render_row(
        self,
        request: BroadcastRequest,
        pack: _LanguagePack,
        family: AudienceFamily,
        guardian: AudienceGuardian,
        students: list[AudienceStudent],
        channel: Channel,
        endpoint: AudienceEndpoint,
        send_at: datetime,
        broadcast_id: int | None,
        fallback_ids: list[int],
        state: _RenderState | None = None,
    ) -> dict[str, Any]:
        gw = self.gateway
        state = state or _RenderState(now=utcnow(), zones=self.configured_zones())
        language = guardian.language
        token = secrets.token_urlsafe(16)
        wants_unsubscribe = channel.variant == "email" and bool(gw.config.http.public_base_url)
        buttons = pack.question is not None and shows_buttons(channel, pack.question)
        names = gw.renderer.referenced_names(request.template, channel.variant, channel.template_blocks)
        shared = names is not None and not (names & PERSONAL)
        key = (request.template, channel.name, language, guardian.timezone, buttons, wants_unsubscribe)
        composed: ComposedMessage | None = state.cache.get(key) if shared else None
        if composed is None:
            context: dict[str, Any] = dict(request.context)
            context.update(pack.extra)
            context.update(
                {
                    "guardian": {"name": guardian.name, "language": language},
                    "family": {"family_id": family.external_id},
                    "student_names": format_names([s.name.split()[0] for s in students], language)
                    if names is None or "student_names" in names
                    else "",
                    "buttons": buttons,
                    "unsubscribe_url": gw.public_url(f"/unsubscribe/{TOKEN_SENTINEL}")
                    if wants_unsubscribe
                    else None,
                }
            )
            if pack.event:
                context["event"] = localize_event(pack.event, guardian.timezone)
            if pack.question:
                context["question"] = pack.question
                context["survey"] = pack.survey
            composed = gw.composer.render(request.template, channel, pack.strings, context)
            if shared:
                state.cache[key] = composed
            pack.pieces.update((p.kind, p.source, p.origin) for p in composed.pieces)
        body, subject, html = composed.body, composed.subject, composed.html
        unsubscribe_url = None
        if wants_unsubscribe:
            unsubscribe_url = gw.public_url(f"/unsubscribe/{token}")
            body = body.replace(TOKEN_SENTINEL, token)
            html = html.replace(TOKEN_SENTINEL, token) if html else html
            subject = subject.replace(TOKEN_SENTINEL, token) if subject else subject
        due = self.due_at(channel, guardian, send_at, request.urgent, state.zones)
        payload: dict[str, Any] = {
            "direction": composed.direction,
            "family_id": family.external_id,
            "sources": composed.origins(),
            # which template wrote it: a channel may need it (WhatsApp's approved templates)
            "template": request.template,
        }
        if unsubscribe_url:
            payload["unsubscribe_url"] = unsubscribe_url
        if fallback_ids:
            payload["fallback"] = fallback_ids
        attachment = request.context.get("attachment")
        if isinstance(attachment, dict) and channel.features.media:
            payload["attachments"] = [
                {**attachment, "path": str(gw.data_dir / "attachments" / attachment["token"])}
            ]
        if pack.question:
            payload["survey_id"] = request.survey_id
            payload["question_id"] = pack.question["id"]
            payload["choices"] = shown_choices(pack.question)
            if composed.buttons:
                payload["buttons"] = [[b.value, b.label] for b in composed.buttons]
        return {
            "broadcast_id": broadcast_id,
            "family_id": family.id,
            "guardian_id": guardian.id,
            "endpoint_id": endpoint.id,
            "channel": channel.name,
            "address": endpoint.address,
            "language": language,
            "subject": subject,
            "body": body,
            "html": html,
            "payload": payload,
            "conversation": False,
            "status": "held" if composed.held else "queued",
            "due_at": due,
            "attempts": 0,
            "reply_token": token,
            "cost_units": 1,
            "created_at": state.now,
            "updated_at": state.now,
        }

    async def _write_chunk(
        self, session: AsyncSession, rows: list[dict[str, Any]], sessions: list[dict[str, Any]], dry_run: bool
    ) -> None:
        """Write the outbox rows and survey sessions planned so far (not in a dry run), and
        forget them: what the planner holds stays one chunk."""
        if rows and not dry_run:
            await session.execute(OutboxMessage.__table__.insert(), rows)
        if sessions and not dry_run:
            await self._upsert_sessions(session, sessions)
        rows.clear()
        sessions.clear()

    async def _upsert_sessions(self, session: AsyncSession, sessions: list[dict[str, Any]]) -> None:
        """Open a survey session per guardian; one still open gets the new channel and address,
        one already finished stays as it is. One ``INSERT ... ON CONFLICT DO UPDATE`` per chunk
        (at most about :data:`INSERT_CHUNK` sessions): no look-up whose cost grows with the
        sessions written so far (PostgreSQL has no statistics for rows of this transaction)."""
        if self.gateway.db.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        table = SurveySession.__table__
        unique = {(data["survey_id"], data["guardian_id"]): data for data in sessions}
        statement = dialect_insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=["survey_id", "guardian_id"],
            set_={"channel": statement.excluded.channel, "address": statement.excluded.address},
            where=table.c.status == "open",
        )
        await session.execute(statement, list(unique.values()))


def shown_choices(question: dict[str, Any]) -> list[list[Any]]:
    """``[[value, label, [synonyms...]], ...]`` of a question as the family was shown it: what a
    reply is matched against."""
    return [[c["value"], str(c["label"]), list(c.get("synonyms", []))] for c in question["choices"]]


def translation_summary(
    gw: Gateway, language: str, pieces: set[tuple[str, str, Origin]], strings: LanguageStrings | None = None
) -> dict[str, Any]:
    """What the families of one language got: origins of template strings and free texts, one
    word for the whole (``reviewed``, ``machine``, ``english``, ``english_only``, ``held``,
    ``source``: see :func:`~gateway.rendering.composer.what_families_got`), and why
    what stayed in English did (``no engine``, ``unreachable``, ``refused``, ``placeholder lost``)."""
    template: Counter[str] = Counter()
    texts: Counter[str] = Counter()
    reasons: set[str] = set()
    for kind, source, origin in pieces:
        (template if kind == "template" else texts)[str(origin)] += 1
        if origin.untranslated and strings is not None:
            reasons.add(strings.reason(source) or "failed")
    return {
        "why_untranslated": sorted(reasons),
        "catalog": gw.catalogs.catalog_language(language),
        "template": dict(sorted(template.items())),
        "texts": dict(sorted(texts.items())),
        "held": bool(template.get("held") or texts.get("held")),
        "received": what_families_got((origin for _, _, origin in pieces), fallback_note_origin(pieces)),
    }


def _as_outbound(row: dict[str, Any]) -> OutboundMessage:
    payload = row.get("payload") or {}
    return OutboundMessage(
        message_id=0,
        channel=row["channel"],
        address=row["address"],
        language=row["language"],
        body=row["body"],
        subject=row.get("subject"),
        html=row.get("html"),
        buttons=tuple(Button(v, label) for v, label in payload.get("buttons", [])),
        reply_token=row.get("reply_token"),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def request_from_broadcast(
    gw: Gateway, session: AsyncSession, broadcast: Broadcast, question_id: str | None = None
) -> BroadcastRequest:
    """Rebuild the request a stored broadcast was planned from (fallbacks, reminders)."""
    from gateway.domain.surveys import SurveySpec
    from gateway.storage.models import Event, Survey

    event_ctx = None
    if broadcast.event_id:
        event = await session.get(Event, broadcast.event_id)
        if event is not None:
            event_ctx = event_context(event)
    survey = None
    if broadcast.survey_id:
        row = await session.get(Survey, broadcast.survey_id)
        if row is not None:
            survey = SurveySpec.model_validate(row.definition)
    return BroadcastRequest(
        template=broadcast.template,
        audience=broadcast.audience,
        context=dict(broadcast.context or {}),
        event=event_ctx,
        event_id=broadcast.event_id,
        survey=survey,
        survey_id=broadcast.survey_id,
        question_id=question_id,
        channels=broadcast.channels,
        policy=broadcast.policy,  # type: ignore[arg-type]
        urgent=broadcast.urgent,
        kind=broadcast.kind,
    )


def event_context(event: Any) -> dict[str, Any]:
    """The untranslated event row as templates see it."""
    return {
        "id": event.external_id,
        "title": event.title,
        "description": event.description,
        "place": event.place,
        "address": event.address,
        "start": event.starts_at,
        "end": event.ends_at,
        "url": (event.data or {}).get("url"),
        "contact": (event.data or {}).get("contact") or {"name": None, "phone": None, "email": None},
        "rsvp": event.rsvp,
        "school": event.school,
    }
