"""What a family sends is made safe to store before anything else looks at it.

Every reply, whatever the channel, passes :func:`sanitize_inbound` at the inbound pipeline's
entry: NUL and the other C0 control characters are removed (tab and line feed kept; CR LF and
lone CR become LF), text that was not valid UTF-8 (lone surrogates in a ``str``) gets U+FFFD,
and the text is cut at ``inbound.max_text_chars``. A cut reply keeps its whole (cleaned) text in
its raw payload under :data:`FULL_TEXT_KEY`, which is also what flags it as truncated, so running
the function twice (a spooled reply replayed) changes nothing. Sender and provider id are cleaned
the same way and bounded by their columns; string values of the raw payload are cleaned too
(PostgreSQL refuses NUL in text and JSON) and values JSON cannot hold become strings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any

from gateway.channels import InboundMessage

__all__ = ["FULL_TEXT_KEY", "clean_text", "is_truncated", "sanitize_inbound"]

FULL_TEXT_KEY = "_gateway_full_text"
"""Raw-payload key holding the whole text of a reply whose ``text`` was cut."""
MAX_SENDER_CHARS = 320
MAX_PROVIDER_ID_CHARS = 200

_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_text(text: str) -> str:
    """``text`` with line ends unified, C0 controls but tab and line feed removed, and anything
    that was not valid UTF-8 replaced by U+FFFD."""
    if not text.isascii():
        # A lone surrogate (bytes that were not UTF-8, decoded with surrogateescape, or a
        # broken \\ud800 escape in JSON) cannot be stored; the round trip turns it into U+FFFD.
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", text)


def is_truncated(message: InboundMessage) -> bool:
    """Whether ``message`` went through :func:`sanitize_inbound` and was cut."""
    return FULL_TEXT_KEY in message.raw


def sanitize_inbound(message: InboundMessage, max_chars: int) -> InboundMessage:
    """The reply as the pipeline stores it (see the module doc); the same object when nothing
    changes."""
    text = clean_text(message.text)
    raw = _clean_value(dict(message.raw))
    if len(text) > max_chars:
        raw[FULL_TEXT_KEY] = text
        text = text[:max_chars]
    sender = clean_text(message.sender).strip()[:MAX_SENDER_CHARS]
    provider_id = clean_text(message.provider_message_id).strip()
    if len(provider_id) > MAX_PROVIDER_ID_CHARS:
        # Still one stable id per provider id (duplicates are recognised), within the column.
        provider_id = "sha256:" + hashlib.sha256(provider_id.encode()).hexdigest()
    changed = (
        text != message.text
        or sender != message.sender
        or provider_id != message.provider_message_id
        or raw != message.raw
    )
    if not changed:
        return message
    return dataclasses.replace(
        message,
        text=text,
        sender=sender,
        provider_message_id=provider_id,
        choice=clean_text(message.choice) if message.choice is not None else None,
        raw=raw,
    )


def _clean_value(value: Any) -> Any:
    """Strings cleaned, containers walked, anything JSON cannot hold turned into a string."""
    if isinstance(value, str):
        return clean_text(value) if not value.isprintable() or not value.isascii() else value
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_value(v) for v in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return clean_text(str(value))
