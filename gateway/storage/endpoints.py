"""Endpoint state (opt-out, invalid) per channel, sender lookup and onboarding link tokens.

Consent has two levels: the marks on the endpoint itself apply to every channel reaching the
address (STOP ALL, staff "everywhere", states from before per-channel consent); a channel's own
STOP, block or bounce is an :class:`~gateway.storage.models.EndpointConsent` row for that
channel only. An endpoint is usable on a channel when neither level blocks it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.channels import EndpointLink
from gateway.errors import EndpointState
from gateway.storage.db import Database
from gateway.storage.models import (
    Endpoint,
    EndpointConsent,
    Family,
    Guardian,
    InboundRecord,
    LinkToken,
    utcnow,
)

if TYPE_CHECKING:
    from gateway.addresses import AddressKind

__all__ = [
    "ChannelState",
    "blocked_pairs",
    "channel_states",
    "create_link_token",
    "effective_state",
    "endpoint_language",
    "endpoint_state",
    "find_endpoints",
    "last_inbound_at",
    "opt_in_on_channel",
    "opt_out_everywhere",
    "redeem_link_token",
    "set_channel_state",
    "set_endpoint_state",
]

CONSENT = EndpointConsent.__table__


@dataclass(frozen=True, slots=True)
class ChannelState:
    """An endpoint's state on one channel (both levels together)."""

    opted_out: bool = False
    invalid: bool = False
    everywhere: bool = False
    """The state comes from the endpoint itself (every channel), not from this channel."""
    reason: str | None = None

    @property
    def usable(self) -> bool:
        """Whether the channel may write to the endpoint."""
        return not (self.opted_out or self.invalid)


async def find_endpoints(session: AsyncSession, kind: AddressKind, address: str) -> list[Endpoint]:
    """Every endpoint (of any guardian) that ``address`` of ``kind`` is: endpoints of the kind
    itself; when there are none and the kind defaults from another, endpoints of that kind with
    the address in its form (WhatsApp on the family's phone number)."""
    own = list(
        await session.scalars(
            select(Endpoint)
            .where(Endpoint.kind == kind.name, Endpoint.address == address)
            .order_by(Endpoint.id)
        )
    )
    if own or not kind.defaults_from:
        return own
    return list(
        await session.scalars(
            select(Endpoint)
            .where(Endpoint.kind == kind.defaults_from, Endpoint.address == kind.default_address(address))
            .order_by(Endpoint.id)
        )
    )


def _consent_values(state: EndpointState | None, reason: str) -> dict[str, Any]:
    if state == "opted_out":
        return {"opted_out": True, "opted_out_at": utcnow()}
    if state == "invalid":
        return {"invalid": True, "invalid_reason": reason[:200]}
    return {"opted_out": False, "opted_out_at": None, "invalid": False, "invalid_reason": None}


async def set_channel_state(
    session: AsyncSession,
    endpoint_ids: Iterable[int],
    channel: str,
    state: EndpointState | None,
    reason: str = "",
) -> int:
    """Mark ``endpoint_ids`` opted out or invalid on ``channel`` only (``None``: lift both marks
    there; every-channel marks stay); how many endpoints. One upsert, so two processes marking
    the same endpoint at once (a bounce and a STOP) cannot collide."""
    ids = sorted(set(endpoint_ids))
    if not ids:
        return 0
    values = _consent_values(state, reason)
    now = utcnow()
    c = CONSENT.c
    if state is None:
        await session.execute(
            update(CONSENT)
            .where(c.endpoint_id.in_(ids), c.channel == channel)
            .values(**values, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return len(ids)
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    defaults = {"opted_out": False, "opted_out_at": None, "invalid": False, "invalid_reason": None}
    statement = dialect_insert(CONSENT).values(
        [{**defaults, **values, "endpoint_id": i, "channel": channel, "updated_at": now} for i in ids]
    )
    statement = statement.on_conflict_do_update(
        index_elements=["endpoint_id", "channel"],
        set_={**{key: statement.excluded[key] for key in values}, "updated_at": now},
    )
    await session.execute(statement)
    return len(ids)


async def opt_in_on_channel(
    session: AsyncSession, endpoint_ids: Iterable[int], channel: str, other_channels: Iterable[str]
) -> bool:
    """START on ``channel``: lift its opt-out; an every-channel opt-out of these endpoints is
    lifted for ``channel`` only (the ``other_channels`` reaching them keep it). True when the
    endpoint was opted out on ``channel`` before."""
    ids = sorted(set(endpoint_ids))
    if not ids:
        return False
    states = await channel_states(session, ids)
    was_out = any(states.get(i, {}).get(channel, ChannelState()).opted_out for i in ids)
    everywhere = [
        e for e in await session.scalars(select(Endpoint).where(Endpoint.id.in_(ids))) if e.opted_out
    ]
    if everywhere:
        moved = [e.id for e in everywhere]
        for other in other_channels:
            if other != channel:
                await set_channel_state(session, moved, other, "opted_out", "opted out everywhere")
        for endpoint in everywhere:
            endpoint.opted_out, endpoint.opted_out_at = False, None
    await session.execute(
        update(CONSENT)
        .where(CONSENT.c.endpoint_id.in_(ids), CONSENT.c.channel == channel)
        .values(opted_out=False, opted_out_at=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await session.flush()
    return was_out


async def opt_out_everywhere(session: AsyncSession, guardian_ids: Iterable[int]) -> int:
    """STOP ALL (or staff, for the family): every endpoint of these guardians, on every channel."""
    ids = sorted(set(guardian_ids))
    if not ids:
        return 0
    result = await session.execute(
        update(Endpoint)
        .where(Endpoint.guardian_id.in_(ids))
        .values(opted_out=True, opted_out_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def channel_states(
    session: AsyncSession, endpoint_ids: Iterable[int]
) -> dict[int, dict[str, ChannelState]]:
    """Per endpoint, the channels it has a mark of its own on (every-channel marks are on the
    endpoint: see :func:`effective_state`)."""
    ids = sorted(set(endpoint_ids))
    found: dict[int, dict[str, ChannelState]] = {}
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        for endpoint_id, channel, opted_out, invalid, reason in await session.execute(
            select(
                EndpointConsent.endpoint_id,
                EndpointConsent.channel,
                EndpointConsent.opted_out,
                EndpointConsent.invalid,
                EndpointConsent.invalid_reason,
            ).where(EndpointConsent.endpoint_id.in_(chunk))
        ):
            if opted_out or invalid:
                found.setdefault(endpoint_id, {})[channel] = ChannelState(
                    bool(opted_out), bool(invalid), False, reason
                )
    return found


def effective_state(
    opted_out: bool, invalid: bool, reason: str | None, own: dict[str, ChannelState] | None, channel: str
) -> ChannelState:
    """An endpoint's state on ``channel``: its every-channel marks, else the channel's own."""
    if opted_out or invalid:
        return ChannelState(opted_out, invalid, True, reason)
    return (own or {}).get(channel, ChannelState())


async def endpoint_state(session: AsyncSession, endpoint_id: int, channel: str) -> ChannelState:
    """One endpoint's state on ``channel`` (both levels); an unknown endpoint reads usable."""
    endpoint = await session.get(Endpoint, endpoint_id)
    if endpoint is None:
        return ChannelState()
    own = (await channel_states(session, [endpoint_id])).get(endpoint_id)
    return effective_state(endpoint.opted_out, endpoint.invalid, endpoint.invalid_reason, own, channel)


async def blocked_pairs(session: AsyncSession, pairs: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
    """Of ``(endpoint id, channel)`` pairs, those the endpoint may not be written to on."""
    wanted = set(pairs)
    ids = sorted({e for e, _ in wanted})
    if not ids:
        return set()
    blocked: set[tuple[int, str]] = set()
    everywhere = set(
        await session.scalars(
            select(Endpoint.id).where(Endpoint.id.in_(ids), or_(Endpoint.opted_out, Endpoint.invalid))
        )
    )
    own = await channel_states(session, ids)
    for endpoint_id, channel in wanted:
        if endpoint_id in everywhere or channel in own.get(endpoint_id, {}):
            blocked.add((endpoint_id, channel))
    return blocked


async def set_endpoint_state(
    db: Database, kind: AddressKind, address: str, state: EndpointState | None, reason: str, channel: str
) -> int:
    """Opt out, invalidate or (``None``) restore ``address`` on ``channel``: every endpoint
    behind it (guardians may share an address), on that channel only; how many."""
    async with db.session() as session:
        ids = [e.id for e in await find_endpoints(session, kind, address)]
        if state is None:
            count = await set_channel_state(session, ids, channel, None, reason)
            for endpoint in await session.scalars(select(Endpoint).where(Endpoint.id.in_(ids))):
                if endpoint.invalid:
                    endpoint.invalid, endpoint.invalid_reason = False, None
        else:
            count = await set_channel_state(session, ids, channel, state, reason)
        await session.commit()
        return count


async def endpoint_language(db: Database, kind: AddressKind, address: str) -> str | None:
    """The language of the (first) guardian behind an address."""
    async with db.session() as session:
        endpoints = await find_endpoints(session, kind, address)
        if not endpoints:
            return None
        return await session.scalar(select(Guardian.language).where(Guardian.id == endpoints[0].guardian_id))


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


async def redeem_link_token(
    db: Database, token: str, kind: str, address: str, channel: str | None = None
) -> EndpointLink | None:
    """Link ``address`` to the token's guardian (clearing its marks, on ``channel`` too); None
    when the token is unknown, used or revoked."""
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
            if channel is not None:
                await set_channel_state(session, [existing.id], channel, None)
        await session.commit()
        return EndpointLink(
            family_id=family.external_id if family else "",
            guardian_name=guardian.name,
            language=guardian.language,
        )
