"""Configuration keys of a Telegram channel (``channels.<name>`` with ``plugin: telegram``)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from gateway import ChannelSettings

__all__ = ["TelegramSettings"]

_WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_BOT_TOKEN = re.compile(r"\d+:\S+")


class TelegramSettings(ChannelSettings):
    """Settings of the ``telegram`` channel plugin."""

    token: SecretStr = Field(description="Bot token from @BotFather (`123456:ABC...`).")
    api_base_url: str = Field(
        default="https://api.telegram.org",
        description="Bot API server; point it at a local Bot API server or a test fake.",
    )
    mode: Literal["polling", "webhook"] = Field(
        default="polling", description="How updates arrive: long polling or an HTTPS webhook."
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Sent by Telegram in X-Telegram-Bot-Api-Secret-Token; required for webhooks.",
    )
    bot_username: str | None = Field(
        default=None, description="Bot username for deep links; read with getMe when unset."
    )
    poll_timeout: int = Field(
        default=30, ge=1, le=120, description="Long-polling wait of one getUpdates call (s)."
    )
    request_timeout: float = Field(
        default=30.0, gt=0, le=300, description="Timeout of one Bot API request when sending (s)."
    )

    @field_validator("token")
    @classmethod
    def _token_looks_like_a_bot_token(cls, token: SecretStr) -> SecretStr:
        # The shape aiogram checks (``<bot id>:<secret>``, no spaces), without importing aiogram.
        if not _BOT_TOKEN.fullmatch(token.get_secret_value()):
            # Never echo the token back in the error.
            raise ValueError("not a Telegram bot token (expected `<digits>:<secret>`)")
        return token

    @field_validator("api_base_url")
    @classmethod
    def _base_url_is_http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _webhook_mode_needs_a_secret(self) -> TelegramSettings:
        if self.mode == "webhook":
            if self.webhook_secret is None:
                raise ValueError("webhook_secret is required when mode is 'webhook'")
            if not _WEBHOOK_SECRET.match(self.webhook_secret.get_secret_value()):
                raise ValueError("webhook_secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return self
