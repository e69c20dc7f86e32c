"""Read models for the web app and the API, every one narrowed to a staff member's schools.

``scope`` is ``None`` for an admin (everything) or a list of school names for a liaison. A
family outside the scope is treated exactly like a family that does not exist (the caller
answers 404), so a liaison cannot even learn that it exists.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, select

from gateway.domain.audience import parse_audience
from gateway.errors import GatewayError
from gateway.families import endpoint_details
from gateway.outbox.planner import BroadcastRequest
from gateway.storage.endpoints import channel_states
from gateway.storage.families import FamilyRepository, family_as_dict
from gateway.storage.models import (
    Broadcast,
    Endpoint,
    Event,
    Family,
    Guardian,
    InboundRecord,
    OutboxMessage,
    Student,
    Survey,
    SurveySession,
    utcnow,
)
from gateway.translation.strings import Origin

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = [
    "FUNNEL_STAGES",
    "audience_breakdown",
    "audience_options",
    "broadcast_status",
    "family_detail",
    "conversations",
    "family_history",
    "families_in_scope",
    "funnel",
    "inbox_item_in_scope",
    "list_broadcasts",
    "list_events",
    "list_families",
    "list_surveys",
    "reach_report",
    "scoped_family_ids",
    "survey_results",
]

#: The delivery funnel's stages and the outbox statuses each one counts.
FUNNEL_STAGES: dict[str, tuple[str, ...]] = {
    "queued": ("queued", "sending", "held", "unknown"),
    "sent": ("sent",),
    "delivered": ("delivered", "read"),
    "failed": ("failed", "undelivered"),
    "opted out": ("cancelled",),
}
REACHED = ("sent", "delivered", "read")


def scoped_family_ids(scope: Sequence[str]) -> Select[Any]:
    """A sub-select of the family ids with a student at one of ``scope``'s schools."""
    return select(Student.family_id).where(func.lower(Student.school).in_([s.casefold() for s in scope]))


async def list_families(
    gw: Gateway,
    scope: list[str] | None,
    *,
    school: str | None = None,
    language: str | None = None,
    search: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """The ``families list --json`` shape, scoped."""
    async with gw.db.session() as session:
        families = await FamilyRepository(session).list(
            school=school, language=language, schools_scope=scope, search=search or None, limit=limit
        )
        extra = await endpoint_details(gw, session, [g for f in families for g in f.guardians])
        return [family_as_dict(f, gw.channel_name_for_kind, extra) for f in families]


async def families_in_scope(gw: Gateway, scope: list[str] | None) -> int:
    """How many families the staff member can see."""
    async with gw.db.session() as session:
        query = select(func.count(Family.id))
        if scope is not None:
            query = query.where(Family.id.in_(scoped_family_ids(scope)))
        return int(await session.scalar(query) or 0)


async def family_detail(gw: Gateway, family_id: str, scope: list[str] | None) -> dict[str, Any] | None:
    """One family (``families list`` shape plus guardian ids), or ``None`` when out of scope."""
    async with gw.db.session() as session:
        family = await FamilyRepository(session).get(family_id)
        if family is None:
            return None
        if scope is not None:
            allowed = {s.casefold() for s in scope}
            if not any((s.school or "").casefold() in allowed for s in family.students):
                return None
        extra = await endpoint_details(gw, session, list(family.guardians))
        data = family_as_dict(family, gw.channel_name_for_kind, extra)
        for guardian, row in zip(family.guardians, data["guardians"], strict=True):
            row["id"] = guardian.id
            for endpoint, item in zip(guardian.endpoints, row["endpoints"], strict=True):
                item["id"] = endpoint.id
                item["opted_out_at"] = endpoint.opted_out_at.isoformat() if endpoint.opted_out_at else None
        data["id"] = family.id
        return data


def _is_telegram(gw: Gateway, channel: str) -> bool:
    """Whether messages of ``channel`` are Telegram HTML (shown as formatting, not tags)."""
    found = gw.channels.get(channel)
    return found is not None and found.variant == "telegram"


def _read_in(gw: Gateway, row: OutboxMessage) -> str | None:
    """The language a sent message reads in (for the page's ``lang`` attribute): the source
    language where nothing in it was translated, else the family's — a message in their language
    around an English title is theirs."""
    origins = {Origin(o) for kind in ((row.payload or {}).get("sources") or {}).values() for o in kind}
    translated = {o for o in origins if o is Origin.REVIEWED or o.is_machine}
    if any(o.untranslated for o in origins) and not translated:
        return gw.config.translation.source_language
    return row.language


async def family_history(gw: Gateway, family_pk: int, limit: int = 200) -> list[dict[str, Any]]:
    """Messages to and from a family across every channel, newest first."""
    async with gw.db.session() as session:
        out_rows = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.family_id == family_pk)
            .order_by(OutboxMessage.id.desc())
            .limit(limit)
        )
        items = [
            {
                "direction": "out",
                "at": (r.sent_at or r.created_at),
                "channel": r.channel,
                "language": _read_in(gw, r),
                "status": r.status,
                "text": (r.subject + " — " if r.subject else "") + r.body,
                "telegram_html": _is_telegram(gw, r.channel),
                "translation": None,
                "broadcast_id": r.broadcast_id,
                "error": r.error_reason,
            }
            for r in out_rows
        ]
        in_rows = await session.scalars(
            select(InboundRecord)
            .where(InboundRecord.family_id == family_pk)
            .order_by(InboundRecord.id.desc())
            .limit(limit)
        )
        items += [
            {
                "direction": "in",
                "at": r.received_at,
                "channel": r.channel,
                "language": r.language,
                "status": r.classification,
                "text": r.text,
                "translation": r.translation,
                "broadcast_id": None,
                "error": None,
            }
            for r in in_rows
        ]
    items.sort(key=lambda item: item["at"], reverse=True)
    return items[:limit]


async def conversations(
    gw: Gateway, guardian_ids: Iterable[int], per_guardian: int = 8
) -> dict[int, list[dict[str, Any]]]:
    """The latest messages to and from each guardian (oldest first): broadcasts, the family's
    replies and staff answers — an inbox item's conversation."""
    wanted = sorted(set(guardian_ids))
    threads: dict[int, list[dict[str, Any]]] = {g: [] for g in wanted}
    if not wanted:
        return threads
    async with gw.db.session() as session:
        for guardian_id in wanted:
            out_rows = await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.guardian_id == guardian_id)
                .order_by(OutboxMessage.id.desc())
                .limit(per_guardian)
            )
            in_rows = await session.scalars(
                select(InboundRecord)
                .where(InboundRecord.guardian_id == guardian_id)
                .order_by(InboundRecord.id.desc())
                .limit(per_guardian)
            )
            items = [
                {
                    "direction": "out",
                    "at": r.sent_at or r.created_at,
                    "channel": r.channel,
                    "language": _read_in(gw, r),
                    "status": r.status,
                    "staff": bool((r.payload or {}).get("in_reply_to_inbound")),
                    "text": (r.subject + " — " if r.subject else "") + r.body,
                    "telegram_html": _is_telegram(gw, r.channel),
                    "translation": (r.payload or {}).get("staff_text"),
                    "error": r.error_reason,
                }
                for r in out_rows
            ] + [
                {
                    "direction": "in",
                    "at": r.received_at,
                    "channel": r.channel,
                    "language": r.language,
                    "status": r.classification,
                    "staff": False,
                    "text": r.text,
                    "telegram_html": False,
                    "translation": r.translation,
                    "error": None,
                    "id": r.id,
                }
                for r in in_rows
            ]
            items.sort(key=lambda item: item["at"])
            threads[guardian_id] = items[-per_guardian:]
    return threads


async def inbox_item_in_scope(gw: Gateway, inbound_id: int, scope: list[str] | None) -> bool:
    """Whether an inbox item exists and belongs to a family the staff member can see."""
    async with gw.db.session() as session:
        record = await session.get(InboundRecord, inbound_id)
        if record is None or not record.inbox:
            return False
        if scope is None:
            return True
        if record.family_id is None:
            return False
        found = await session.scalar(
            select(func.count())
            .where(Student.family_id == record.family_id)
            .where(func.lower(Student.school).in_([s.casefold() for s in scope]))
        )
        return bool(found)


# -- broadcasts -----------------------------------------------------------------------------------
async def broadcast_status(
    gw: Gateway, broadcast_id: int, scope: list[str] | None, viewer: str | None = None
) -> dict[str, Any] | None:
    """The ``broadcast status --json`` shape plus ``funnel``; for a liaison, only their families.

    ``None`` when the broadcast does not exist or touches none of the liaison's families.
    """
    family_ids = None if scope is None else scoped_family_ids(scope)
    try:
        summary = await gw.planner.status(broadcast_id, family_ids)
    except GatewayError:
        return None
    if scope is not None:
        async with gw.db.session() as session:
            broadcast = await session.get(Broadcast, broadcast_id)
            created_by = broadcast.created_by if broadcast is not None else None
            visible = set(await session.scalars(select(Family.external_id).where(Family.id.in_(family_ids))))
        summary.skipped = [s for s in summary.skipped if s.get("family_id") in visible]
        if not summary.messages and not summary.skipped and (viewer is None or created_by != viewer):
            return None
        summary.translation = {k: v for k, v in summary.translation.items() if k in summary.by_language}
        summary.preview = {k: v for k, v in summary.preview.items() if k in summary.by_language}
    data = summary.as_dict()
    data["funnel"] = getattr(summary, "funnel", {})
    await _add_cells(gw, data, broadcast_id, scope)
    return data


async def _add_cells(gw: Gateway, data: dict[str, Any], broadcast_id: int, scope: list[str] | None) -> None:
    """Counts per (channel, status), for the per-channel funnel."""
    async with gw.db.session() as session:
        query = (
            select(OutboxMessage.channel, OutboxMessage.status, func.count())
            .where(OutboxMessage.broadcast_id == broadcast_id)
            .group_by(OutboxMessage.channel, OutboxMessage.status)
        )
        if scope is not None:
            query = query.where(OutboxMessage.family_id.in_(scoped_family_ids(scope)))
        by_channel: dict[str, dict[str, int]] = defaultdict(dict)
        for channel, status, count in await session.execute(query):
            by_channel[channel][status] = count
    data["channel_funnel"] = dict(by_channel)


def funnel(by_status: dict[str, int], skipped_opted_out: int = 0) -> dict[str, int]:
    """Outbox statuses folded into the funnel's stages."""
    stages = {stage: sum(by_status.get(s, 0) for s in statuses) for stage, statuses in FUNNEL_STAGES.items()}
    stages["opted out"] += skipped_opted_out
    return stages


async def list_broadcasts(gw: Gateway, scope: list[str] | None, limit: int = 50) -> list[dict[str, Any]]:
    """Recent broadcasts the staff member may see, with their funnel."""
    async with gw.db.session() as session:
        query = select(Broadcast).order_by(Broadcast.id.desc()).limit(limit)
        if scope is not None:
            query = query.where(
                Broadcast.id.in_(
                    select(OutboxMessage.broadcast_id).where(
                        OutboxMessage.family_id.in_(scoped_family_ids(scope))
                    )
                )
            )
        broadcasts = list(await session.scalars(query))
        ids = [b.id for b in broadcasts]
        counts: dict[int, Counter[str]] = defaultdict(Counter)
        if ids:
            count_query = (
                select(OutboxMessage.broadcast_id, OutboxMessage.status, func.count())
                .where(OutboxMessage.broadcast_id.in_(ids))
                .group_by(OutboxMessage.broadcast_id, OutboxMessage.status)
            )
            if scope is not None:
                count_query = count_query.where(OutboxMessage.family_id.in_(scoped_family_ids(scope)))
            for broadcast_id, status, count in await session.execute(count_query):
                counts[broadcast_id][status] = count
        titles = {
            e.id: e.title
            for e in await session.scalars(
                select(Event).where(Event.id.in_([b.event_id for b in broadcasts if b.event_id]))
            )
        }
        survey_titles = {
            s.id: s.title
            for s in await session.scalars(
                select(Survey).where(Survey.id.in_([b.survey_id for b in broadcasts if b.survey_id]))
            )
        }
    return [
        {
            "id": b.id,
            "kind": b.kind,
            "template": b.template,
            "title": titles.get(b.event_id or 0)
            or survey_titles.get(b.survey_id or 0)
            or (b.context or {}).get("title")
            or b.template,
            "audience": b.audience,
            "send_at": b.send_at,
            "created_by": b.created_by,
            "messages": sum(counts[b.id].values()),
            "funnel": funnel(dict(counts[b.id])),
        }
        for b in broadcasts
    ]


async def list_events(gw: Gateway, scope: list[str] | None) -> list[dict[str, Any]]:
    """Events (a liaison sees those of their schools and district-wide ones)."""
    async with gw.db.session() as session:
        rows = list(await session.scalars(select(Event).order_by(Event.starts_at.desc())))
    allowed = {s.casefold() for s in scope} if scope is not None else None
    return [
        {
            "id": e.external_id,
            "title": e.title,
            "description": e.description,
            "school": e.school,
            "place": e.place,
            "address": e.address,
            "start": e.starts_at.isoformat(),
            "end": e.ends_at.isoformat() if e.ends_at else None,
            "timezone": e.timezone,
            "audience": e.audience,
            "rsvp": e.rsvp,
            "reminders": list(e.reminders or []),
        }
        for e in rows
        if allowed is None or e.school is None or e.school.casefold() in allowed
    ]


async def list_surveys(gw: Gateway, scope: list[str] | None) -> list[dict[str, Any]]:
    """Surveys with how many of the staff member's families got and answered them."""
    async with gw.db.session() as session:
        surveys = list(await session.scalars(select(Survey).order_by(Survey.id.desc())))
        query = select(SurveySession.survey_id, func.count()).group_by(SurveySession.survey_id)
        if scope is not None:
            query = query.where(SurveySession.family_id.in_(scoped_family_ids(scope)))
        sessions = dict((k, v) for k, v in (await session.execute(query)).all())
    return [
        {
            "id": s.external_id,
            "pk": s.id,
            "title": s.title or s.external_id,
            "sessions": sessions.get(s.id, 0),
        }
        for s in surveys
        if scope is None or sessions.get(s.id)
    ]


# -- audience ---------------------------------------------------------------------------------------
async def audience_breakdown(
    gw: Gateway,
    expression: str,
    channels: list[str] | None,
    policy: str,
    scope: list[str] | None,
    send_at: datetime | None = None,
    urgent: bool = False,
) -> dict[str, Any]:
    """Who a broadcast would reach, without rendering anything: families, guardians, messages
    per language × channel, skipped guardians, and the messages quiet hours would hold back if
    it were sent at ``send_at`` (now when None). Uses the planner's own audience, channel-choice
    and quiet-hours rules so the count is what a send would do."""
    planner = gw.planner
    audience = parse_audience(expression)
    if scope is not None:
        audience = audience.restricted_to_schools(scope)
    allowed = planner._allowed_channels(channels)
    request = BroadcastRequest(template="", audience=expression, channels=channels, school_scope=scope)
    cells: Counter[tuple[str, str]] = Counter()
    families = guardians = skipped = deferred = 0
    deferred_until: datetime | None = None
    reasons: Counter[str] = Counter()
    send_at = send_at or utcnow()
    async with gw.db.session() as session:
        zones = await planner.district_zones(session)
        async for _family, members, _students in planner._audience(session, audience, request):
            reached = False
            for guardian in members:
                targets, reason = planner._targets(guardian, allowed, policy)
                if not targets:
                    skipped += 1
                    reasons[reason] += 1
                    continue
                guardians += 1
                reached = True
                chosen = targets[:1] if policy == "preferred" else targets
                for channel, _endpoint in chosen:
                    cells[(guardian.language, channel.name)] += 1
                    due = planner.due_at(channel, guardian, send_at, urgent, zones)
                    if due != send_at:
                        deferred += 1
                        deferred_until = due if deferred_until is None else min(due, deferred_until)
            families += reached
    by_language: Counter[str] = Counter()
    by_channel: Counter[str] = Counter()
    for (language, channel), count in cells.items():
        by_language[language] += count
        by_channel[channel] += count
    return {
        "families": families,
        "guardians": guardians,
        "messages": sum(cells.values()),
        "by_language": dict(sorted(by_language.items())),
        "by_channel": dict(sorted(by_channel.items())),
        "cells": [{"language": k[0], "channel": k[1], "messages": v} for k, v in sorted(cells.items())],
        "skipped": skipped,
        "skipped_reasons": dict(reasons),
        "deferred_quiet_hours": deferred,
        "deferred_until": deferred_until.isoformat() if deferred_until else None,
    }


# -- reach ------------------------------------------------------------------------------------------
def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


async def reach_report(gw: Gateway, scope: list[str] | None, last: int = 5) -> dict[str, Any]:
    """Delivery, reply and opt-out rates by language, channel and school over the last ``last``
    broadcasts, and the families none of them reached."""
    async with gw.db.session() as session:
        bq = select(Broadcast.id, Broadcast.created_at).where(Broadcast.status != "empty")
        if scope is not None:
            bq = bq.where(
                Broadcast.id.in_(
                    select(OutboxMessage.broadcast_id).where(
                        OutboxMessage.family_id.in_(scoped_family_ids(scope))
                    )
                )
            )
        recent = (await session.execute(bq.order_by(Broadcast.id.desc()).limit(last))).all()
        ids = [r[0] for r in recent]
        since: datetime | None = min((r[1] for r in recent), default=None)
        fam_query = select(Family.id, Family.external_id)
        if scope is not None:
            fam_query = fam_query.where(Family.id.in_(scoped_family_ids(scope)))
        families = dict((await session.execute(fam_query)).all())
        school_rows = await session.execute(
            select(Student.family_id, Student.school).where(Student.family_id.in_(list(families)))
        )
        schools: dict[int, set[str]] = defaultdict(set)
        allowed = {s.casefold() for s in scope} if scope is not None else None
        for family_pk, school in school_rows:
            if school and (allowed is None or school.casefold() in allowed):
                schools[family_pk].add(school)
        messages = []
        if ids:
            messages = (
                await session.execute(
                    select(
                        OutboxMessage.family_id,
                        OutboxMessage.language,
                        OutboxMessage.channel,
                        OutboxMessage.status,
                    ).where(OutboxMessage.broadcast_id.in_(ids), OutboxMessage.family_id.in_(list(families)))
                )
            ).all()
        repliers: set[int] = set()
        if since is not None:
            repliers = set(
                await session.scalars(
                    select(InboundRecord.family_id).where(
                        InboundRecord.received_at >= since, InboundRecord.family_id.in_(list(families))
                    )
                )
            )
        endpoints = (
            await session.execute(
                select(Guardian.family_id, Guardian.language, Endpoint.id, Endpoint.kind, Endpoint.opted_out)
                .join(Endpoint, Endpoint.guardian_id == Guardian.id)
                .where(Guardian.family_id.in_(list(families)))
            )
        ).all()
        own_states = await channel_states(session, [row[2] for row in endpoints])
    groups: dict[str, dict[str, dict[str, Any]]] = {"language": {}, "channel": {}, "school": {}}

    def bucket(kind: str, key: str) -> dict[str, Any]:
        return groups[kind].setdefault(
            key,
            {
                "messages": 0,
                "reached": 0,
                "families": set(),
                "replied": set(),
                "endpoints": 0,
                "opted_out": 0,
            },
        )

    reached_families: set[int] = set()
    attempted: dict[int, Counter[str]] = defaultdict(Counter)
    for family_pk, language, channel, status in messages:
        keys = [("language", language), ("channel", channel)]
        keys += [("school", s) for s in schools.get(family_pk, set())]
        for kind, key in keys:
            b = bucket(kind, key)
            b["messages"] += 1
            b["reached"] += status in REACHED
            b["families"].add(family_pk)
            if family_pk in repliers:
                b["replied"].add(family_pk)
        attempted[family_pk][status] += 1
        if status in REACHED:
            reached_families.add(family_pk)
    endpoint_state: dict[int, list[bool]] = defaultdict(list)
    for family_pk, language, endpoint_id, kind_name, everywhere in endpoints:
        # One count per address and channel reaching it: consent is kept per channel.
        names = [c.name for c in gw.channels_for_endpoint(kind_name)] or [gw.channel_name_for_kind(kind_name)]
        for name in names:
            opted_out = bool(everywhere) or (
                name in own_states.get(endpoint_id, {}) and own_states[endpoint_id][name].opted_out
            )
            keys = [("language", language), ("channel", name)]
            keys += [("school", s) for s in schools.get(family_pk, set())]
            for kind, key in keys:
                b = bucket(kind, key)
                b["endpoints"] += 1
                b["opted_out"] += opted_out
            endpoint_state[family_pk].append(opted_out)
    report: dict[str, Any] = {"broadcasts": ids, "last": last}
    for kind, rows in groups.items():
        report[f"by_{kind}"] = [
            {
                kind: key,
                "messages": b["messages"],
                "delivery_rate": _rate(b["reached"], b["messages"]),
                "families": len(b["families"]),
                "reply_rate": _rate(len(b["replied"]), len(b["families"])),
                "endpoints": b["endpoints"],
                "opt_out_rate": _rate(b["opted_out"], b["endpoints"]),
            }
            for key, b in sorted(rows.items())
        ]
    unreached = []
    for pk, external_id in sorted(families.items(), key=lambda kv: kv[1]):
        if not ids or pk in reached_families:
            continue
        states = endpoint_state.get(pk, [])
        statuses = sorted(attempted.get(pk, ()))
        if not states:
            why = "no endpoint"
        elif all(states):
            why = "opted out everywhere"
        elif statuses:
            # Messages still waiting (quiet hours, a retry, a review) have not failed yet.
            why = "not reached yet" if set(statuses) <= set(FUNNEL_STAGES["queued"]) else "failed"
        else:
            why = "not in these audiences"
        unreached.append({
            "family_id": external_id,
            "reason": f"{why}: {', '.join(statuses)}" if statuses and why != "no endpoint" else why,
            "why": why,
            "statuses": statuses if why in ("failed", "not reached yet") else [],
            "schools": sorted(schools.get(pk, [])),
        })
    report["unreached"] = unreached
    return report


# -- surveys ----------------------------------------------------------------------------------------
async def survey_results(
    gw: Gateway,
    survey_ref: str,
    scope: list[str] | None,
    *,
    school: str | None = None,
    language: str | None = None,
) -> dict[str, Any] | None:
    """The ``survey results --format json`` shape for the staff member's families, optionally
    for one school and one language; ``None`` when the survey is unknown or not theirs."""
    surveys = gw.inbound.surveys
    try:
        results = await surveys.results(survey_ref, schools_scope=scope)
    except LookupError:
        return None
    if scope is not None and not results["sessions"]:
        return None
    if school:
        allowed = [school] if scope is None or school.casefold() in {s.casefold() for s in scope} else []
        results = await surveys.results(survey_ref, schools_scope=allowed)
    if language:
        for question in results["questions"]:
            question["answers"] = dict(question["by_language"].get(language, {}))
            question["by_language"] = {language: question["answers"]} if question["answers"] else {}
            question["by_school"] = {}
    results["filters"] = {"school": school or None, "language": language or None}
    return results


async def audience_options(gw: Gateway, scope: list[str] | None) -> dict[str, list[str]]:
    """The schools, grades, languages and tags the audience builder offers."""
    allowed = {s.casefold() for s in scope} if scope is not None else None
    async with gw.db.session() as session:
        students = (
            await session.execute(select(Student.family_id, Student.school, Student.grade, Student.tags))
        ).all()
        visible = {
            f for f, school, _g, _t in students if allowed is None or (school or "").casefold() in allowed
        }
        languages = await session.scalars(
            select(func.distinct(Guardian.language)).where(Guardian.family_id.in_(list(visible)))
        )
        language_list = sorted(set(languages))
    schools, grades, tags = set(), set(), set()
    for family, school, grade, student_tags in students:
        if family not in visible:
            continue
        if school and (allowed is None or school.casefold() in allowed):
            schools.add(school)
        if grade:
            grades.add(grade)
        tags.update(student_tags or [])
    return {
        "schools": sorted(schools) if scope is None else sorted(schools | set(scope)),
        "grades": sorted(grades, key=lambda g: (len(g), g)),
        "languages": language_list,
        "tags": sorted(tags),
    }


async def compose_values(gw: Gateway, broadcast_id: int, scope: list[str] | None) -> dict[str, Any] | None:
    """A broadcast's own values as the compose form holds them (to edit a cancelled, scheduled
    broadcast): ``{"values", "channels", "attachment"}``; None when not the caller's."""
    from zoneinfo import ZoneInfo

    from gateway.attachments import find_attachment

    async with gw.db.session() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        if broadcast is None:
            return None
        event = await session.get(Event, broadcast.event_id) if broadcast.event_id else None
    if scope is not None and event is not None and event.school:
        if event.school.casefold() not in {s.casefold() for s in scope}:
            return None
    context = dict(broadcast.context or {})
    values: dict[str, Any] = {
        "template": broadcast.template,
        "audience": broadcast.audience or "",
        "policy": broadcast.policy,
        "urgent": "on" if broadcast.urgent else "",
    }
    zone = ZoneInfo(event.timezone if event is not None else gw.config.district_timezone)
    values["timezone"] = zone.key
    if broadcast.send_at and broadcast.send_at > utcnow():
        values["when"] = "later"
        values["at"] = broadcast.send_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M")
    if event is not None:
        values.update(
            {
                "title": event.title,
                "description": event.description or "",
                "place": event.place or "",
                "address": event.address or "",
                "school": event.school or "",
                "start": event.starts_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
                "end": event.ends_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M") if event.ends_at else "",
                "rsvp": "on" if event.rsvp else "",
                "reminders": ", ".join(event.reminders or []),
            }
        )
    else:
        values.update({k: context.get(k) or "" for k in ("title", "body", "link")})
    attachment = None
    if isinstance(context.get("attachment"), dict):
        attachment = await find_attachment(gw, str(context["attachment"].get("token")))
    return {"values": values, "channels": list(broadcast.channels or []), "attachment": attachment}


async def survey_definition(gw: Gateway, survey_id: str, scope: list[str] | None) -> dict[str, Any] | None:
    """A stored survey's definition (the survey file's content), to build a new one from it."""
    async with gw.db.session() as session:
        survey = await session.scalar(select(Survey).where(Survey.external_id == survey_id))
        if survey is None:
            return None
        if scope is not None:
            sessions = await session.scalar(
                select(func.count(SurveySession.id)).where(
                    SurveySession.survey_id == survey.id,
                    SurveySession.family_id.in_(scoped_family_ids(scope)),
                )
            )
            if not sessions:
                return None
        return dict(survey.definition)
