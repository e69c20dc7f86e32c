"""``TwilioSmsChannel``: SMS through Twilio's Programmable Messaging API.

Messages go out through the real ``twilio`` library's async client (one client per channel,
created in :meth:`TwilioSmsChannel.start` inside the running loop, reused for every send);
delivery reports and replies come back through :mod:`.webhooks`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, cast

from pydantic import Field, SecretStr, field_validator, model_validator

from gateway import (
    PHONE,
    ChannelCapabilities,
    ChannelContext,
    ChannelSettings,
    OutboundMessage,
    PermanentSendError,
    SendResult,
    WebhookHandler,
)
from gateway.sms import MAX_SMS_CHARACTERS, count_segments, smart_encode

from .messaging import TwilioMessagingChannel
from .webhooks import TwilioWebhooks

__all__ = ["SENDER_RATES", "SenderType", "TwilioSmsChannel", "TwilioSmsSettings"]

_SENDER = re.compile(r"^(\+[1-9]\d{6,14}|\d{3,8}|(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11})$")

SenderType = Literal["long_code", "toll_free", "short_code", "messaging_service"]

#: Default ``rate_per_second`` (SMS segments a second) by sender type: Twilio's documented
#: throughput of one sender in the US and Canada. A Messaging Service sends through a pool
#: whose throughput is the sum of its senders' (or the A2P 10DLC campaign's limit), which the
#: gateway cannot see: it assumes one long code, the slowest sender a pool can hold, so it
#: never overruns; set ``rate_per_second`` to the pool's real throughput.
SENDER_RATES: dict[str, float] = {
    "long_code": 1.0,
    "toll_free": 3.0,
    "short_code": 100.0,
    "messaging_service": 1.0,
}


class TwilioSmsSettings(ChannelSettings):
    """``channels.<name>`` keys of a ``twilio_sms`` channel."""

    plugin: str = "twilio_sms"
    account_sid: str = Field(pattern=r"^AC[0-9A-Za-z]+$", description="Twilio Account SID.")
    auth_token: SecretStr = Field(description="Twilio Auth Token (also signs webhooks).")
    from_number: str | None = Field(
        default=None, description="Sender: E.164 number, short code or alphanumeric ID."
    )
    messaging_service_sid: str | None = Field(
        default=None, pattern=r"^MG[0-9A-Za-z]+$",
        description="Send through this Messaging Service instead of one number.",
    )
    api_base_url: str = Field(
        default="https://api.twilio.com", description="Twilio REST API base URL."
    )
    status_callback: bool = Field(
        default=True, description="Ask Twilio for delivery reports at /webhooks/<name>/status."
    )
    price_per_segment: float = Field(default=0.0079, ge=0, description="For cost estimates.")
    smart_encoding: bool = Field(
        default=False, description="Replace curly quotes, dashes... by GSM-7 characters."
    )
    timeout: float = Field(default=15.0, gt=0, le=300, description="Seconds per API request.")
    sender_type: SenderType | None = Field(
        default=None,
        description="long_code, toll_free, short_code or messaging_service: sets the default "
        "rate_per_second (1, 3, 100 and 1 segments/s); with neither set, no limit.",
    )

    @field_validator("from_number")
    @classmethod
    def _check_sender(cls, value: str | None) -> str | None:
        if value is not None and not _SENDER.match(value):
            raise ValueError("must be an E.164 number (+18165550100), a short code or an "
                             "alphanumeric sender ID of up to 11 characters")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as https://api.twilio.com")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _exactly_one_sender(self) -> TwilioSmsSettings:
        if (self.from_number is None) == (self.messaging_service_sid is None):
            raise ValueError("set exactly one of from_number or messaging_service_sid")
        if self.sender_type is not None and (self.sender_type == "messaging_service") != (
            self.messaging_service_sid is not None
        ):
            raise ValueError(
                "sender_type messaging_service goes with messaging_service_sid, the other "
                "sender types with from_number"
            )
        return self


class TwilioSmsChannel(TwilioMessagingChannel):
    """SMS to phone endpoints through Twilio, with status callbacks and signed webhooks."""

    plugin: ClassVar[str] = "twilio_sms"
    address_kind = PHONE
    Settings: ClassVar[type[ChannelSettings]] = TwilioSmsSettings
    max_body_length: ClassVar[int | None] = MAX_SMS_CHARACTERS
    capabilities = ChannelCapabilities(max_length=MAX_SMS_CHARACTERS, markup="text")

    def __init__(self, name: str, settings: ChannelSettings, context: ChannelContext) -> None:
        super().__init__(name, settings, context)
        self.config = cast(TwilioSmsSettings, settings)
        self._webhooks = TwilioWebhooks(name, context, self.config.auth_token.get_secret_value())

    @property
    def rate_per_second(self) -> float | None:
        """``rate_per_second`` when set, else the default of ``sender_type``
        (:data:`SENDER_RATES`): SMS segments a second, all workers together. None (no limit:
        Twilio queues what exceeds the sender's throughput) when neither is set."""
        if self.config.rate_per_second:
            return self.config.rate_per_second
        if self.config.sender_type is not None:
            return SENDER_RATES[self.config.sender_type]
        return None

    # -- sending -----------------------------------------------------------------------

    def outgoing_body(self, body: str) -> str:
        """The text that is really sent: ``body``, smart-encoded when configured."""
        return smart_encode(body) if self.config.smart_encoding else body

    async def send(self, message: OutboundMessage) -> SendResult:
        """Create the message at Twilio; raises a SendError subclass on failure."""
        self._require_client()
        body = self.outgoing_body(message.body)
        if len(body) > MAX_SMS_CHARACTERS:
            raise PermanentSendError(
                f"message is {len(body)} characters; SMS allows at most {MAX_SMS_CHARACTERS}",
                code=21617,
            )
        if not body.strip():
            raise PermanentSendError("message body is empty", code=21602)
        params = self.sender_params(message.address)
        params["body"] = body
        created = await self.create_message(message, params)
        try:
            segments = int(created.num_segments) if created.num_segments else None
        except ValueError:
            segments = None
        return SendResult(
            provider_message_id=created.sid,
            status="queued",
            segments=segments or count_segments(body).segments,
        )

    def cost_units(self, message: OutboundMessage) -> int:
        """SMS segments: what Twilio bills and what per-sender throughput counts."""
        return count_segments(self.outgoing_body(message.body)).segments

    def preview_details(self, message: OutboundMessage) -> Mapping[str, Any]:
        """Segments, encoding, characters and estimated cost of ``message`` as it would go."""
        body = self.outgoing_body(message.body)
        info = count_segments(body)
        return {
            "segments": info.segments,
            "encoding": info.encoding,
            "characters": info.characters,
            "units": info.units,
            "estimated_cost": round(info.segments * self.config.price_per_segment, 6),
            "smart_encoded": body != message.body,
            "too_long": len(body) > MAX_SMS_CHARACTERS,
        }

    async def reconcile(
        self, message: OutboundMessage, provider_message_id: str | None
    ) -> str | None:
        """Twilio's current status for a message whose fate is unknown, mapped to the
        gateway's words (``queued``, ``sent``, ``delivered``, ``failed``...).

        With a SID the message is fetched; without one, recent messages to the address
        (from our sender) are listed and one with the same body created within
        :attr:`reconcile_window` is taken. None when Twilio has no such message or cannot be
        asked.
        """
        texts = {self.outgoing_body(message.body)}
        return await self.find_status(message, provider_message_id, to=message.address, texts=texts)

    # -- webhooks ----------------------------------------------------------------------

    def webhooks(self) -> Mapping[str, WebhookHandler]:
        """``inbound`` (incoming SMS) and ``status`` (delivery reports)."""
        return self._webhooks.handlers()
