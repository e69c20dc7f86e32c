"""Shared constants and helpers of the twilio_sms tests (a unique module name on purpose)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from gateway_plugins.twilio_sms import TwilioSmsChannel

from gateway import InboundMessage, InboundOutcome
from gateway.testing import FakeChannelContext

PUBLIC_BASE_URL = "https://gateway.example.org"
FROM_NUMBER = "+18165550100"
SERVICE_SID = "MG" + "0" * 31 + "1"

ChannelFactory = Callable[..., Awaitable[TwilioSmsChannel]]
"""``await make_channel(**settings_overrides)`` → a started channel on the fake Twilio."""


class RecordingContext(FakeChannelContext):
    """FakeChannelContext that also keeps the outcome of every ``receive``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outcomes: list[InboundOutcome] = []

    async def receive(self, message: InboundMessage) -> InboundOutcome:
        outcome = await super().receive(message)
        self.outcomes.append(outcome)
        return outcome
