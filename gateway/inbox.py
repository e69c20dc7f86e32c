"""The staff inbox: free-text replies and unmatched answers, urgent first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from gateway.storage.models import Family, InboundRecord

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["list_inbox"]


async def list_inbox(
    gw: Gateway, *, unread: bool = False, schools: list[str] | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """The ``inbox --json`` shape."""
    staff = gw.config.translation.staff_language
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
        note = None
        if (
            record.translation is None
            and record.language
            and record.language.split("-")[0] != staff.split("-")[0]
        ):
            note = (
                f"no translation engine for {record.language}→{staff}; install one with "
                f"`gateway translate install FILE.argosmodel`"
            )
        items.append(
            {
                "id": record.id,
                "family_id": family_id,
                "channel": record.channel,
                "received_at": record.received_at.isoformat(),
                "text": record.text,
                "language": record.language,
                "translation": record.translation,
                "note": note,
                "classification": record.classification,
                "urgent": record.urgent,
                "answered": record.answered_at is not None,
            }
        )
    return items
