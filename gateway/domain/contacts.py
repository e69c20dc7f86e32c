"""Contact addresses: phone numbers to E.164, e-mail addresses, Telegram chat ids. (Masking them
for logs: :func:`gateway.privacy.mask_address`.)"""

from __future__ import annotations

import re

import phonenumbers

__all__ = ["normalize_email", "normalize_phone", "normalize_telegram"]

_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")


def normalize_phone(value: str, region: str) -> str:
    """E.164 form of a phone number; ValueError with the reason when it is not a valid number."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number ({exc.args[0] if exc.args else exc})") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"not a valid phone number for region {region}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(value: str) -> str:
    """A trimmed, lower-cased e-mail address; ValueError when malformed."""
    address = value.strip()
    if not _EMAIL.match(address) or len(address) > 320:
        raise ValueError("not a valid e-mail address")
    return address.lower()


def normalize_telegram(value: str) -> str:
    """A Telegram chat id (an integer, negative for groups) as text."""
    text = value.strip()
    if not re.fullmatch(r"-?\d{1,20}", text):
        raise ValueError("a Telegram chat id is a number")
    return text
