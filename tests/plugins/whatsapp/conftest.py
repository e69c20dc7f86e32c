"""Fixtures for the whatsapp channel tests: the local Twilio server with its WhatsApp sender,
a channel pointed at it, and the channel's webhooks mounted like the core mounts them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from gateway_plugins.whatsapp import WhatsAppChannel, WhatsAppSettings
from whatsapp_support import PUBLIC_BASE_URL, SENDER, ChannelFactory

from gateway.testing import FakeChannelContext
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
    started: list[WhatsAppChannel] = []

    async def factory(**overrides: Any) -> WhatsAppChannel:
        values: dict[str, Any] = {
            "plugin": "whatsapp",
            "account_sid": twilio.account_sid,
            "auth_token": twilio.auth_token,
            "from_number": "whatsapp:" + SENDER,
            "api_base_url": twilio.url,
            "timeout": 2.0,
        }
        values.update(overrides)
        values = {key: value for key, value in values.items() if value is not None}
        channel = WhatsAppChannel("whatsapp", WhatsAppSettings.model_validate(values), context)
        await channel.start()
        started.append(channel)
        return channel

    yield factory
    for channel in started:
        await channel.stop()


@pytest.fixture
async def mount() -> AsyncIterator[Any]:
    """``await mount(channel)`` → an aiohttp test client with the channel's webhooks."""
    clients: list[TestClient] = []

    async def mounter(channel: WhatsAppChannel) -> TestClient:
        app = web.Application(client_max_size=1024 * 1024)
        for action, handler in channel.webhooks().items():
            app.router.add_post(f"/webhooks/{channel.name}/{action}", handler)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield mounter
    for client in clients:
        await client.close()
