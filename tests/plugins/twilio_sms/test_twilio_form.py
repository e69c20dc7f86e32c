"""The Twilio HTTP client encodes the form itself: byte for byte what aiohttp sends for the
library's dict, in any script, and the message arrives at Twilio whole."""

from __future__ import annotations

import random
from typing import Any

import pytest
from aiohttp import FormData
from gateway_plugins.twilio_sms.http import encode_form
from twilio_sms_support import ChannelFactory

from gateway import OutboundMessage
from gateway.testing.twilio_server import FakeTwilioServer

TEXTS = [
    "Taller de lectura el sábado 12/12 a las 10:00. ¿Vendrá? Responda SÍ o NO.",
    "ورشة القراءة يوم السبت. هل ستحضر؟ أجب بنعم أو لا",
    "周六阅读工作坊 10:00。您会来吗？请回复 是 或 否",
    "Atelye lekti samdi 12/12 — w ap vini? 🙂 ✓",
    "a&b=c+d%e#f?g/h;i,j:k@l$m!n'o(p)q*r~s_t.u-v w\tx\ny\r\nz",
    "",
]


def _aiohttp_form(data: dict[str, Any]) -> bytes:
    payload = FormData(data)()
    return bytes(payload._value)


@pytest.mark.parametrize("text", TEXTS)
def test_the_form_is_what_aiohttp_would_send(text: str) -> None:
    data = {
        "To": "+19135550123",
        "From": "+19135550100",
        "Body": text,
        "StatusCallback": "https://gw.district.example/webhooks/sms/status?x=1&y=2",
        "MediaUrl": ["https://a.example/1.png", "https://a.example/2 3.png"],
        "ValidityPeriod": 600,
    }
    assert encode_form(data) == _aiohttp_form(data)


def test_random_text_encodes_as_aiohttp_does() -> None:
    generator = random.Random(20261130)
    alphabet = [chr(c) for c in (*range(32, 127), 0xE9, 0x627, 0x4E2D, 0x1F642, 0x200F, 0xA)]
    for _ in range(300):
        text = "".join(generator.choice(alphabet) for _ in range(generator.randint(0, 80)))
        data = {"To": "+19135550123", "Body": text}
        assert encode_form(data) == _aiohttp_form(data)


def test_values_that_are_not_plain_text_are_left_to_aiohttp() -> None:
    assert encode_form({"Body": b"bytes"}) is None
    assert encode_form({"MediaUrl": [object()]}) is None


async def test_the_message_arrives_whole(twilio: FakeTwilioServer, make_channel: ChannelFactory) -> None:
    channel = await make_channel()
    text = TEXTS[4]
    await channel.send(
        OutboundMessage(message_id=7, channel="sms", address="+18165550199", language="en", body=text)
    )
    record = twilio.messages[-1]
    assert record.body == text
