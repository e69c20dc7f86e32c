"""The ``twilio_sms`` channel plugin: SMS over Twilio with status callbacks and signed webhooks.

Config: ``{plugin: twilio_sms, account_sid, auth_token, from_number | messaging_service_sid}``;
see :class:`TwilioSmsSettings` for the rest.
"""

from __future__ import annotations

from gateway import hookimpl

from .channel import TwilioSmsChannel, TwilioSmsSettings

__all__ = ["TwilioSmsChannel", "TwilioSmsSettings", "gateway_channel_types"]

#: The plugin contract this plugin is written against (gateway.contract).
GATEWAY_CONTRACT = "2"


@hookimpl
def gateway_channel_types() -> list[type]:
    """The channel types this plugin provides."""
    return [TwilioSmsChannel]
