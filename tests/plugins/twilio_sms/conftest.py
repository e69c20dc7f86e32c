"""Fixtures for the twilio_sms channel tests: a fake Twilio, a channel, mounted webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient
from gateway_plugins.twilio_sms import TwilioSmsChannel
from twilio_sms_support import FROM_NUMBER, PUBLIC_BASE_URL, ChannelFactory, RecordingContext

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
def context() -> RecordingContext:
    return RecordingContext(name="sms", public_base_url=PUBLIC_BASE_URL)


@pytest.fixture
async def make_channel(
    twilio: FakeTwilioServer, context: RecordingContext
) -> AsyncIterator[ChannelFactory]:
    """Build and start a channel against the fake server; ``overrides`` are settings keys."""
    defaults = {
        "plugin": "twilio_sms",
        "account_sid": twilio.account_sid,
        "auth_token": twilio.auth_token,
        "from_number": FROM_NUMBER,
        "api_base_url": twilio.url,
        "timeout": 2.0,
    }
    async with channel_factory(TwilioSmsChannel, "sms", context, defaults) as factory:
        yield factory


@pytest.fixture
async def webhook_client(
    make_channel: ChannelFactory,
) -> AsyncIterator[TestClient]:
    """The channel's webhooks mounted like the core does, behind an aiohttp test client."""
    async with mounted_webhooks(await make_channel()) as client:
        yield client
