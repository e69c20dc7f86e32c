"""Shared constants and helpers of the whatsapp tests (a unique module name on purpose)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from gateway_plugins.whatsapp import WhatsAppChannel

from gateway import Button, OutboundMessage

PUBLIC_BASE_URL = "https://gateway.example.org"
SENDER = "+18165550100"
PARENT = "+18165550199"
WA_PARENT = "whatsapp:" + PARENT

ChannelFactory = Callable[..., Awaitable[WhatsAppChannel]]
"""``await make_channel(**settings_overrides)`` → a started channel on the fake Twilio."""


def outbound(
    body: str = "Taller de lectura el martes a las 17:00.",
    *,
    language: str = "es",
    message_id: int = 1,
    buttons: tuple[Button, ...] = (),
    metadata: dict[str, Any] | None = None,
) -> OutboundMessage:
    """An outbox message for the parent, as the core hands it over: the address in the
    ``whatsapp`` kind's form (their phone number, prefixed)."""
    return OutboundMessage(
        message_id=message_id,
        channel="whatsapp",
        address=WA_PARENT,
        language=language,
        body=body,
        buttons=buttons,
        metadata=metadata or {},
    )
