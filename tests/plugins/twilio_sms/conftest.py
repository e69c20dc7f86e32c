"""Fixtures for the twilio_sms channel tests: a fake Twilio, a channel, mounted webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from gateway_plugins.twilio_sms import TwilioSmsChannel, TwilioSmsSettings
from twilio_sms_support import FROM_NUMBER, PUBLIC_BASE_URL, ChannelFactory, RecordingContext

from gateway.testing.twilio_server import FakeTwilioServer


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilioServer]:
    server = await FakeTwilioServer().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def context() -> RecordingContext:
    return RecordingContext(name="sms", public_base_url=PUBLIC_BASE_URL)


@pytest.fixture
async def make_channel(
    twilio: FakeTwilioServer, context: RecordingContext
) -> AsyncIterator[ChannelFactory]:
    """Build and start a channel against the fake server; ``overrides`` are settings keys."""
    started: list[TwilioSmsChannel] = []

    async def factory(**overrides: Any) -> TwilioSmsChannel:
        values: dict[str, Any] = {
            "plugin": "twilio_sms",
            "account_sid": twilio.account_sid,
            "auth_token": twilio.auth_token,
            "from_number": FROM_NUMBER,
            "api_base_url": twilio.url,
            "timeout": 2.0,
        }
        values.update(overrides)
        values = {key: value for key, value in values.items() if value is not None}
        channel = TwilioSmsChannel("sms", TwilioSmsSettings(**values), context)
        await channel.start()
        started.append(channel)
        return channel

    yield factory
    for channel in started:
        await channel.stop()


@pytest.fixture
async def webhook_client(
    make_channel: ChannelFactory,
) -> AsyncIterator[TestClient]:
    """The channel's webhooks mounted like the core does, behind an aiohttp test client."""
    channel = await make_channel()
    app = web.Application(client_max_size=1024 * 1024)
    for action, handler in channel.webhooks().items():
        app.router.add_post(f"/webhooks/{channel.name}/{action}", handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
