"""Twilio's WhatsApp webhooks: the SMS plugin's signed handlers (same ``X-Twilio-Signature``
check against the public URL), reading WhatsApp's extra fields.

* incoming: ``From`` is ``whatsapp:+E164``, the channel's address form (the core finds the
  family by its ``whatsapp`` address, else by its phone number), a tapped
  quick-reply button adds ``ButtonPayload`` (the button's id: our choice value) and
  ``ButtonText``; ``OriginalRepliedMessageSid`` names the message a reply quotes; ``WaId``
  and ``ProfileName`` stay in ``raw``. Every incoming message restarts the 24-hour window.
* status: adds ``read``; ``ErrorCode`` 63016 (outside the window) closes the window for the
  recipient and asks for one more send, which goes out as the approved template.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime

from gateway_plugins.twilio_sms.webhooks import TwilioWebhooks

from gateway import ChannelContext, InboundMessage, StatusUpdate

from .addresses import to_provider
from .errors import OUTSIDE_WINDOW, describe_whatsapp_error

__all__ = ["WhatsAppWebhooks"]

#: Seconds before the core sends a message again after a 63016 delivery report: at once, as
#: the template (the window is closed now, so the channel will not try free-form again).
RESEND_AS_TEMPLATE_AFTER = 0.0


class WhatsAppWebhooks(TwilioWebhooks):
    """``inbound`` and ``status`` of one WhatsApp channel.

    Addresses are in the ``whatsapp:+E164`` form both ways; ``on_inbound(address, at)`` and
    ``on_window_closed(address)`` tell the channel what the webhooks learnt about a
    recipient's window.
    """

    def __init__(
        self,
        channel_name: str,
        context: ChannelContext,
        auth_token: str,
        *,
        on_inbound: Callable[[str, datetime], None],
        on_window_closed: Callable[[str], None],
    ) -> None:
        super().__init__(channel_name, context, auth_token, describe=describe_whatsapp_error)
        self._on_inbound = on_inbound
        self._on_window_closed = on_window_closed

    def inbound_message(self, form: Mapping[str, str]) -> InboundMessage:
        """A WhatsApp message or button tap as an :class:`gateway.InboundMessage`."""
        message = super().inbound_message(form)
        sender = to_provider(message.sender)
        payload = (form.get("ButtonPayload") or "").strip() or None
        text = message.text or form.get("ButtonText", "")
        quoted = (form.get("OriginalRepliedMessageSid") or "").strip()
        self._on_inbound(sender, message.received_at)
        return dataclasses.replace(
            message,
            sender=sender,
            text=text,
            choice=payload,
            provider_in_reply_to=(quoted,) if quoted else (),
        )

    def recipient_address(self, form: Mapping[str, str]) -> str:
        """``To`` as ``whatsapp:+E164`` (the core marks the family's number on this channel)."""
        recipient = super().recipient_address(form)
        return to_provider(recipient) if recipient else ""

    def status_update(self, form: Mapping[str, str]) -> StatusUpdate | None:
        """A status callback (``read`` included); a 63016 failure closes the window and asks
        the core for one more send, which the channel makes with the template."""
        update = super().status_update(form)
        if update is None or update.error_code != str(OUTSIDE_WINDOW):
            return update
        recipient = self.recipient_address(form)
        if recipient:
            self._on_window_closed(recipient)
        return dataclasses.replace(
            update,
            error_reason=f"{update.error_reason}; sent again as an approved template, or skipped",
            retry_after=RESEND_AS_TEMPLATE_AFTER,
        )
