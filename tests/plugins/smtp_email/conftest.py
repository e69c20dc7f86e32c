"""Fixtures for the smtp_email plugin tests: a recording SMTP server, a real Dovecot, a channel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from email_helpers import settings_for
from gateway_plugins.smtp_email import SmtpEmailChannel

from gateway.testing import FakeChannelContext
from gateway.testing.dovecot import DovecotServer
from gateway.testing.smtp_server import RecordingSmtpServer


@pytest.fixture
def smtp_server() -> Iterator[RecordingSmtpServer]:
    """A started RecordingSmtpServer."""
    with RecordingSmtpServer() as server:
        yield server


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[DovecotServer]:
    """A started throwaway Dovecot with one mailbox user."""
    with DovecotServer(tmp_path) as server:
        yield server


@pytest.fixture
def context() -> FakeChannelContext:
    """Records what the channel hands back to the core."""
    return FakeChannelContext(name="email")


ChannelFactory = Callable[..., SmtpEmailChannel]


@pytest.fixture
async def make_channel(
    smtp_server: RecordingSmtpServer, context: FakeChannelContext
) -> AsyncIterator[ChannelFactory]:
    """Build (and afterwards stop) channels against the recording SMTP server."""
    built: list[SmtpEmailChannel] = []

    def factory(dovecot: DovecotServer | None = None, **overrides: Any) -> SmtpEmailChannel:
        channel = SmtpEmailChannel(
            "email", settings_for(smtp_server.port, dovecot, **overrides), context
        )
        built.append(channel)
        return channel

    yield factory
    for channel in built:
        await channel.stop()
