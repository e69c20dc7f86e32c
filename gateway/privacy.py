"""What may reach a log line: one masking function for addresses, one scrubbing function for text.

No full phone number, e-mail address, Telegram chat id or secret reaches a log, whatever the
level. Code that logs an address masks it with :func:`mask_address`; text the gateway does not
control (a provider's exception message, a server's answer, a traceback) goes through
:func:`scrub`, which masks every address-looking substring and removes secrets. Plugins use both
through the public API (``from gateway import mask_address, scrub``).

:func:`gateway.logs.configure_logging` applies :func:`scrub` to every log record of every logger
as it is created (message, arguments and traceback), as a net under the rule above; it cannot
recognise a message body, so bodies are simply never logged and the libraries that would echo
them (SQL drivers at DEBUG, the IMAP protocol trace) are kept quiet.

Secrets known from the configuration (tokens, passwords) are registered with
:func:`register_secret` when the gateway starts and removed wherever they appear; common secret
shapes (Telegram bot tokens, 32-hex tokens, ``Basic``/``Bearer`` credentials, passwords in URLs)
are removed without registration.
"""

from __future__ import annotations

import re
import threading

__all__ = ["mask_address", "register_secret", "scrub"]

SECRET = "[secret]"

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(
    r"(?<![\w+])\+\d[\d\s().-]{5,}\d(?!\w)"  # international: +1 913 555 0101, +19135550101
    r"|(?<![\w(])\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?![\w])"  # national: (913) 555-0101
    r"|(?<![\w.:/-])\d{9,15}(?![\w.:/-])"  # bare digits: 9135550101, Telegram chat ids
)
_SECRET_SHAPES = re.compile(
    r"(?:(?<=bot)|(?<![\w-]))\d{6,12}:[A-Za-z0-9_-]{30,}"  # Telegram bot token (bare or in /bot…/)
    r"|(?<![A-Za-z0-9])[0-9A-Fa-f]{32,}(?![A-Za-z0-9])"  # bare hex tokens (Twilio auth token)
)
_CREDENTIALS = re.compile(r"\b(Basic|Bearer|Token)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^\s/:@]+):[^\s/@]+@")
_KEY_VALUE = re.compile(
    r"((?:password|passwd|secret|token|api_key|apikey|auth_token)[\"']?\s*[=:]\s*[\"']?)[^\s\"',&}]+",
    re.IGNORECASE,
)

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_secret_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Remove ``value`` (a token or password from the configuration) from every scrubbed text.
    Values shorter than six characters are ignored (they would match ordinary words)."""
    global _secret_pattern
    if not value or len(value) < 6:
        return
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def mask_address(address: str | None) -> str:
    """An address as it may appear in a log: enough to tell two apart, not to reach anyone.

    ``maria.h@example.net`` → ``m***@example.net``; ``+19135550101`` → ``+1******0101``;
    ``5550001001`` (a chat id) → ``55****1001``; short values are starred whole; ``None`` → ``-``.
    """
    if not address:
        return "-"
    text = str(address)
    if "@" in text and not text.startswith("@"):
        local, _, domain = text.rpartition("@")
        return f"{local[:1]}***@{domain}"
    n = len(text)
    if n >= 10:
        head, tail = 2, 4
    elif n >= 7:
        head, tail = 1, 2
    else:
        return "*" * n
    return text[:head] + "*" * (n - head - tail) + text[-tail:]


def scrub(text: object) -> str:
    """``text`` with secrets removed and every e-mail address and phone-number-like run of
    digits masked (:func:`mask_address`). For text from outside the gateway: provider error
    messages, server answers, tracebacks."""
    out = str(text)
    pattern = _secret_pattern
    if pattern is not None:
        out = pattern.sub(SECRET, out)
    out = _SECRET_SHAPES.sub(SECRET, out)
    out = _CREDENTIALS.sub(lambda m: f"{m.group(1)} {SECRET}", out)
    out = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{SECRET}@", out)
    out = _KEY_VALUE.sub(lambda m: f"{m.group(1)}{SECRET}", out)
    out = _EMAIL.sub(lambda m: mask_address(m.group(0)), out)
    return _PHONE.sub(lambda m: mask_address(re.sub(r"[\s().-]", "", m.group(0))), out)
