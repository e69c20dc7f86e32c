"""Fixtures of the dispatch tests: a fresh PostgreSQL database and a timestamping Twilio."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from dispatch_support import TimedTwilioServer

from gateway.testing.harness import clone_pg_database, drop_pg_database


@pytest.fixture
async def pg_url(pg_template: str) -> AsyncIterator[str]:
    """A migrated PostgreSQL database of its own."""
    url = await clone_pg_database(pg_template, prefix="gwdispatch")
    try:
        yield url
    finally:
        await drop_pg_database(url)


@pytest.fixture
async def twilio() -> AsyncIterator[TimedTwilioServer]:
    """A local Twilio Messaging API that timestamps every request."""
    server = TimedTwilioServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
