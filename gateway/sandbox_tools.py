"""Driving the sandbox: inject a reply through the inbound pipeline, list what was sent."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from gateway.channels import InboundMessage
from gateway.errors import GatewayError
from gateway.storage.models import OutboxMessage

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["inject_reply", "sandbox_messages"]


def _kind_of(address: str) -> str:
    if "@" in address:
        return "email"
    if address.startswith("+"):
        return "phone"
    return "telegram"


async def inject_reply(
    gw: Gateway,
    sender: str,
    text: str,
    channel: str | None = None,
    provider_id: str | None = None,
    dispatch: bool = True,
) -> dict[str, Any]:
    """Hand a reply to the inbound pipeline as ``channel`` would, then send what it queued."""
    kind = gw.channel(channel).kind if channel else _kind_of(sender)
    if channel is None:
        found = gw.channels_for_kind(kind)
        if not found:
            raise GatewayError(f"no channel reaches {kind} addresses like {sender!r}")
        channel = found[0].name
    try:
        sender = gw.address_kinds.get_kind(kind, "sandbox reply").parse(
            sender, region=gw.config.families.default_region
        )
    except ValueError as exc:
        raise GatewayError(f"--from {sender!r}: {exc}") from None
    message = InboundMessage(
        channel=channel,
        provider_message_id=provider_id or f"sandbox-{uuid.uuid4().hex}",
        sender=sender,
        text=text,
    )
    async with gw.db.session() as session:
        before = (
            await session.scalar(select(OutboxMessage.id).order_by(OutboxMessage.id.desc()).limit(1)) or 0
        )
    outcome = await gw.inbound.handle(message)
    replies: list[dict[str, Any]] = []
    if dispatch:
        await gw.start_channels()
        await gw.dispatcher.run_until_idle()
        async with gw.db.session() as session:
            rows = await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.id > before, OutboxMessage.conversation)
                .order_by(OutboxMessage.id)
            )
            replies = [
                {
                    "message_id": r.id,
                    "channel": r.channel,
                    "language": r.language,
                    "body": r.body,
                    "status": r.status,
                }
                for r in rows
            ]
    return {
        "inbound_id": outcome.inbound_id,
        "duplicate": outcome.duplicate,
        "classification": outcome.classification,
        "family_id": outcome.family_id,
        "replies": replies,
    }


async def sandbox_messages(gw: Gateway) -> list[dict[str, Any]]:
    """The ``sandbox outbox --json`` shape: every message sent on a sandbox channel."""
    names = [n for n, c in gw.channels.items() if c.plugin == "sandbox"]
    if not names:
        return []
    async with gw.db.session() as session:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.channel.in_(names), OutboxMessage.status.in_(["sent", "delivered"]))
            .order_by(OutboxMessage.id)
        )
        return [
            {
                "message_id": r.id,
                "broadcast_id": r.broadcast_id,
                "family_id": (r.payload or {}).get("family_id"),
                "channel": r.channel,
                "address": r.address,
                "language": r.language,
                "subject": r.subject,
                "body": r.body,
                "html": r.html,
                "buttons": (r.payload or {}).get("buttons", []),
                "attachments": [
                    {k: a.get(k) for k in ("name", "type", "size", "url")}
                    for a in (r.payload or {}).get("attachments", [])
                ],
                "conversation": r.conversation,
            }
            for r in rows
        ]
