"""The ``whatsapp`` channel plugin: WhatsApp through Twilio's WhatsApp sender, aware of the
24-hour customer-service window (free-form inside it, approved templates by Content SID
outside it), with signed webhooks for replies, button taps and delivery / read reports.

Config: ``{plugin: whatsapp, account_sid, auth_token, from_number | messaging_service_sid,
templates, quick_replies}``; see :class:`WhatsAppSettings`. The address kind it brings
(``whatsapp:+E164``, defaulting from the guardian's phone) is in :mod:`.addresses`.
"""

from __future__ import annotations

from gateway import hookimpl

from .channel import WhatsAppChannel
from .settings import TemplateRef, WhatsAppSettings

__all__ = ["TemplateRef", "WhatsAppChannel", "WhatsAppSettings", "gateway_channel_types"]


@hookimpl
def gateway_channel_types() -> list[type]:
    """The channel types this plugin provides."""
    return [WhatsAppChannel]
