"""Fixtures for the Telegram plugin tests: a local Bot API server and channels pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from gateway_plugins.telegram import TelegramChannel

from gateway.testing import FakeChannelContext
from gateway.testing.channels import channel_factory
from gateway.testing.telegram_server import TelegramBotAPIServer
from gateway.testing.waiting import wait_for


@dataclass
class TranslatingContext(FakeChannelContext):
    """A fake context whose catalog marks every string with the language asked for."""

    gettext_calls: list[tuple[str, str]] = field(default_factory=list)

    def gettext(self, language: str, message: str, **params: Any) -> str:
        """``[xx] `` + the interpolated English msgid."""
        self.gettext_calls.append((language, message))
        return f"[{language}] " + (message % params if params else message)


ChannelFactory = Callable[..., Awaitable[TelegramChannel]]


@pytest.fixture
async def telegram_server() -> AsyncIterator[TelegramBotAPIServer]:
    """A running local Bot API server."""
    async with TelegramBotAPIServer() as server:
        yield server


@pytest.fixture
def context() -> TranslatingContext:
    """The core's side of the channel, recording everything handed back."""
    return TranslatingContext(name="telegram")


@pytest.fixture
async def make_channel(
    telegram_server: TelegramBotAPIServer, context: TranslatingContext
) -> AsyncIterator[ChannelFactory]:
    """Build and start a TelegramChannel against the local server; stopped after the test."""
    defaults = {
        "plugin": "telegram",
        "token": telegram_server.token,
        "api_base_url": telegram_server.base_url,
        "poll_timeout": 1,
    }
    async with channel_factory(TelegramChannel, "telegram", context, defaults) as factory:
        yield factory


async def _wait_until(predicate: Callable[[], Any], within: float = 30.0) -> None:
    await wait_for(predicate, deadline=within)


@pytest.fixture
def wait_until() -> Callable[..., Awaitable[None]]:
    """``await wait_until(predicate, within=5)``: poll until true, else fail the test."""
    return _wait_until
