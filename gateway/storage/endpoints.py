"""Endpoint state (opt-out, invalid), sender lookup (language, last message) and onboarding
link tokens."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from gateway.channels import EndpointLink
from gateway.errors import EndpointState
from gateway.storage.db import Database
from gateway.storage.models import Endpoint, Family, Guardian, InboundRecord, LinkToken, utcnow

__all__ = [
    "create_link_token",
    "endpoint_language",
    "last_inbound_at",
    "redeem_link_token",
    "set_endpoint_state",
]


async def set_endpoint_state(
    db: Database, kind: str, address: str, state: EndpointState | None, reason: str
) -> int:
    """Opt out, invalidate or (``None``) restore every endpoint of ``kind`` with ``address``."""
    values: dict[str, Any]
    if state == "opted_out":
        values = {"opted_out": True, "opted_out_at": utcnow()}
    elif state == "invalid":
        values = {"invalid": True, "invalid_reason": reason[:200]}
    else:
        values = {"opted_out": False, "opted_out_at": None, "invalid": False, "invalid_reason": None}
    async with db.session() as session:
        result = await session.execute(
            update(Endpoint).where(Endpoint.kind == kind, Endpoint.address == address).values(**values)
        )
        await session.commit()
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def endpoint_language(db: Database, kind: str, address: str) -> str | None:
    """The language of the (first) guardian behind an address."""
    async with db.session() as session:
        return await session.scalar(
            select(Guardian.language)
            .join(Endpoint, Endpoint.guardian_id == Guardian.id)
            .where(Endpoint.kind == kind, Endpoint.address == address)
            .limit(1)
        )


async def last_inbound_at(db: Database, channel: str, sender: str) -> datetime | None:
    """When ``channel`` last received a message from ``sender`` (index
    ``ix_inbound_channel_sender``)."""
    async with db.session() as session:
        return await session.scalar(
            select(func.max(InboundRecord.received_at)).where(
                InboundRecord.channel == channel, InboundRecord.sender == sender
            )
        )


async def create_link_token(db: Database, guardian_id: int, kind: str = "telegram") -> str:
    """A new unguessable single-use token (≤ 64 chars of ``A-Za-z0-9_-``) for a guardian."""
    token = secrets.token_urlsafe(24)
    async with db.session() as session:
        session.add(LinkToken(token=token, guardian_id=guardian_id, kind=kind))
        await session.commit()
    return token


async def redeem_link_token(db: Database, token: str, kind: str, address: str) -> EndpointLink | None:
    """Link ``address`` to the token's guardian; None when the token is unknown, used or revoked."""
    async with db.session() as session:
        link = await session.scalar(select(LinkToken).where(LinkToken.token == token, LinkToken.kind == kind))
        if link is None or link.used_at is not None or link.revoked:
            return None
        guardian = await session.get(Guardian, link.guardian_id)
        if guardian is None:
            return None
        family = await session.get(Family, guardian.family_id)
        link.used_at = utcnow()
        existing = await session.scalar(
            select(Endpoint).where(
                Endpoint.guardian_id == guardian.id, Endpoint.kind == kind, Endpoint.address == address
            )
        )
        if existing is None:
            session.add(Endpoint(guardian_id=guardian.id, kind=kind, address=address))
        else:
            existing.opted_out = False
            existing.invalid = False
        await session.commit()
        return EndpointLink(
            family_id=family.external_id if family else "",
            guardian_name=guardian.name,
            language=guardian.language,
        )
