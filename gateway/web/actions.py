"""What staff change through the web app and the API, each narrowed to their schools and
written to the audit log (who, what, when). Pages and API handlers both call these."""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from gateway.audit import audit, record_audit
from gateway.broadcasts import send_broadcast, send_survey, store_event
from gateway.domain.events import EventSpec
from gateway.domain.languages import normalize_language
from gateway.domain.surveys import SurveySpec
from gateway.errors import GatewayError, StaffFacingError
from gateway.staff import StaffIdentity
from gateway.staff_text import S_, StaffNote
from gateway.storage.models import Broadcast, Event, Guardian, utcnow
from gateway.web.queries import broadcast_status, family_detail, inbox_item_in_scope

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = [
    "ForbiddenError",
    "NotFoundError",
    "cancel_broadcast",
    "create_broadcast",
    "create_event",
    "create_survey",
    "event_spec_from_row",
    "import_csv",
    "load_event_spec",
    "reply_to_inbox",
    "set_guardian_language",
]


#: The longest staff answer: what one SMS provider message carries (Twilio: 1,600 characters).
MAX_REPLY_CHARACTERS = 1600

REPLY_EMPTY = S_("the reply is empty")
REPLY_TOO_LONG = S_(
    "the reply has %(length)s characters; at most %(limit)s go in one message "
    "(a text message can carry no more)"
)
NOTHING_TO_ANSWER = S_("this reply answers no survey question or RSVP that is still there")
NOT_AN_ANSWER = S_("“%(value)s” is not one of the answers to this question")
NOT_A_LANGUAGE = S_("“%(language)s”: unknown language code (write it like es, so, vi, ar or zh-Hans)")


class NotFoundError(LookupError):
    """Unknown, or outside the staff member's schools (the two are never told apart)."""


class ForbiddenError(GatewayError):
    """The staff member's role does not allow this."""


def event_spec_from_row(event: Event) -> EventSpec:
    """A stored event as an :class:`EventSpec` (to invite to it again)."""
    data = event.data or {}
    return EventSpec(
        id=event.external_id,
        title=event.title,
        description=event.description or "",
        school=event.school,
        place=event.place,
        address=event.address,
        start=event.starts_at,
        end=event.ends_at,
        timezone=event.timezone,
        audience=event.audience or "",
        rsvp=event.rsvp,
        reminders=list(event.reminders or []),
        contact=data.get("contact") or {},
        url=data.get("url"),
    )


def is_own_school(staff: StaffIdentity, school: str | None) -> bool:
    """Whether ``staff`` may write about ``school`` (an admin any; no school: the district)."""
    return staff.is_admin or school is None or school.casefold() in {s.casefold() for s in staff.schools}


def _check_school(staff: StaffIdentity, school: str | None) -> None:
    if not is_own_school(staff, school):
        raise ForbiddenError(f"school {school!r} is not one of your schools ({', '.join(staff.schools)})")


async def create_event(gw: Gateway, staff: StaffIdentity, spec: EventSpec) -> dict[str, Any]:
    """Create or update an event of one of the staff member's schools."""
    _check_school(staff, spec.school)
    row = await store_event(gw, spec)
    await audit(gw, staff.email, "event.save", spec.id, {"school": spec.school, "event_pk": row.id})
    return {"id": spec.id, "pk": row.id}


async def load_event_spec(gw: Gateway, event_id: str) -> EventSpec:
    """A stored event by its id."""
    async with gw.db.session() as session:
        row = await session.scalar(select(Event).where(Event.external_id == event_id))
    if row is None:
        raise NotFoundError(f"no event {event_id!r}")
    return event_spec_from_row(row)


class IdempotencyConflictError(GatewayError):
    """An ``Idempotency-Key`` that was used before with a different request (HTTP 422)."""


def request_fingerprint(data: Any) -> str:
    """SHA-256 of a request in canonical form: JSON with sorted keys and no whitespace, so two
    bodies that differ only in key order or spacing are the same request."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def create_broadcast(
    gw: Gateway,
    staff: StaffIdentity,
    *,
    template: str,
    event: EventSpec | None,
    audience: str | None,
    channels: list[str] | None,
    send_at: datetime | None,
    urgent: bool = False,
    policy: str = "preferred",
    dry_run: bool = False,
    context: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Plan a broadcast to the staff member's families; ``(summary, created)``.

    With an idempotency key, a retry with the same request (``request_hash``, the
    :func:`request_fingerprint` of the request body; by default of these arguments) returns the
    first broadcast's status and creates nothing; the same key with a different request raises
    :class:`IdempotencyConflictError`. A key expires ``http.idempotency_key_hours`` after its
    first use and may then be used for a new broadcast. Keys are per staff member, so one
    caller's key never reveals another's broadcast.
    """
    if event is not None:
        _check_school(staff, event.school)
    key = f"{staff.id}:{idempotency_key}" if idempotency_key and not dry_run else None
    if key is not None and request_hash is None:
        request_hash = request_fingerprint(
            {
                "template": template,
                "event": event.model_dump(mode="json") if event else None,
                "audience": audience,
                "channels": channels,
                "at": send_at.isoformat() if send_at else None,
                "urgent": urgent,
                "policy": policy,
                "context": context or {},
            }
        )
    if key is not None:
        await _expire_key(gw, key)
        existing = await _broadcast_by_key(gw, key)
        if existing is not None:
            return await _replay(gw, staff, idempotency_key, existing, request_hash), False
    for attempt in (1, 2):
        try:
            summary = await send_broadcast(
                gw,
                template,
                event_spec=event,
                audience=audience,
                channels=channels,
                send_at=send_at,
                urgent=urgent,
                policy=policy,
                dry_run=dry_run,
                context=context,
                created_by=staff.email,
                idempotency_key=key,
                idempotency_hash=request_hash,
                school_scope=staff.scope,
            )
            break
        except IntegrityError:
            # A concurrent request stored the same key (it won: answer as a repeat) or the
            # same event first (then planning again finds the event stored).
            existing = await _broadcast_by_key(gw, key) if key else None
            if existing is not None:
                return await _replay(gw, staff, idempotency_key, existing, request_hash), False
            if attempt == 2:
                raise
    if not dry_run and summary.get("broadcast_id"):
        await audit(
            gw,
            staff.email,
            "broadcast.create",
            str(summary["broadcast_id"]),
            {
                "template": template,
                "event": event.id if event else None,
                "audience": audience,
                "messages": summary.get("messages"),
                "send_at": send_at.isoformat() if send_at else None,
            },
        )
    return summary, not dry_run


async def _broadcast_by_key(gw: Gateway, key: str) -> tuple[int, str | None] | None:
    async with gw.db.session() as session:
        row = (
            await session.execute(
                select(Broadcast.id, Broadcast.idempotency_hash).where(Broadcast.idempotency_key == key)
            )
        ).first()
    return (row[0], row[1]) if row is not None else None


async def _expire_key(gw: Gateway, key: str) -> None:
    """Free ``key`` when its first use is older than ``http.idempotency_key_hours``."""
    cutoff = utcnow() - timedelta(hours=gw.config.http.idempotency_key_hours)
    async with gw.db.session() as session:
        await session.execute(
            update(Broadcast)
            .where(Broadcast.idempotency_key == key, Broadcast.created_at < cutoff)
            .values(idempotency_key=None)
        )
        await session.commit()


def _conflict(given: str | None, stored: tuple[int, str | None]) -> None:
    raise IdempotencyConflictError(
        f"Idempotency-Key {given!r} was already used for a different request (broadcast "
        f"{stored[0]}); send the same request again to get that broadcast, or use a new key "
        "for a new broadcast"
    )


async def _replay(
    gw: Gateway,
    staff: StaffIdentity,
    given: str | None,
    stored: tuple[int, str | None],
    request_hash: str | None,
) -> dict[str, Any]:
    """The first broadcast's status for a repeated request; a conflict for a different one
    (a broadcast stored before hashes were kept has none and matches any request)."""
    if stored[1] is not None and stored[1] != request_hash:
        _conflict(given, stored)
    return await _status(gw, staff, stored[0])


async def _status(gw: Gateway, staff: StaffIdentity, broadcast_id: int) -> dict[str, Any]:
    status = await broadcast_status(gw, broadcast_id, staff.scope, staff.email)
    if status is None:
        raise NotFoundError(f"no broadcast {broadcast_id}")
    return status


async def create_survey(
    gw: Gateway,
    staff: StaffIdentity,
    spec: SurveySpec,
    *,
    audience: str | None = None,
    channels: list[str] | None = None,
    send_at: datetime | None = None,
) -> dict[str, Any]:
    """Store a survey and send its first question to the staff member's families."""
    summary = await send_survey(
        gw,
        spec=spec,
        audience=audience,
        channels=channels,
        send_at=send_at,
        created_by=staff.email,
        school_scope=staff.scope,
    )
    await audit(
        gw,
        staff.email,
        "survey.send",
        spec.id,
        {"audience": audience or spec.audience, "messages": summary.get("messages")},
    )
    return summary


async def import_csv(
    gw: Gateway, staff: StaffIdentity, body: bytes, *, dry_run: bool = False
) -> dict[str, Any]:
    """Import a families CSV sent as a request body (admins only: an import may touch any school)."""
    from gateway.families import import_families

    if not staff.is_admin:
        raise ForbiddenError("only admins import families")
    path = await asyncio.to_thread(_write_upload, gw.data_dir / "uploads", body)
    try:
        report = await import_families(gw, path, dry_run=dry_run, progress=False)
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)
    report["file"] = "(request body)"
    if not dry_run:
        await audit(
            gw,
            staff.email,
            "families.import",
            None,
            {
                "rows": report["rows"],
                "imported": report["families_imported"],
                "updated": report["families_updated"],
                "errors": len(report["errors"]),
            },
        )
    return report


def _write_upload(folder: Path, body: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".csv", delete=False) as handle:
        handle.write(body)
        return Path(handle.name)


async def reply_to_inbox(gw: Gateway, staff: StaffIdentity, inbound_id: int, text: str) -> dict[str, Any]:
    """Answer an inbox item: translated into the family's language, queued on their channel."""
    text = text.strip()
    if not text:
        raise StaffFacingError(StaffNote(REPLY_EMPTY))
    if len(text) > MAX_REPLY_CHARACTERS:
        raise StaffFacingError(
            StaffNote(REPLY_TOO_LONG, {"length": str(len(text)), "limit": str(MAX_REPLY_CHARACTERS)})
        )
    if not await inbox_item_in_scope(gw, inbound_id, staff.scope):
        raise NotFoundError(f"no inbox item {inbound_id}")
    row = await gw.inbound.staff_reply(inbound_id, text, staff=staff.email)
    await audit(
        gw, staff.email, "inbox.reply", str(inbound_id), {"message_id": row.id, "channel": row.channel}
    )
    return {
        "message_id": row.id,
        "inbound_id": inbound_id,
        "channel": row.channel,
        "language": row.language,
        "status": row.status,
        "body": row.body,
        "translation": (row.payload or {}).get("translation_origin"),
        "received": (row.payload or {}).get("received"),
    }


async def record_answer(gw: Gateway, staff: StaffIdentity, inbound_id: int, value: str) -> dict[str, Any]:
    """Confirm or correct the answer an inbox item gives (a suggested RSVP, a survey answer)."""
    if not await inbox_item_in_scope(gw, inbound_id, staff.scope):
        raise NotFoundError(f"no inbox item {inbound_id}")
    try:
        classification = await gw.inbound.surveys.record_for_staff(inbound_id, value, staff=staff.email)
    except LookupError:
        raise StaffFacingError(StaffNote(NOTHING_TO_ANSWER)) from None
    except ValueError:
        raise StaffFacingError(StaffNote(NOT_AN_ANSWER, {"value": value})) from None
    await audit(gw, staff.email, "inbox.answer", str(inbound_id), {"value": value})
    return {"id": inbound_id, "recorded_answer": value, "classification": classification}


async def cancel_broadcast(gw: Gateway, staff: StaffIdentity, broadcast_id: int) -> dict[str, Any]:
    """Cancel a broadcast that has not started (its creator or an admin); queued messages and
    the event's reminders go with it."""
    from gateway.broadcasts import cancel_broadcast as cancel
    from gateway.storage.models import Broadcast

    async with gw.db.session() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise NotFoundError(f"no broadcast {broadcast_id}")
    if not staff.is_admin and broadcast.created_by != staff.email:
        raise ForbiddenError("only the person who sent a broadcast, or an admin, can cancel it")
    result = await cancel(gw, broadcast_id)
    await audit(gw, staff.email, "broadcast.cancel", str(broadcast_id), result)
    return result


async def flag_for_interpreter(gw: Gateway, staff: StaffIdentity, inbound_id: int, needed: bool) -> None:
    """Mark an inbox item as needing (or no longer needing) a human interpreter."""
    from gateway.inbox import flag_interpreter

    if not await inbox_item_in_scope(gw, inbound_id, staff.scope) or not await flag_interpreter(
        gw, inbound_id, needed
    ):
        raise NotFoundError(f"no inbox item {inbound_id}")
    await audit(gw, staff.email, "inbox.interpreter", str(inbound_id), {"needed": needed})


async def set_endpoint_consent(
    gw: Gateway, staff: StaffIdentity, family_id: str, endpoint_id: int, channel: str | None, opted_out: bool
) -> None:
    """Staff opt a family's address out (or back in) on one channel, or on every channel
    (``channel`` None), for the family; audited."""
    from gateway.families import set_consent
    from gateway.storage.models import Endpoint

    family = await family_detail(gw, family_id, staff.scope)
    known = {e["id"] for g in (family or {}).get("guardians", []) for e in g["endpoints"]}
    if family is None or endpoint_id not in known:
        raise NotFoundError(f"no family {family_id!r}")
    async with gw.db.session() as session:
        endpoint = await session.get(Endpoint, endpoint_id)
        if endpoint is None:
            raise NotFoundError(f"no family {family_id!r}")
        await set_consent(gw, session, endpoint, channel, opted_out)
        await record_audit(
            session,
            staff.email,
            "endpoint.opt_out" if opted_out else "endpoint.opt_in",
            family_id,
            {"endpoint_id": endpoint_id, "channel": channel or "*"},
        )
        await session.commit()


async def set_guardian_language(
    gw: Gateway, staff: StaffIdentity, family_id: str, guardian_id: int, language: str
) -> str:
    """Change the language a guardian reads; returns the normalised tag."""
    family = await family_detail(gw, family_id, staff.scope)
    if family is None or guardian_id not in {g["id"] for g in family["guardians"]}:
        raise NotFoundError(f"no family {family_id!r}")
    try:
        tag = normalize_language(language)
    except ValueError:
        raise StaffFacingError(StaffNote(NOT_A_LANGUAGE, {"language": language})) from None
    async with gw.db.session() as session:
        guardian = await session.get(Guardian, guardian_id)
        if guardian is None:
            raise NotFoundError(f"no family {family_id!r}")
        before = guardian.language
        guardian.language = tag
        await record_audit(
            session,
            staff.email,
            "guardian.language",
            family_id,
            {"guardian_id": guardian_id, "from": before, "to": tag},
        )
        await session.commit()
    return tag
