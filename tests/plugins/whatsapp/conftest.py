"""Fixtures for the whatsapp channel tests: the local Twilio server with its WhatsApp sender,
a channel pointed at it, and the channel's webhooks mounted like the core mounts them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from gateway_plugins.whatsapp import WhatsAppChannel
from whatsapp_support import PUBLIC_BASE_URL, SENDER, ChannelFactory

from gateway.testing import FakeChannelContext
from gateway.testing.channels import channel_factory, mounted_webhooks
from gateway.testing.twilio_server import FakeTwilioServer


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilioServer]:
    server = await FakeTwilioServer().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def context() -> FakeChannelContext:
    return FakeChannelContext(name="whatsapp", public_base_url=PUBLIC_BASE_URL)


@pytest.fixture
async def make_channel(
    twilio: FakeTwilioServer, context: FakeChannelContext
) -> AsyncIterator[ChannelFactory]:
    """Build and start a channel against the fake server; ``overrides`` are settings keys."""
    defaults = {
        "plugin": "whatsapp",
        "account_sid": twilio.account_sid,
        "auth_token": twilio.auth_token,
        "from_number": "whatsapp:" + SENDER,
        "api_base_url": twilio.url,
        "timeout": 2.0,
    }
    async with channel_factory(WhatsAppChannel, "whatsapp", context, defaults) as factory:
        yield factory


@pytest.fixture
async def mount() -> AsyncIterator[Any]:
    """``await mount(channel)`` → an aiohttp test client with the channel's webhooks."""
    async with AsyncExitStack() as stack:

        async def mounter(channel: WhatsAppChannel) -> TestClient:
            return await stack.enter_async_context(mounted_webhooks(channel))

        yield mounter
