"""Logging setup: console or JSON lines, and no personal data at any level, DEBUG included.

* Every record of every logger is scrubbed as it is created (:func:`gateway.privacy.scrub` on
  its message, arguments, traceback and stack): e-mail addresses and phone numbers masked,
  secrets removed. The gateway's own code masks addresses itself and never logs a body.
* Libraries that would echo personal data at DEBUG are held at WARNING whatever
  ``logging.level`` says: the SQL drivers (aiosqlite logs each statement with its parameters;
  SQLAlchemy at DEBUG logs result rows), the IMAP and SMTP clients (their protocol traces carry
  addresses and message text), the Twilio client and aiogram (request bodies and bot URLs).
  ``database.echo`` lets SQLAlchemy log statements at INFO, never their parameters
  (the engine is built with ``hide_parameters=True``) nor rows.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Callable
from typing import Any

from gateway.privacy import scrub

__all__ = ["QUIET_LOGGERS", "configure_logging", "install_scrubbing"]

#: Third-party loggers that echo request or row data below WARNING.
QUIET_LOGGERS = (
    "aiosqlite",
    "asyncpg",
    "psycopg",
    "psycopg.pool",
    "sqlalchemy.engine",
    "sqlalchemy.pool",
    "sqlalchemy.orm",
    "aioimaplib",
    "imap_tools",
    "aiosmtplib",
    "mail.log",
    "twilio",
    "aiogram",
    "aiohttp.access",
    "aiohttp.client",
    "aiohttp.server",
    "aiohttp.web",
    "apscheduler",
    "urllib3",
    "httpx",
    "httpcore",
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text or record.exc_info:
            data["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(data, ensure_ascii=False)


def _scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except Exception:  # malformed arguments: logging reports those itself when emitting
        return record
    record.msg = scrub(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = scrub("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    elif record.exc_text:
        record.exc_text = scrub(record.exc_text)
    # Handlers can no longer format the raw exception (its message may quote an address).
    record.exc_info = None
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
    return record


_installed: Callable[..., logging.LogRecord] | None = None


def install_scrubbing() -> None:
    """Scrub every log record of the process as it is created (idempotent)."""
    global _installed
    current = logging.getLogRecordFactory()
    if _installed is not None and current is _installed:
        return
    base = current

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _scrub_record(base(*args, **kwargs))

    _installed = factory
    logging.setLogRecordFactory(factory)


def configure_logging(config: Any, *, sql_echo: bool = False) -> None:
    """Apply ``logging.level`` and ``logging.format``; scrub every record; hold chatty
    libraries at WARNING (SQLAlchemy's statements at INFO when ``sql_echo``)."""
    install_scrubbing()
    handler = logging.StreamHandler(sys.stderr)
    if config.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    if sql_echo:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
