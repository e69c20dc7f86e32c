"""The channel conformance suite (gateway.testing.conformance) run by every built-in channel
against its own local provider: sandbox, twilio_sms, smtp_email, telegram and whatsapp.

A case a channel's protocol has no room for is skipped with the reason (SMS has no buttons,
IMAP no signature, the sandbox no provider)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conformance_adapters import (
    EmailAdapter,
    SandboxAdapter,
    TelegramAdapter,
    TwilioSmsAdapter,
    WhatsAppAdapter,
)

from gateway.testing.conformance import ALL_CASES, ChannelAdapter, case_id, run_case_or_skip
from gateway.testing.smtp_server import RecordingSmtpServer
from gateway.testing.telegram_server import TelegramBotAPIServer
from gateway.testing.twilio_server import FakeTwilioServer

CHANNELS = ["sandbox", "twilio_sms", "smtp_email", "telegram", "whatsapp"]


@pytest.fixture
async def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChannelAdapter]:
    """The adapter of the channel named by the test's parameter, with its provider running."""
    plugin = request.param
    if plugin == "sandbox":
        sandbox = SandboxAdapter(tmp_path)
        yield sandbox
        await sandbox.close()
    elif plugin in ("twilio_sms", "whatsapp"):
        twilio = await FakeTwilioServer().start()
        adapter = TwilioSmsAdapter(twilio) if plugin == "twilio_sms" else WhatsAppAdapter(twilio)
        try:
            yield adapter
        finally:
            await adapter.close()
            await twilio.stop()
    elif plugin == "telegram":
        async with TelegramBotAPIServer() as server:
            telegram = TelegramAdapter(server)
            try:
                yield telegram
            finally:
                await telegram.close()
    else:
        with RecordingSmtpServer() as smtp:
            email = EmailAdapter(smtp, tmp_path)
            try:
                yield email
            finally:
                await email.close()


@pytest.mark.parametrize("adapter", CHANNELS, indirect=True)
@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
async def test_channel_conformance(adapter: ChannelAdapter, case) -> None:
    await run_case_or_skip(adapter, case)
