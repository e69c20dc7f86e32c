"""Conversation messages: answers to a family's own reply (next survey question, HELP text,
confirmations, staff answers). They go at once — no quiet hours — through the same outbox and
the same composer as broadcasts."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.storage.models import Endpoint, Family, Guardian, OutboxMessage, utcnow
from gateway.translation.strings import LanguageStrings

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["queue_conversation"]


async def queue_conversation(
    gw: Gateway,
    session: AsyncSession,
    *,
    template: str,
    channel_name: str,
    address: str,
    language: str,
    guardian: Guardian | None = None,
    family: Family | None = None,
    endpoint: Endpoint | None = None,
    context: dict[str, Any] | None = None,
    strings: LanguageStrings | None = None,
    texts: Iterable[str | None] = (),
    names: Sequence[str] = (),
    compliance: bool = False,
    payload: dict[str, Any] | None = None,
    broadcast_id: int | None = None,
) -> OutboxMessage:
    """Compose ``template`` for one address and add it to the outbox, due now.

    ``strings`` are the language's resolved strings when the caller already has them (it put
    translated free text into ``context``); otherwise the template's strings and ``texts`` are
    resolved here. A message whose text waits for review is added ``held``.
    """
    channel = gw.channel(channel_name)
    if strings is None:
        strings = await gw.composer.strings(language, [template], texts, session=session, names=names)
    ctx: dict[str, Any] = {
        "guardian": {"name": guardian.name if guardian is not None else "", "language": language},
        "family": {"family_id": family.external_id if family else ""},
        "buttons": channel.features.buttons > 0,
    }
    ctx.update(context or {})
    composed = gw.composer.render(template, channel, strings, ctx)
    data: dict[str, Any] = {
        "direction": composed.direction,
        "template": template,
        "sources": composed.origins(),
        "received": composed.received,
    }
    if family is not None:
        data["family_id"] = family.external_id
    if compliance:
        data["compliance"] = True
    if composed.buttons:
        data["buttons"] = [[b.value, b.label] for b in composed.buttons]
    data.update(payload or {})
    row = OutboxMessage(
        broadcast_id=broadcast_id,
        family_id=family.id if family else None,
        guardian_id=guardian.id if guardian else None,
        endpoint_id=endpoint.id if endpoint else None,
        channel=channel_name,
        address=address,
        language=language,
        subject=composed.subject,
        body=composed.body,
        html=composed.html,
        payload=data,
        conversation=True,
        status="held" if composed.held else "queued",
        due_at=utcnow(),
        reply_token=secrets.token_urlsafe(16),
    )
    session.add(row)
    await session.flush()
    return row
