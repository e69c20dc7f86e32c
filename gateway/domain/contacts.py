"""Contact addresses: phone numbers to E.164, e-mail addresses, Telegram chat ids. (Masking them
for logs: :func:`gateway.privacy.mask_address`.)"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterator

import phonenumbers

__all__ = ["current_region", "normalize_email", "normalize_phone", "normalize_telegram", "phone_region"]

_REGION: contextvars.ContextVar[str] = contextvars.ContextVar("gateway_phone_region", default="US")


def current_region() -> str:
    """The region national phone numbers are read in when none is given: ``families.default_region``
    while a families CSV is imported (:func:`phone_region`), ``US`` otherwise."""
    return _REGION.get()


@contextlib.contextmanager
def phone_region(region: str | None) -> Iterator[None]:
    """Read national phone numbers in ``region`` inside the block (None: leave it as it is)."""
    if region is None:
        yield
        return
    token = _REGION.set(region)
    try:
        yield
    finally:
        _REGION.reset(token)

_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")


def normalize_phone(value: str, region: str | None = None) -> str:
    """E.164 form of a phone number (national numbers read in ``region``, by default
    :func:`current_region`); ValueError with the reason when it is not a valid number."""
    region = region or current_region()
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
