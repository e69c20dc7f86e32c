"""Channel fallback: a permanent failure on the preferred endpoint re-queues the message on the
guardian's next usable endpoint (broadcast policy ``preferred``)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.outbox.planner import Rerenderer
from gateway.storage.models import Broadcast, Endpoint, OutboxMessage, utcnow

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["requeue_on_next_endpoint"]


async def requeue_on_next_endpoint(gateway: Gateway, session: AsyncSession, row: Any) -> bool:
    """Queue the message again on the next usable endpoint in ``payload['fallback']``; True if
    queued. A broadcast message is rendered again for that channel (its variant, reply token and
    unsubscribe link); a conversation message is copied."""
    payload: dict[str, Any] = dict(row.payload or {})
    remaining: list[int] = list(payload.get("fallback", []))
    broadcast = await session.get(Broadcast, row.broadcast_id) if row.broadcast_id else None
    rerender = Rerenderer(gateway.planner, session, broadcast) if broadcast is not None else None
    while remaining:
        endpoint_id = remaining.pop(0)
        endpoint = await session.get(Endpoint, endpoint_id)
        if endpoint is None or endpoint.opted_out or endpoint.invalid:
            continue
        channels = gateway.channels_for_kind(endpoint.kind)
        if not channels:
            continue
        channel = channels[0]
        if rerender is not None:
            values = await rerender.row(row, channel.name, endpoint.id)
            if values is None:
                continue
        else:
            values = {
                "family_id": row.family_id,
                "guardian_id": row.guardian_id,
                "endpoint_id": endpoint.id,
                "channel": channel.name,
                "address": endpoint.address,
                "language": row.language,
                "subject": row.subject,
                "body": row.body,
                "html": row.html,
                "payload": payload,
                "conversation": row.conversation,
                "status": "queued",
                "due_at": utcnow(),
                "reply_token": secrets.token_urlsafe(16),
            }
        values["payload"] = {**values["payload"], "fallback": remaining, "fallback_from": row.id}
        session.add(OutboxMessage(**values))
        return True
    return False
