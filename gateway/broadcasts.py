"""Broadcast use cases: invitations with RSVP and reminders, surveys, previews."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.domain.events import EventSpec, load_event
from gateway.domain.surveys import SurveySpec, load_survey, rsvp_survey
from gateway.errors import GatewayError, StaffFacingError
from gateway.inbound.surveys import store_survey
from gateway.outbox.planner import BroadcastRequest
from gateway.rendering.composer import RECEIVED_ENGLISH
from gateway.staff_text import S_, StaffNote
from gateway.storage.db import BROADCAST_TABLES
from gateway.storage.models import Event, Survey, SurveySession, utcnow

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = [
    "cancel_broadcast",
    "parse_send_time",
    "preview_survey",
    "preview_template",
    "refuse_past_event",
    "send_broadcast",
    "send_survey",
    "store_event",
    "upsert_event",
]

EVENT_TEMPLATES = ("workshop_invitation",)
ALREADY_STARTED = S_(
    "broadcast %(broadcast_id)s has started (%(sent)s messages sent): it can no longer be cancelled"
)


def parse_send_time(value: object, name: str = "at") -> datetime | None:
    """A send time as staff give it (``--at``, the API's ``at``): ISO 8601 with a UTC offset,
    still to come; ``None`` when not given (send now). :class:`GatewayError` naming ``name``
    otherwise — a time that has passed is refused, not sent at once (a mistyped year would
    otherwise send the broadcast now)."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise GatewayError(f"{name}: an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise GatewayError(f"{name} {value!r}: not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise GatewayError(f"{name} {value!r}: add a UTC offset, e.g. 2027-03-01T09:00:00-06:00")
    if moment <= utcnow():
        raise GatewayError(f"{name} {value!r}: this time has passed (leave it out to send now)")
    return moment


def refuse_past_event(spec: EventSpec, send_at: datetime | None = None) -> None:
    """An invitation to an event that has started (or would start before the invitation is
    sent) is refused before anything is written."""
    now = utcnow()
    if spec.start <= now:
        raise GatewayError(
            f"event {spec.id!r} starts {spec.start.isoformat()}, which is in the past: "
            "no invitation is sent to a past event (nothing was written)"
        )
    if send_at is not None and send_at >= spec.start:
        raise GatewayError(
            f"event {spec.id!r} starts {spec.start.isoformat()}, before the send time "
            f"{send_at.isoformat()}: the invitation would arrive after the event (nothing was written)"
        )


async def store_event(gw: Gateway, spec: EventSpec) -> Event:
    """Create or update the event row (in a transaction of its own)."""
    async with gw.db.session() as session:
        row = await upsert_event(session, spec)
        await session.commit()
        return row


async def upsert_event(session: AsyncSession, spec: EventSpec) -> Event:
    """Create or update the event row in ``session`` (flushed: it has its id)."""
    row = await session.scalar(select(Event).where(Event.external_id == spec.id))
    values = dict(
        title=spec.title,
        description=spec.description,
        school=spec.school,
        place=spec.place,
        address=spec.address,
        starts_at=spec.start.astimezone(UTC),
        ends_at=spec.end.astimezone(UTC) if spec.end else None,
        timezone=spec.timezone,
        audience=spec.audience,
        rsvp=spec.rsvp,
        reminders=spec.reminders,
        data={"url": spec.url, "contact": spec.contact.model_dump()},
    )
    if row is None:
        row = Event(external_id=spec.id, **values)
        session.add(row)
    else:
        for key, value in values.items():
            setattr(row, key, value)
    await session.flush()
    return row


async def send_broadcast(
    gw: Gateway,
    template: str,
    *,
    event_file: Path | None = None,
    event_spec: EventSpec | None = None,
    audience: str | None = None,
    channels: list[str] | None = None,
    send_at: datetime | None = None,
    urgent: bool = False,
    policy: str = "preferred",
    dry_run: bool = False,
    context: dict[str, Any] | None = None,
    created_by: str | None = None,
    idempotency_key: str | None = None,
    idempotency_hash: str | None = None,
    school_scope: list[str] | None = None,
) -> dict[str, Any]:
    """Plan a broadcast; with an event, its RSVP survey and reminder jobs too."""
    if policy not in ("preferred", "all"):
        raise GatewayError(f"--policy {policy!r}: use preferred or all")
    spec = event_spec or (load_event(event_file) if event_file else None)
    if spec is not None:
        refuse_past_event(spec, send_at)
    request = BroadcastRequest(
        template=template,
        audience=audience if audience is not None else (spec.audience if spec else ""),
        channels=channels,
        send_at=send_at,
        urgent=urgent,
        policy=policy,  # type: ignore[arg-type]
        context=dict(context or {}),
        created_by=created_by,
        idempotency_key=idempotency_key,
        idempotency_hash=idempotency_hash,
        school_scope=school_scope,
        kind="invitation" if spec else "message",
    )
    from gateway.families import audience_problems

    problems = await audience_problems(gw, request.audience, school_scope)
    if problems and not dry_run:
        # A mistyped school or language would send to nobody (or fewer) without a word: refused
        # before anything is written, as the web app refuses it.
        raise GatewayError(f"audience: {'; '.join(problems)} (nothing sent; --dry-run shows who it reaches)")
    notes = [f"audience: {p}" for p in problems]
    if spec is not None:
        request.event = spec.template_context()
    survey = None
    if spec is not None and spec.rsvp and template in EVENT_TEMPLATES:
        survey = rsvp_survey(spec.id, spec.title)
    if survey is not None:
        request.survey, request.question_id = survey, "rsvp"
    if dry_run:
        data = (await gw.planner.plan(request, dry_run=True)).as_dict()
        data["notes"] = notes + _translation_notes(gw, data)
        return data
    # The event, its RSVP survey, the broadcast with every outbox row and the reminder jobs:
    # one transaction, so a failure anywhere leaves nothing behind (nothing half-sent).
    async with gw.db.session() as session:
        if spec is not None:
            request.event_id = (await upsert_event(session, spec)).id
        if survey is not None:
            request.survey_id = (await store_survey(session, survey, request.event_id)).id
        summary = await gw.planner.plan(request, session=session)
        data = summary.as_dict()
        if spec is not None and spec.reminders and summary.broadcast_id:
            from gateway.scheduling.scheduler import stage_event_reminders

            planned = await stage_event_reminders(
                session, request.event_id or 0, spec, not_before=send_at
            )
            notes += [f"reminder {r['offset']} before: {r['run_at']}" for r in planned]
            data["reminders"] = planned
        await session.commit()
    await gw.db.refresh_statistics(BROADCAST_TABLES, summary.messages)
    await gw.translation.flush_stats()
    data["notes"] = notes + _translation_notes(gw, data)
    return data


#: Why text stayed in English, in staff words.
WHY = {
    "no engine": "no reviewed catalog or machine translation covers the language",
    "unreachable": "the translation server could not be reached",
    "timeout": "the translation server did not answer in time",
    "refused": "the translation server refused the request",
    "placeholder lost": "the machine translation lost a protected name, date, link or number and was "
    "rejected",
    "placeholder broken": "the machine translation mangled a protected name, date, link or number and "
    "was rejected",
    "bad answer": "the translation engine gave a malformed answer",
    "failed": "the translation engine failed",
}
#: The same where only some text stayed English (a reviewed translation had the rest).
WHY_PARTLY = {
    "no engine": "no reviewed translation has the event's or the liaison's own words, and no "
    "machine translation covers the language",
}


def _translation_notes(gw: Gateway, data: dict[str, Any]) -> list[str]:
    """What each language's families get, said plainly: English where nothing translated it
    (and why), held for review, machine translation not yet reviewed."""
    english: dict[tuple[bool, bool, tuple[str, ...]], list[str]] = {}
    held, machine = [], []
    for language, info in sorted(data.get("translation", {}).items()):
        received = info.get("received")
        if received in RECEIVED_ENGLISH:
            origins = {*(info.get("template") or {}), *(info.get("texts") or {})}
            whole = origins <= {"fallback", "source"}
            why = tuple(info.get("why_untranslated") or ["failed"])
            english.setdefault((whole, received == "english_only", why), []).append(language)
        elif received == "held":
            held.append(language)
        elif received == "machine":
            machine.append(language)
    notes = []
    for (whole, note_in_english, reasons), languages in english.items():
        explain = WHY if whole else {**WHY, **WHY_PARTLY}
        why = "; ".join(explain.get(r, r) for r in reasons)
        what = "families get the message in English" if whole else "some text stays in English"
        note = "a note in English" if note_in_english else "a note in their language"
        notes.append(
            f"{', '.join(languages)}: {what}, with {note} ({why}; see `gateway translate languages`)"
        )
    if held:
        notes.append(
            f"{', '.join(held)}: messages are held for review (translation.fallback: hold); "
            "release them with `gateway broadcast release`"
        )
    if machine:
        notes.append(
            f"{', '.join(machine)}: machine-translated, not yet reviewed "
            "(`gateway translate export --language L` for a reviewer)"
        )
    return notes


async def send_survey(
    gw: Gateway,
    file: Path | None = None,
    *,
    spec: SurveySpec | None = None,
    audience: str | None = None,
    channels: list[str] | None = None,
    send_at: datetime | None = None,
    created_by: str | None = None,
    school_scope: list[str] | None = None,
) -> dict[str, Any]:
    """Store a survey, send its first question, schedule its reminder and close."""
    spec = spec or load_survey(file)  # type: ignore[arg-type]
    if spec.close_at is not None and spec.close_at <= (send_at or utcnow()):
        # Sent, it would take no answer at all: every reply a late one.
        raise GatewayError(
            f"survey {spec.id}: close_at {spec.close_at.isoformat()} has passed, or comes before "
            "the survey is sent; give a later time or leave it out"
        )
    # The survey, its broadcast with every outbox row and session, and its reminder and close
    # jobs: one transaction, all or nothing (a retry after a failure sends nothing twice).
    async with gw.db.session() as session:
        event_id = None
        if spec.event:
            event = await session.scalar(select(Event).where(Event.external_id == spec.event))
            if event is None:
                raise GatewayError(
                    f"survey {spec.id}: unknown event {spec.event!r} (send its invitation first)"
                )
            event_id = event.id
        row = await store_survey(session, spec, event_id)
        request = BroadcastRequest(
            template="survey_question",
            audience=audience if audience is not None else spec.audience,
            channels=channels,
            send_at=send_at,
            survey=spec,
            survey_id=row.id,
            question_id=spec.questions[0].id,
            kind="survey",
            created_by=created_by,
            school_scope=school_scope,
        )
        summary = (await gw.planner.plan(request, session=session)).as_dict()
        summary["survey_id"] = spec.id
        if spec.remind_unanswered_after or spec.close_at:
            from gateway.scheduling.scheduler import stage_survey_jobs

            summary["jobs"] = await stage_survey_jobs(session, row.id, spec, send_at or utcnow())
        await session.commit()
    await gw.db.refresh_statistics(BROADCAST_TABLES, summary["messages"])
    await gw.translation.flush_stats()
    summary["notes"] = _translation_notes(gw, summary)
    return summary


async def send_survey_reminder(
    gw: Gateway, survey_id: int, *, idempotency_key: str | None = None
) -> dict[str, Any] | None:
    """Send the current question again to guardians who have not answered (once per
    ``idempotency_key``)."""
    async with gw.db.session() as session:
        survey = await session.get(Survey, survey_id)
        if survey is None:
            return None
        spec = SurveySpec.model_validate(survey.definition)
    waiting = await gw.inbound.surveys.non_respondents(survey_id)
    if not waiting:
        return {"messages": 0}
    request = BroadcastRequest(
        template="survey_question",
        survey=spec,
        survey_id=survey_id,
        question_id=spec.questions[0].id,
        kind="survey-reminder",
        only_guardians=waiting,
        idempotency_key=idempotency_key,
    )
    return (await gw.planner.plan(request)).as_dict()


async def close_survey(gw: Gateway, survey_id: int) -> int:
    """Close every open session of a survey."""
    from sqlalchemy import update

    async with gw.db.session() as session:
        result = await session.execute(
            update(SurveySession)
            .where(SurveySession.survey_id == survey_id, SurveySession.status == "open")
            .values(status="closed", updated_at=utcnow())
        )
        await session.commit()
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def send_event_reminder(
    gw: Gateway, event_id: int, *, idempotency_key: str | None = None
) -> dict[str, Any] | None:
    """Remind the families invited to an event, except those who declined (once per
    ``idempotency_key``)."""
    from gateway.storage.models import Broadcast

    async with gw.db.session() as session:
        event = await session.get(Event, event_id)
        if event is None or event.starts_at <= utcnow():
            return None
        invitation = await session.scalar(
            select(Broadcast)
            .where(Broadcast.event_id == event_id, Broadcast.kind == "invitation")
            .order_by(Broadcast.id)
        )
        survey = await session.scalar(select(Survey).where(Survey.event_id == event_id))
        from gateway.outbox.planner import event_context
        from gateway.storage.models import OutboxMessage

        invited: set[int] | None = None
        if invitation is not None:
            invited = set(
                await session.scalars(
                    select(OutboxMessage.guardian_id)
                    .where(OutboxMessage.broadcast_id == invitation.id)
                    .where(OutboxMessage.guardian_id.is_not(None))
                )
            )
        ctx = event_context(event)
    declined = await gw.inbound.surveys.declined(survey.id) if survey else set()
    request = BroadcastRequest(
        template="event_reminder",
        audience=invitation.audience if invitation else event.audience,
        channels=invitation.channels if invitation else None,
        event=ctx,
        event_id=event_id,
        kind="reminder",
        only_guardians=invited,
        exclude_guardians=declined,
        policy=(invitation.policy if invitation else "preferred"),  # type: ignore[arg-type]
        idempotency_key=idempotency_key,
    )
    return (await gw.planner.plan(request)).as_dict()


async def preview_template(
    gw: Gateway,
    template: str,
    event_file: Path | None,
    languages: list[str] | None,
    channels: list[str] | None,
    event_spec: EventSpec | None = None,
    audience: str | None = None,
    policy: str = "preferred",
    school_scope: list[str] | None = None,
    context: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Each language × channel exactly as the broadcast would send it (the planner's own path),
    for the first guardian of the audience reading it; a sample guardian where there is none.
    ``languages`` defaults to English and every language with a reviewed catalog. A message
    with a ``context`` (an announcement) has no event."""
    spec = event_spec or (load_event(event_file) if event_file else (None if context else _sample_event()))
    request = BroadcastRequest(
        template=template,
        audience=audience if audience is not None else (spec.audience if spec else ""),
        channels=channels,
        policy=policy,  # type: ignore[arg-type]
        event=spec.template_context() if spec else None,
        context=dict(context or {}),
        school_scope=school_scope,
    )
    if spec is not None and spec.rsvp and template in EVENT_TEMPLATES:
        request.survey, request.question_id = rsvp_survey(spec.id, spec.title), "rsvp"
    langs = languages or ["en", *gw.catalogs.available()]
    zone = spec.timezone if spec else gw.config.district_timezone
    return await gw.planner.samples(request, languages=langs, sample_timezone=zone)


async def preview_survey(
    gw: Gateway,
    spec: SurveySpec,
    languages: list[str],
    channels: list[str] | None,
    audience: str | None = None,
    school_scope: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The survey's first question in each language × channel, exactly as it would be sent."""
    request = BroadcastRequest(
        template="survey_question",
        audience=audience if audience is not None else spec.audience,
        channels=channels,
        survey=spec,
        question_id=spec.questions[0].id,
        kind="survey",
        school_scope=school_scope,
    )
    return await gw.planner.samples(request, languages=languages, sample_timezone=gw.config.district_timezone)


def _sample_event() -> EventSpec:
    start = (datetime.now(UTC) + timedelta(days=14)).replace(hour=23, minute=30, second=0, microsecond=0)
    return EventSpec(
        id="preview",
        title="Family Math Night",
        description="Games and snacks for the whole family.",
        place="School library",
        start=start,
        end=start + timedelta(hours=1),
        rsvp=True,
    )


async def cancel_broadcast(gw: Gateway, broadcast_id: int) -> dict[str, Any]:
    """Cancel a broadcast that has not started: its queued and held messages never go, and the
    reminders of its event are removed. Refused once a message has left."""
    from sqlalchemy import func, update

    from gateway.domain.statuses import LEFT, BroadcastStatus, MessageStatus
    from gateway.scheduling.scheduler import cancel_jobs
    from gateway.storage.models import Broadcast, OutboxMessage

    async with gw.db.session() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        if broadcast is None:
            raise GatewayError(f"no broadcast with id {broadcast_id}")
        if broadcast.status == BroadcastStatus.CANCELLED:
            return {"broadcast_id": broadcast_id, "status": "cancelled", "cancelled_messages": 0}
        left = await session.scalar(
            select(func.count(OutboxMessage.id)).where(
                OutboxMessage.broadcast_id == broadcast_id, OutboxMessage.status.in_(LEFT)
            )
        )
        if left:
            raise StaffFacingError(
                StaffNote(ALREADY_STARTED, {"broadcast_id": str(broadcast_id), "sent": str(left)})
            )
        result = await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.broadcast_id == broadcast_id,
                OutboxMessage.status.in_((MessageStatus.QUEUED, MessageStatus.HELD)),
            )
            .values(status=MessageStatus.CANCELLED, error_reason="broadcast cancelled", updated_at=utcnow())
        )
        broadcast.status = BroadcastStatus.CANCELLED
        event_id = broadcast.event_id if broadcast.kind == "invitation" else None
        await session.commit()
    removed = await cancel_jobs(gw, f"event-{event_id}-reminder-") if event_id else []
    return {
        "broadcast_id": broadcast_id,
        "status": "cancelled",
        "cancelled_messages": int(result.rowcount or 0),  # type: ignore[attr-defined]
        "reminders_removed": removed,
    }
