"""The channel conformance suite (gateway.testing.conformance) run by every built-in channel
against its own local provider: sandbox, twilio_sms, smtp_email, telegram and whatsapp.

A case a channel's protocol has no room for (SMS has no buttons, IMAP no signature, the sandbox
no provider) is declared in NOT_APPLICABLE; the suite checks the channel agrees, both ways."""

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

from gateway import (
    Channel,
    ChannelSettings,
    DeliveryUnknownError,
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    SendResult,
)
from gateway.testing.conformance import (
    ALL_CASES,
    ChannelAdapter,
    ConformanceContext,
    case_id,
    check_case,
    run_case,
)
from gateway.testing.smtp_server import RecordingSmtpServer
from gateway.testing.telegram_server import TelegramBotAPIServer
from gateway.testing.twilio_server import FakeTwilioServer

CHANNELS = ["sandbox", "twilio_sms", "smtp_email", "telegram", "whatsapp"]
#: The cases each channel's protocol has no room for — and only these.
NOT_APPLICABLE: dict[str, frozenset[str]] = {
    # No provider (every message is accepted) and no inbound path of its own (replies are
    # injected by the core: `gateway sandbox reply`).
    "sandbox": frozenset(
        {
            "throttled_with_retry_after",
            "permanent_failure_with_endpoint_state",
            "unknown_outcome_then_reconcile",
            "reply",
            "button",
            "duplicate",
            "bad_signature",
            "opt_out",
        }
    ),
    "twilio_sms": frozenset({"button"}),  # choices are numbered in the text
    "smtp_email": frozenset({"button", "bad_signature"}),  # IMAP: an authenticated login, no request
    "telegram": frozenset(),
    "whatsapp": frozenset(),
}


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
async def test_channel_conformance(adapter: ChannelAdapter, case, request: pytest.FixtureRequest) -> None:
    await check_case(adapter, case, NOT_APPLICABLE[request.node.callspec.params["adapter"]])


# -- the suite catches channels that break the contract ----------------------------------------


class _Provider:
    """An in-memory provider: a list of accepted texts and the next scripted trouble."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.trouble: str | None = None


class _CarelessChannel(Channel):
    """A channel with one contract violation, chosen by ``flaw``."""

    plugin = "careless"
    endpoint_kind = "phone"

    def __init__(self, provider: _Provider, flaw: str, context: ConformanceContext) -> None:
        super().__init__("careless", ChannelSettings(plugin="careless"), context)
        self.provider = provider
        self.flaw = flaw

    async def send(self, message: OutboundMessage) -> SendResult:
        trouble, self.provider.trouble = self.provider.trouble, None
        if trouble == "throttle":
            if self.flaw == "retries_itself":  # sends again at once instead of telling the outbox
                self.provider.texts.append(message.body)
                return SendResult(provider_message_id="careless-1")
            raise RetryableSendError("too many requests", retry_after=7.0)
        if trouble == "refuse":
            if self.flaw == "refusal_is_retryable":
                raise RetryableSendError("recipient refused")
            raise PermanentSendError("recipient refused", endpoint_state="invalid")
        if trouble == "lose":
            self.provider.texts.append(message.body)
            raise DeliveryUnknownError("no answer")
        self.provider.texts.append(message.body)
        return SendResult(provider_message_id="careless-1")

    async def reconcile(self, message: OutboundMessage, provider_message_id: str | None) -> str | None:
        if self.flaw == "resends_to_reconcile":
            self.provider.texts.append(message.body)
            return "sent"
        return "sent" if message.body in self.provider.texts else None


class _CarelessAdapter(ChannelAdapter):
    address = "+18165550199"

    def __init__(self, flaw: str) -> None:
        self.context = ConformanceContext(name="careless")
        self.provider = _Provider()
        self._channel = _CarelessChannel(self.provider, flaw, self.context)

    async def channel(self) -> Channel:
        return self._channel

    async def provider_texts(self) -> list[str]:
        return list(self.provider.texts)

    async def throttle_next(self, retry_after: float) -> None:
        self.provider.trouble = "throttle"

    async def refuse_recipient(self) -> None:
        self.provider.trouble = "refuse"

    async def lose_next_answer(self) -> None:
        self.provider.trouble = "lose"


@pytest.mark.parametrize(
    ("flaw", "case_name"),
    [
        ("retries_itself", "throttled_with_retry_after"),
        ("refusal_is_retryable", "permanent_failure_with_endpoint_state"),
        ("resends_to_reconcile", "unknown_outcome_then_reconcile"),
    ],
)
async def test_the_suite_fails_a_channel_that_breaks_the_contract(flaw: str, case_name: str) -> None:
    case = next(c for c in ALL_CASES if c.id == case_name)
    await run_case(_CarelessAdapter(flaw="none"), case)  # the honest channel passes
    with pytest.raises(AssertionError):
        await run_case(_CarelessAdapter(flaw), case)


async def test_not_applicable_is_held_to_the_declared_list_both_ways() -> None:
    button = next(c for c in ALL_CASES if c.id == "button")
    success = next(c for c in ALL_CASES if c.id == "success")
    # The careless adapter has no buttons (the base adapter's NotApplicable): declared, it passes
    # with the reason; undeclared, it fails instead of being skipped.
    assert await check_case(_CarelessAdapter("none"), button, {"button"}) == "the channel has no buttons"
    with pytest.raises(AssertionError, match="declare it not applicable"):
        await check_case(_CarelessAdapter("none"), button)
    # A case declared not applicable that runs fails too: the list cannot go stale.
    assert await check_case(_CarelessAdapter("none"), success) is None
    with pytest.raises(AssertionError, match="declared not applicable, yet it ran"):
        await check_case(_CarelessAdapter("none"), success, {"success"})
