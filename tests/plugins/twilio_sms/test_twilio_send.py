"""Outgoing SMS through the real twilio client to the local Twilio-protocol server.

One harness runs a table of cases: a message and the provider's scripted behaviour → the form
fields Twilio receives and the SendResult, or the SendError the outbox gets.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from gateway_plugins.twilio_sms import TwilioSmsChannel, TwilioSmsSettings
from pydantic import ValidationError
from twilio_sms_support import FROM_NUMBER, PUBLIC_BASE_URL, SERVICE_SID, ChannelFactory

from gateway import (
    PHONE,
    ConfigError,
    DeliveryUnknownError,
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    SendError,
)
from gateway.testing import FakeChannelContext, free_port
from gateway.testing.twilio_server import FakeTwilioServer

TO = "+18165550199"
CALLBACK = f"{PUBLIC_BASE_URL}/webhooks/sms/status"


def message(body: str = "Hello from Lincoln Elementary", to: str = TO) -> OutboundMessage:
    return OutboundMessage(message_id=7, channel="sms", address=to, language="en", body=body)


@dataclass
class OutgoingCase:
    """One row: what is sent, how the provider behaves, what must come out."""

    id: str
    body: str = "Hello from Lincoln Elementary"
    to: str = TO
    settings: dict[str, Any] = field(default_factory=dict)
    script: Callable[[FakeTwilioServer], None] | None = None
    # success expectations
    form: dict[str, str | None] = field(default_factory=dict)
    segments: int | None = None
    # failure expectations
    error: type[SendError] | None = None
    code: str | None = None
    endpoint_state: str | None = None
    retry_after: float | None = None
    reason_contains: str | None = None
    requests: int = 1


OUTGOING_CASES = [
    OutgoingCase(
        "from_number",
        form={"To": TO, "From": FROM_NUMBER, "Body": "Hello from Lincoln Elementary",
              "StatusCallback": CALLBACK, "MessagingServiceSid": None},
        segments=1,
    ),
    OutgoingCase(
        "messaging_service",
        settings={"from_number": None, "messaging_service_sid": SERVICE_SID},
        form={"To": TO, "MessagingServiceSid": SERVICE_SID, "From": None,
              "StatusCallback": CALLBACK},
        segments=1,
    ),
    OutgoingCase("no_status_callback", settings={"status_callback": False},
                 form={"StatusCallback": None, "From": FROM_NUMBER}),
    OutgoingCase("smart_encoding", body="“Picture Day” — Monday…",
                 settings={"smart_encoding": True},
                 form={"Body": '"Picture Day" - Monday...'}, segments=1),
    OutgoingCase("smart_encoding_off_sends_text_as_is", body="“Picture Day”",
                 form={"Body": "“Picture Day”"}),
    OutgoingCase("gsm7_two_segments", body="a" * 161, segments=2),
    OutgoingCase("spanish_ucs2_two_segments", body="¿Vendrá mañana? " * 5, segments=2),
    OutgoingCase("unicode_body_intact", body="学校明天放假 🎒", form={"Body": "学校明天放假 🎒"}),
    # --- throttling and server errors: retryable ---
    OutgoingCase("http_429_code_20429",
                 script=lambda s: s.fail_next(429, 20429, retry_after=2),
                 error=RetryableSendError, code="20429", retry_after=2.0),
    OutgoingCase("http_429_without_retry_after",
                 script=lambda s: s.fail_next(429, 20429),
                 error=RetryableSendError, code="20429", retry_after=None),
    OutgoingCase("http_500", script=lambda s: s.fail_next(500),
                 error=RetryableSendError, code="500"),
    OutgoingCase("http_503_with_retry_after",
                 script=lambda s: s.fail_next(503, 20503, retry_after=30),
                 error=RetryableSendError, code="20503", retry_after=30.0),
    OutgoingCase("queue_full_21611", script=lambda s: s.fail_next(400, 21611),
                 error=RetryableSendError, code="21611"),
    # --- permanent ---
    OutgoingCase("invalid_to_21211", to="+1555",
                 error=PermanentSendError, code="21211", endpoint_state="invalid",
                 reason_contains="invalid 'To'"),
    OutgoingCase("unsubscribed_21610", script=lambda s: s.fail_for(TO, 400, 21610),
                 error=PermanentSendError, code="21610", endpoint_state="opted_out"),
    OutgoingCase("region_not_enabled_21408", script=lambda s: s.fail_for(TO, 400, 21408),
                 error=PermanentSendError, code="21408", reason_contains="region"),
    OutgoingCase("not_reachable_21612", script=lambda s: s.fail_for(TO, 400, 21612),
                 error=PermanentSendError, code="21612", reason_contains="not currently"),
    OutgoingCase("not_mobile_21614", script=lambda s: s.fail_for(TO, 400, 21614),
                 error=PermanentSendError, code="21614", endpoint_state="invalid"),
    OutgoingCase("too_long_at_twilio_21617", script=lambda s: s.fail_for(TO, 400, 21617),
                 error=PermanentSendError, code="21617"),
    OutgoingCase("carrier_filtered_30007", script=lambda s: s.fail_for(TO, 400, 30007),
                 error=PermanentSendError, code="30007", reason_contains="filtered"),
    OutgoingCase("unknown_4xx_code_masks_numbers",
                 script=lambda s: s.fail_for(TO, 400, 21999,
                                             message=f"Something odd about {TO}"),
                 error=PermanentSendError, code="21999", reason_contains="+1******0199"),
    OutgoingCase("wrong_auth_token_20003", settings={"auth_token": "not-the-token"},
                 error=PermanentSendError, code="20003", reason_contains="authentication"),
    # --- network ---
    OutgoingCase("timeout_after_request_sent", settings={"timeout": 1.0},
                 script=lambda s: s.hang_next(5), error=DeliveryUnknownError, code="timeout"),
    OutgoingCase("connection_dropped_after_request_sent",
                 script=lambda s: s.disconnect_next(),
                 error=DeliveryUnknownError, code="connection"),
    OutgoingCase("connection_refused_before_sending",
                 settings={"api_base_url": "__refused__"},
                 error=RetryableSendError, code="connect", requests=0),
    # --- refused locally, before any request ---
    OutgoingCase("over_1600_characters", body="a" * 1601,
                 error=PermanentSendError, code="21617", requests=0),
    OutgoingCase("over_1600_after_smart_encoding", body="…" * 600,
                 settings={"smart_encoding": True},
                 error=PermanentSendError, code="21617", requests=0),
    OutgoingCase("empty_body", body="  ", error=PermanentSendError, code="21602", requests=0),
]


@pytest.mark.parametrize("case", OUTGOING_CASES, ids=lambda case: case.id)
async def test_outgoing(
    case: OutgoingCase, twilio: FakeTwilioServer, make_channel: ChannelFactory
) -> None:
    settings = dict(case.settings)
    if settings.get("api_base_url") == "__refused__":
        settings["api_base_url"] = f"http://127.0.0.1:{free_port()}"
    channel = await make_channel(**settings)
    if case.script:
        case.script(twilio)

    if case.error is None:
        result = await channel.send(message(case.body, case.to))
        assert twilio.requests == case.requests
        record = twilio.messages[-1]
        assert result.provider_message_id == record.sid
        assert result.status == "queued"
        for key, value in case.form.items():
            assert record.form.get(key) == value, key
        if case.segments is not None:
            assert result.segments == case.segments
        expected_auth = base64.b64encode(
            f"{twilio.account_sid}:{twilio.auth_token}".encode()
        ).decode()
        assert record.authorization == f"Basic {expected_auth}"
        return

    with pytest.raises(case.error) as raised:
        await channel.send(message(case.body, case.to))
    error = raised.value
    assert type(error) is case.error
    assert error.code == case.code
    assert error.endpoint_state == case.endpoint_state
    assert error.retry_after == case.retry_after
    if case.reason_contains:
        assert case.reason_contains in error.reason
    assert TO not in str(error)  # never the full number
    assert twilio.requests == case.requests
    assert twilio.messages == []


async def test_429_then_success_sends_once(
    twilio: FakeTwilioServer, make_channel: ChannelFactory
) -> None:
    channel = await make_channel()
    twilio.fail_next(429, 20429, retry_after=1)
    with pytest.raises(RetryableSendError) as raised:
        await channel.send(message())
    assert raised.value.retry_after == 1.0
    result = await channel.send(message())  # what the outbox does after the backoff
    assert twilio.requests == 2
    assert [record.sid for record in twilio.messages] == [result.provider_message_id]


async def test_concurrent_sends_reuse_one_client(
    twilio: FakeTwilioServer, make_channel: ChannelFactory
) -> None:
    channel = await make_channel(concurrency=16)
    http_client = channel._http
    results = await asyncio.gather(
        *(channel.send(message(f"Message {i}", f"+1816555{i:04d}")) for i in range(200))
    )
    assert channel._http is http_client
    assert len({result.provider_message_id for result in results}) == 200
    assert sorted(record.body for record in twilio.messages) == sorted(
        f"Message {i}" for i in range(200)
    )


async def test_send_before_start_is_an_error(twilio: FakeTwilioServer) -> None:
    settings = TwilioSmsSettings(plugin="twilio_sms", account_sid=twilio.account_sid,
                                 auth_token=twilio.auth_token, from_number=FROM_NUMBER)
    channel = TwilioSmsChannel("sms", settings, FakeChannelContext(name="sms"))
    with pytest.raises(RuntimeError):
        await channel.send(message())


async def test_status_callback_needs_public_base_url(twilio: FakeTwilioServer) -> None:
    settings = TwilioSmsSettings(plugin="twilio_sms", account_sid=twilio.account_sid,
                                 auth_token=twilio.auth_token, from_number=FROM_NUMBER,
                                 api_base_url=twilio.url)
    channel = TwilioSmsChannel("sms", settings,
                               FakeChannelContext(name="sms", public_base_url=None))
    with pytest.raises(ConfigError):
        await channel.start()
    await channel.stop()


# --- reconcile -------------------------------------------------------------------------


async def test_reconcile_by_sid_follows_status(
    twilio: FakeTwilioServer, make_channel: ChannelFactory, context: FakeChannelContext
) -> None:
    channel = await make_channel()
    sent = await channel.send(message())
    assert await channel.reconcile(message(), sent.provider_message_id) == "queued"
    twilio.by_sid[sent.provider_message_id].status = "delivered"
    assert await channel.reconcile(message(), sent.provider_message_id) == "delivered"
    assert await channel.reconcile(message(), "SM" + "f" * 32) is None  # 404 at Twilio


async def test_reconcile_without_sid_lists_by_recipient(
    twilio: FakeTwilioServer, make_channel: ChannelFactory
) -> None:
    channel = await make_channel()
    await channel.send(message("Other text"))
    twilio.hang_next(5)
    channel_fast = await make_channel(timeout=1.0)
    with pytest.raises(DeliveryUnknownError):
        await channel_fast.send(message("Field trip on Friday"))
    # The timed-out request never created a message at Twilio: nothing to find.
    assert await channel.reconcile(message("Field trip on Friday"), None) is None
    created = await channel.send(message("Field trip on Friday"))
    twilio.by_sid[created.provider_message_id].status = "sent"
    assert await channel.reconcile(message("Field trip on Friday"), None) == "sent"
    assert await channel.reconcile(message("Field trip on Friday", "+18165550111"), None) is None


async def test_reconcile_when_twilio_is_unreachable(make_channel: ChannelFactory) -> None:
    channel = await make_channel(api_base_url=f"http://127.0.0.1:{free_port()}")
    assert await channel.reconcile(message(), "SM" + "a" * 32) is None


# --- settings, preview, cost -------------------------------------------------------------

BASE_SETTINGS = {
    "plugin": "twilio_sms", "account_sid": "AC" + "1" * 32, "auth_token": "secret-token",
}


@pytest.mark.parametrize(
    "extra",
    [
        {},  # neither sender
        {"from_number": FROM_NUMBER, "messaging_service_sid": SERVICE_SID},  # both
        {"from_number": "18165550100"},  # no "+": neither E.164 nor a short code
        {"from_number": "816-555-0100"},
        {"from_number": FROM_NUMBER, "api_base_url": "ftp://example.org"},
        {"from_number": FROM_NUMBER, "unknown_key": 1},
        {"from_number": FROM_NUMBER, "timeout": 0},
    ],
)
def test_settings_refused(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TwilioSmsSettings(**BASE_SETTINGS, **extra)


def test_settings_defaults_and_secret() -> None:
    settings = TwilioSmsSettings(**BASE_SETTINGS, messaging_service_sid=SERVICE_SID)
    assert settings.api_base_url == "https://api.twilio.com"
    assert settings.status_callback is True
    assert settings.price_per_segment == 0.0079
    assert settings.smart_encoding is False
    assert "secret-token" not in repr(settings) + str(settings.auth_token)
    assert settings.auth_token.get_secret_value() == "secret-token"


def test_preview_and_cost_units() -> None:
    settings = TwilioSmsSettings(**BASE_SETTINGS, from_number=FROM_NUMBER,
                                 price_per_segment=0.01)
    channel = TwilioSmsChannel("sms", settings, FakeChannelContext(name="sms"))
    spanish = message("¿Vendrá mañana a la reunión? " * 3)
    details = channel.preview_details(spanish)
    assert details["encoding"] == "UCS-2"
    assert details["segments"] == 2
    assert details["characters"] == len(spanish.body)
    assert details["estimated_cost"] == pytest.approx(0.02)
    assert details["smart_encoded"] is False
    assert channel.cost_units(spanish) == 2
    assert channel.cost_units(message("short")) == 1


def test_preview_with_smart_encoding() -> None:
    settings = TwilioSmsSettings(**BASE_SETTINGS, from_number=FROM_NUMBER, smart_encoding=True)
    channel = TwilioSmsChannel("sms", settings, FakeChannelContext(name="sms"))
    typographic = message("“Picture Day” is Monday — don’t forget! " * 2)
    details = channel.preview_details(typographic)
    assert details == {
        "segments": 1, "encoding": "GSM-7", "characters": len(typographic.body),
        "units": len(typographic.body), "estimated_cost": pytest.approx(0.0079),
        "smart_encoded": True, "too_long": False,
    }


def test_plugin_registration() -> None:
    from gateway_plugins import twilio_sms

    assert twilio_sms.gateway_channel_types() == [TwilioSmsChannel]
    assert TwilioSmsChannel.plugin == "twilio_sms"
    assert TwilioSmsChannel.declared_kind() == "phone" and TwilioSmsChannel.address_kind is PHONE
    assert TwilioSmsChannel.Settings is TwilioSmsSettings
