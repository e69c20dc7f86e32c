"""Helpers shared by the smtp_email plugin tests (settings and outbox messages)."""

from __future__ import annotations

from typing import Any

from gateway_plugins.smtp_email import SmtpEmailSettings

from gateway import OutboundMessage
from gateway.testing.dovecot import DovecotServer

FROM_ADDRESS = "liaison@district.example"
REPLY_DOMAIN = "replies.district.example"


def settings_for(
    smtp_port: int,
    dovecot: DovecotServer | None = None,
    *,
    smtp: dict[str, Any] | None = None,
    imap: dict[str, Any] | None = None,
    **channel: Any,
) -> SmtpEmailSettings:
    """Validated settings the way the core builds them from config.yaml."""
    raw: dict[str, Any] = {
        "plugin": "smtp_email",
        "smtp": {
            "host": "127.0.0.1",
            "port": smtp_port,
            "starttls": False,
            "from_address": FROM_ADDRESS,
            "from_name": "Lincoln Elementary",
            "reply_domain": REPLY_DOMAIN,
            "timeout": 5,
            **(smtp or {}),
        },
        **channel,
    }
    if dovecot is not None:
        raw["imap"] = {
            "host": dovecot.host,
            "port": dovecot.port,
            "ssl": False,
            "username": dovecot.user,
            "password": dovecot.password,
            "poll_seconds": 0.5,
            "timeout": 5,
            **(imap or {}),
        }
    return SmtpEmailSettings.model_validate(raw)


def outbound(message_id: int = 1, **fields: Any) -> OutboundMessage:
    """An outbox message as the core hands it to the channel."""
    values: dict[str, Any] = {
        "message_id": message_id,
        "channel": "email",
        "address": "amina.yusuf@families.example",
        "language": "so",
        "subject": "Shirka waalidka",
        "body": "Fadlan ka jawaab 1 ama 2.",
        "html": '<html lang="so" dir="ltr"><body><p>Fadlan ka jawaab 1 ama 2.</p></body></html>',
        "reply_token": "tok123",
        "unsubscribe_url": "https://gateway.example.org/u/tok123",
    }
    values.update(fields)
    return OutboundMessage(**values)
