"""The ``telegram`` channel plugin: a Telegram bot built on aiogram 3.

Configure it as ``channels.<name>: {plugin: telegram, token: ..., mode: polling|webhook,
webhook_secret: ...}``; in webhook mode the core mounts ``POST /webhooks/<name>/update``.
"""

from __future__ import annotations

from gateway import hookimpl

from .channel import TelegramChannel
from .settings import TelegramSettings

__all__ = ["TelegramChannel", "TelegramSettings", "gateway_channel_types"]

#: The plugin contract this plugin is written against (gateway.contract).
GATEWAY_CONTRACT = "2"


@hookimpl
def gateway_channel_types() -> list[type]:
    """The Telegram channel type."""
    return [TelegramChannel]
