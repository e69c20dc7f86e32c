"""Channel fallback: a permanent failure on the preferred endpoint re-queues the same rendered
content on the guardian's next usable endpoint (broadcast policy ``preferred``)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.storage.models import Broadcast, Endpoint, Guardian, OutboxMessage, utcnow

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["requeue_on_next_endpoint"]


async def requeue_on_next_endpoint(gateway: Gateway, session: AsyncSession, row: OutboxMessage) -> bool:
    """Render the broadcast again for the next endpoint in ``payload['fallback']``; True if queued."""
    payload: dict[str, Any] = dict(row.payload or {})
    remaining: list[int] = list(payload.get("fallback", []))
    while remaining:
        endpoint_id = remaining.pop(0)
        endpoint = await session.get(Endpoint, endpoint_id)
        if endpoint is None or endpoint.opted_out or endpoint.invalid:
            continue
        channels = gateway.channels_for_kind(endpoint.kind)
        if not channels:
            continue
        channel = channels[0]
        guardian = await session.get(Guardian, endpoint.guardian_id)
        broadcast = await session.get(Broadcast, row.broadcast_id) if row.broadcast_id else None
        if guardian is None:
            continue
        body, subject, html = row.body, row.subject, row.html
        if broadcast is not None and channel.variant != gateway.channel(row.channel).variant:
            rendered = await gateway.planner.render_for(session, broadcast, guardian, channel)
            if rendered is None:
                continue
            body, subject, html = rendered.body, rendered.subject, rendered.html
        new_payload = {**payload, "fallback": remaining, "fallback_from": row.id}
        session.add(
            OutboxMessage(
                broadcast_id=row.broadcast_id,
                family_id=row.family_id,
                guardian_id=row.guardian_id,
                endpoint_id=endpoint.id,
                channel=channel.name,
                address=endpoint.address,
                language=row.language,
                subject=subject,
                body=body,
                html=html,
                payload=new_payload,
                conversation=row.conversation,
                status="queued",
                due_at=utcnow(),
                reply_token=secrets.token_urlsafe(16),
            )
        )
        return True
    return False
