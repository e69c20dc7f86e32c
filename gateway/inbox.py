"""The staff inbox: free-text replies and unmatched answers, urgent first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from gateway.domain.languages import display_name
from gateway.storage.models import Family, InboundRecord

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["flag_interpreter", "list_inbox", "translation_note"]


def translation_note(gw: Gateway, record: InboundRecord) -> str | None:
    """Why there is no translation of a reply, in plain words for staff; None when there is one
    or none is needed."""
    staff = gw.config.translation.staff_language
    language = record.language
    if record.translation is not None or not language or language.split("-")[0] == staff.split("-")[0]:
        return None
    names = f"{display_name(language)} → {display_name(staff)}"
    if not gw.translation.can_translate(language, staff):
        return f"No machine translation covers {names}. Flag it for an interpreter."
    return f"The machine translation ({names}) failed this time. Flag it for an interpreter."


async def list_inbox(
    gw: Gateway,
    *,
    unread: bool = False,
    schools: list[str] | None = None,
    needs_interpreter: bool | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """The ``inbox --json`` shape."""
    async with gw.db.session() as session:
        query = (
            select(InboundRecord, Family.external_id)
            .outerjoin(Family, Family.id == InboundRecord.family_id)
            .where(InboundRecord.inbox)
            .order_by(InboundRecord.urgent.desc(), InboundRecord.received_at.desc())
            .limit(limit)
        )
        if unread:
            query = query.where(InboundRecord.answered_at.is_(None), InboundRecord.read.is_(False))
        if needs_interpreter is not None:
            query = query.where(InboundRecord.needs_interpreter.is_(needs_interpreter))
        if schools is not None:
            from sqlalchemy import func

            from gateway.storage.models import Student

            query = query.where(
                InboundRecord.family_id.in_(
                    select(Student.family_id).where(
                        func.lower(Student.school).in_([s.casefold() for s in schools])
                    )
                )
            )
        rows = (await session.execute(query)).all()
    items = []
    for record, family_id in rows:
        items.append(
            {
                "id": record.id,
                "family_id": family_id,
                "channel": record.channel,
                "received_at": record.received_at.isoformat(),
                "text": record.text,
                "language": record.language,
                "detected_language": record.detected_language,
                "translation": record.translation,
                "translation_engine": record.translation_engine,
                "note": translation_note(gw, record),
                "needs_interpreter": record.needs_interpreter,
                "classification": record.classification,
                "urgent": record.urgent,
                "answered": record.answered_at is not None,
            }
        )
    return items


async def flag_interpreter(gw: Gateway, inbound_id: int, needed: bool = True) -> bool:
    """Mark (or unmark) an inbox item as needing an interpreter; False when there is no such item."""
    async with gw.db.session() as session:
        record = await session.get(InboundRecord, inbound_id)
        if record is None or not record.inbox:
            return False
        record.needs_interpreter = needed
        await session.commit()
        return True
