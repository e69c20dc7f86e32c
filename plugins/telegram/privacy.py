"""Masking of identifiers before they reach a log line."""

from __future__ import annotations

__all__ = ["mask_chat_id"]


def mask_chat_id(chat_id: int | str) -> str:
    """``123456789`` → ``12*****89``: enough to correlate log lines, not to identify a family."""
    text = str(chat_id)
    if len(text) <= 4:
        return "*" * len(text)
    return text[:2] + "*" * (len(text) - 4) + text[-2:]
