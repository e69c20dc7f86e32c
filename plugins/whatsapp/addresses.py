"""WhatsApp addresses: ``whatsapp:+E164``, as Twilio's WhatsApp sender writes ``To`` and ``From``.

The address kind is declared here as plain data and functions (:data:`KIND`,
:data:`DEFAULTS_FROM`, :func:`normalise`, :func:`mask`) so the core can register it as an
address kind of its own. A guardian without a ``whatsapp`` address is reached on their phone
number (``defaults_from``): the core hands the channel that number as ``whatsapp:+E164`` and
finds the family of a ``whatsapp:+E164`` sender through :func:`to_default`. :func:`to_provider`
and :func:`endpoint_form` convert between the two forms (inbound messages stored before the
kind existed are under the bare ``+E164``).
"""

from __future__ import annotations

import phonenumbers

from gateway import mask_address

__all__ = [
    "DEFAULTS_FROM",
    "KIND",
    "LABEL",
    "PREFIX",
    "address_kind_fields",
    "endpoint_form",
    "mask",
    "normalise",
    "to_default",
    "to_provider",
]

KIND = "whatsapp"
"""The address kind's name (a families CSV column ``address:whatsapp``)."""

DEFAULTS_FROM = "phone"
"""A guardian without a WhatsApp address of their own is reached on their phone number."""

PREFIX = "whatsapp:"

LABEL = "WhatsApp"
"""How staff read the kind's name."""


def normalise(value: str, region: str = "US") -> str:
    """``whatsapp:+E164`` for a WhatsApp address written as ``whatsapp:+1 816 555 0100``,
    ``+18165550100`` or a national number of ``region``; ValueError naming the reason."""
    text = value.strip()
    if text.lower().startswith(PREFIX):
        text = text[len(PREFIX):].strip()
    if not text:
        raise ValueError("a WhatsApp address needs a phone number")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number ({exc.args[0] if exc.args else exc})") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"not a valid phone number for region {region}")
    return PREFIX + phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask(address: str) -> str:
    """The address as logs and staff lists may show it: ``whatsapp:+1******0100``."""
    if address.lower().startswith(PREFIX):
        return PREFIX + mask_address(address[len(PREFIX):])
    return mask_address(address)


def to_provider(address: str) -> str:
    """The ``To`` Twilio expects for an endpoint address in either form (``+E164`` of a
    ``phone`` endpoint, or ``whatsapp:+E164``)."""
    text = address.strip()
    if text.lower().startswith(PREFIX):
        return PREFIX + text[len(PREFIX):].strip()
    return PREFIX + text


def endpoint_form(provider_address: str, kind: str) -> str:
    """A ``From`` / ``To`` of Twilio (``whatsapp:+E164``) in the form endpoints of ``kind``
    store: the bare E.164 number for ``phone``, unchanged for ``whatsapp``."""
    text = provider_address.strip()
    if kind == DEFAULTS_FROM and text.lower().startswith(PREFIX):
        return text[len(PREFIX):]
    return text


def to_default(address: str) -> str:
    """A ``whatsapp:+E164`` sender in the form of the kind it defaults from (``+E164``), so a
    reply finds the family by its phone endpoint."""
    return endpoint_form(address, DEFAULTS_FROM)


def address_kind_fields() -> dict[str, object]:
    """The declaration of the ``whatsapp`` address kind as keyword arguments for the core's
    address-kind type (name, normalise, mask, defaults_from, to_default, variant, label)."""
    return {
        "name": KIND,
        "normalise": normalise,
        "mask": mask,
        "defaults_from": DEFAULTS_FROM,
        "to_default": to_default,
        "variant": "sms",
        "label": LABEL,
    }
