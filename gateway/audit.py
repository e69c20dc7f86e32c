"""The audit log: who changed what, when. Every data-changing page, API call and staff command
writes one entry; entries never hold message bodies or full addresses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.storage.models import AuditEntry

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["audit", "list_audit", "record_audit"]


async def record_audit(
    session: AsyncSession, actor: str, action: str, target: str | None, detail: dict[str, Any] | None = None
) -> None:
    """Add an entry to ``session`` (committed with the change it describes)."""
    session.add(AuditEntry(actor=actor, action=action, target=target, detail=dict(detail or {})))


async def audit(
    gw: Gateway, actor: str, action: str, target: str | None, detail: dict[str, Any] | None = None
) -> None:
    """Write an entry in its own transaction (for changes made by another module)."""
    async with gw.db.session() as session:
        await record_audit(session, actor, action, target, detail)
        await session.commit()


async def list_audit(gw: Gateway, limit: int = 200) -> list[dict[str, Any]]:
    """The newest entries first."""
    async with gw.db.session() as session:
        rows = await session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
        return [
            {
                "id": r.id,
                "actor": r.actor,
                "action": r.action,
                "target": r.target,
                "detail": r.detail,
                "at": r.at.isoformat(),
            }
            for r in rows
        ]
