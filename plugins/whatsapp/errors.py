"""WhatsApp's Twilio error codes (63xxx, and the Content API's 216xx) on top of the SMS table.

One table, like :mod:`gateway_plugins.twilio_sms.errors`: what a code means, whether it passes,
and what it says about the recipient. Error 63016 (outside the 24-hour window) is not a
failure to retry: the channel answers it by sending the approved template instead.
"""

from __future__ import annotations

from gateway_plugins.twilio_sms.errors import TwilioErrorRule, describe_error_code

__all__ = [
    "NO_TEMPLATE_CODE",
    "OUTSIDE_WINDOW",
    "WHATSAPP_ERRORS",
    "describe_whatsapp_error",
]

OUTSIDE_WINDOW = 63016
"""Twilio: a free-form message outside the 24-hour customer-service window."""

NO_TEMPLATE_CODE = "whatsapp-no-template"
"""The gateway's own code for "outside the window and no approved template": a skip that
lets the outbox fall back to the guardian's next channel."""

#: Twilio error codes (https://www.twilio.com/docs/api/errors) of WhatsApp senders.
WHATSAPP_ERRORS: dict[int, TwilioErrorRule] = {
    21655: TwilioErrorRule(
        "the ContentSid is not valid",
        alert="check the content_sid values under templates / quick_replies in this "
        "channel's settings against the Content Template Builder",
    ),
    21656: TwilioErrorRule(
        "the ContentVariables do not fit the template",
        alert="check the variables of this channel's templates against the Content Template "
        "Builder (names and count)",
    ),
    63003: TwilioErrorRule("the number is not on WhatsApp", endpoint_state="invalid"),
    63007: TwilioErrorRule(
        "no WhatsApp sender with this From address",
        alert="set from_number to the WhatsApp-enabled sender of the Twilio account "
        "(Messaging > Senders > WhatsApp senders)",
    ),
    63015: TwilioErrorRule("the WhatsApp sandbox only sends to numbers that joined it"),
    OUTSIDE_WINDOW: TwilioErrorRule(
        "outside WhatsApp's 24-hour customer-service window: only approved templates may go"
    ),
    63018: TwilioErrorRule("WhatsApp rate limit exceeded for this sender", retryable=True),
    63024: TwilioErrorRule("invalid WhatsApp recipient", endpoint_state="invalid"),
    63049: TwilioErrorRule("Meta chose not to deliver this WhatsApp message"),
}


def describe_whatsapp_error(code: int | str | None) -> TwilioErrorRule | None:
    """The rule for a WhatsApp or general Twilio error code; None when unknown."""
    if code is None or code == "":
        return None
    try:
        rule = WHATSAPP_ERRORS.get(int(code))
    except (TypeError, ValueError):
        return None
    return rule if rule is not None else describe_error_code(code)
