"""Channel fallback: a permanent failure on the preferred endpoint re-queues the message on the
guardian's next usable endpoint (broadcast policy ``preferred``)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.outbox.planner import Rerenderer
from gateway.outbox.routing import address_for_channel, parse_fallback
from gateway.storage.endpoints import blocked_pairs
from gateway.storage.models import Broadcast, Endpoint, OutboxMessage, utcnow

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["requeue_on_next_endpoint"]


async def requeue_on_next_endpoint(gateway: Gateway, session: AsyncSession, row: Any) -> bool:
    """Queue the message again on the next usable endpoint in ``payload['fallback']``; True if
    queued. A broadcast message is rendered again for that channel (its variant, reply token and
    unsubscribe link); a conversation message is copied."""
    payload: dict[str, Any] = dict(row.payload or {})
    remaining = parse_fallback(payload.get("fallback"))
    broadcast = await session.get(Broadcast, row.broadcast_id) if row.broadcast_id else None
    rerender = Rerenderer(gateway.planner, session, broadcast) if broadcast is not None else None
    while remaining:
        channel_name, endpoint_id = remaining.pop(0)
        endpoint = await session.get(Endpoint, endpoint_id)
        if endpoint is None:
            continue
        if channel_name is None:  # planned before routing by channel
            channels = gateway.channels_for_kind(endpoint.kind)
            if not channels:
                continue
            channel = channels[0]
        elif channel_name in gateway.channels:
            channel = gateway.channels[channel_name]
        else:
            continue
        if (endpoint.id, channel.name) in await blocked_pairs(session, [(endpoint.id, channel.name)]):
            continue
        address = address_for_channel(gateway, channel, endpoint.kind, endpoint.address)
        if address is None:
            continue
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
                "address": address,
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
        values["payload"] = {
            **values["payload"],
            "fallback": [[c, e] for c, e in remaining],
            "fallback_from": row.id,
        }
        session.add(OutboxMessage(**values))
        return True
    return False
