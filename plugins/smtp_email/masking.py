"""Masking of e-mail addresses for log lines (never log an address in full)."""

from __future__ import annotations

__all__ = ["mask_address"]


def mask_address(address: str | None) -> str:
    """``amina.yusuf@example.com`` → ``a***@example.com``; anything else → ``***``."""
    if not address or "@" not in address:
        return "***"
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"
