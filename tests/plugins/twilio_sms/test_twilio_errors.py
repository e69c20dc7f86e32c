"""The channel's single error table: Twilio answers and network failures → SendError."""

from __future__ import annotations

import aiohttp
import pytest
from gateway_plugins.twilio_sms.errors import (
    describe_error_code,
    error_for_rest_exception,
    error_for_transport_exception,
    parse_retry_after,
)
from twilio.base.exceptions import TwilioRestException, TwilioServiceException

from gateway import DeliveryUnknownError, PermanentSendError, RetryableSendError


def rest(status: int, code: int | None, msg: str = "Unable to create record: x") -> Exception:
    return TwilioRestException(status, "/2010-04-01/Accounts/AC1/Messages.json", msg, code, "POST")


@pytest.mark.parametrize(
    ("exc", "kind", "code", "state"),
    [
        (rest(429, 20429), RetryableSendError, "20429", None),
        (rest(429, None), RetryableSendError, "429", None),
        (rest(502, 502), RetryableSendError, "502", None),
        (rest(503, 20503), RetryableSendError, "20503", None),
        (rest(400, 21211), PermanentSendError, "21211", "invalid"),
        (rest(400, 21610), PermanentSendError, "21610", "opted_out"),
        (rest(400, 21614), PermanentSendError, "21614", "invalid"),
        (rest(400, 21408), PermanentSendError, "21408", None),
        (rest(400, 30007), PermanentSendError, "30007", None),
        (rest(400, 30004), PermanentSendError, "30004", "opted_out"),
        (rest(404, 20404), PermanentSendError, "20404", None),
        (TwilioServiceException(type_uri="https://www.twilio.com/docs/errors/20429",
                                title="Too Many Requests", status=429, code=20429),
         RetryableSendError, "20429", None),
        (TwilioServiceException(type_uri="https://www.twilio.com/docs/errors/21610",
                                title="Unsubscribed recipient", status=400, code=21610),
         PermanentSendError, "21610", "opted_out"),
    ],
)
def test_rest_errors(exc: Exception, kind: type, code: str, state: str | None) -> None:
    error = error_for_rest_exception(exc, retry_after=5.0)  # type: ignore[arg-type]
    assert type(error) is kind
    assert error.code == code
    assert error.endpoint_state == state
    assert error.retry_after == (5.0 if kind is RetryableSendError else None)


def test_unknown_rest_error_keeps_masked_detail() -> None:
    error = error_for_rest_exception(
        rest(400, 21999, "Unable to create record: number +18165550199 is odd")  # type: ignore[arg-type]
    )
    assert isinstance(error, PermanentSendError)
    assert "+1******0199" in error.reason and "+18165550199" not in error.reason


def test_transport_errors() -> None:
    class Key:
        ssl = None
        host = "api.twilio.com"
        port = 443

    refused = aiohttp.ClientConnectorError(Key(), OSError(111, "Connection refused"))  # type: ignore[arg-type]
    assert type(error_for_transport_exception(refused)) is RetryableSendError
    connect_timeout = aiohttp.ConnectionTimeoutError("connect")
    assert type(error_for_transport_exception(connect_timeout)) is RetryableSendError
    for after_sending in (aiohttp.SocketTimeoutError("read"), TimeoutError(),
                          aiohttp.ServerDisconnectedError(), aiohttp.ClientPayloadError("x")):
        assert type(error_for_transport_exception(after_sending)) is DeliveryUnknownError


def test_helpers() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after(None) is None
    assert describe_error_code("30003").meaning.startswith("unreachable")  # type: ignore[union-attr]
    assert describe_error_code("abc") is None
    assert describe_error_code(None) is None
