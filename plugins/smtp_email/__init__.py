"""The ``smtp_email`` channel plugin: e-mail out over SMTP, replies and bounces in over IMAP."""

from __future__ import annotations

from gateway import hookimpl

from .channel import SmtpEmailChannel
from .settings import ImapSettings, SmtpEmailSettings, SmtpSettings

__all__ = [
    "ImapSettings",
    "SmtpEmailChannel",
    "SmtpEmailSettings",
    "SmtpSettings",
    "gateway_channel_types",
]

#: The plugin contract this plugin is written against (gateway.contract).
GATEWAY_CONTRACT = "2"


@hookimpl
def gateway_channel_types() -> list[type]:
    """The channel classes this plugin provides."""
    return [SmtpEmailChannel]
