"""Conversation messages: answers to a family's own reply (next survey question, HELP text,
confirmations, staff answers). They go at once — no quiet hours — through the same outbox."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.outbox.planner import base_context
from gateway.storage.models import Endpoint, Family, Guardian, OutboxMessage, utcnow

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
    compliance: bool = False,
    payload: dict[str, Any] | None = None,
    broadcast_id: int | None = None,
) -> OutboxMessage:
    """Render ``template`` for one address and add it to the outbox, due now."""
    channel = gw.channel(channel_name)
    ctx = base_context(gw, language)
    if guardian is not None:
        ctx["guardian"] = {"name": guardian.name, "language": language}
    else:
        ctx["guardian"] = {"name": "", "language": language}
    ctx["family"] = {"family_id": family.external_id if family else ""}
    ctx["buttons"] = channel.supports_buttons
    ctx.update(context or {})
    rendered = gw.renderer.render(template, channel.variant, language, ctx)
    data: dict[str, Any] = {"direction": rendered.direction, "template": template}
    if family is not None:
        data["family_id"] = family.external_id
    if compliance:
        data["compliance"] = True
    data.update(payload or {})
    row = OutboxMessage(
        broadcast_id=broadcast_id,
        family_id=family.id if family else None,
        guardian_id=guardian.id if guardian else None,
        endpoint_id=endpoint.id if endpoint else None,
        channel=channel_name,
        address=address,
        language=language,
        subject=rendered.subject,
        body=rendered.body,
        html=rendered.html,
        payload=data,
        conversation=True,
        status="queued",
        due_at=utcnow(),
        reply_token=secrets.token_urlsafe(16),
    )
    session.add(row)
    await session.flush()
    return row
