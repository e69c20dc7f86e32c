"""Twilio error codes and what the gateway does about them: the one table of the channel.

REST errors (raised when a message is created) become :class:`gateway.SendError` subclasses;
delivery error codes (``ErrorCode`` of a status callback) become a reason and, for a few, an
endpoint state. Reasons are our own words, never Twilio's message, which can quote the
phone number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict
from twilio.base.exceptions import TwilioRestException, TwilioServiceException

from gateway import DeliveryUnknownError, PermanentSendError, RetryableSendError, SendError, scrub
from gateway.errors import EndpointState

__all__ = [
    "TWILIO_API_ERRORS",
    "TWILIO_ERRORS",
    "TwilioApiError",
    "TwilioErrorRule",
    "capture_response_headers",
    "describe_error_code",
    "error_for_rest_exception",
    "error_for_transport_exception",
    "parse_retry_after",
    "record_error_headers",
]


@dataclass(frozen=True, slots=True)
class TwilioErrorRule:
    """What one Twilio error code means and what follows from it.

    ``alert``: the code says the account needs a setting changed (staff must act, no retry can
    help): the channel raises a configuration alert saying what to change, and the message
    fails with that reason. ``redeliver_after``: a delivery report with this code is worth one
    more send, no sooner than this many seconds later (the core sends a message again at most
    once for a delivery report).
    """

    meaning: str
    retryable: bool = False
    endpoint_state: EndpointState | None = None
    alert: str | None = None
    redeliver_after: float | None = None

    @property
    def reason(self) -> str:
        """The meaning, and what to change when the code is a configuration problem."""
        return f"{self.meaning}: {self.alert}" if self.alert else self.meaning


#: Twilio error codes (https://www.twilio.com/docs/api/errors) the gateway knows by name.
TWILIO_ERRORS: dict[int, TwilioErrorRule] = {
    # account and request errors
    20003: TwilioErrorRule("authentication failed: check account_sid and auth_token"),
    20404: TwilioErrorRule("resource not found: check account_sid and api_base_url"),
    20429: TwilioErrorRule("too many requests", retryable=True),
    20500: TwilioErrorRule("Twilio internal server error", retryable=True),
    20503: TwilioErrorRule("Twilio service unavailable", retryable=True),
    # message creation
    21211: TwilioErrorRule("invalid 'To' phone number", endpoint_state="invalid"),
    21214: TwilioErrorRule("'To' phone number cannot be reached", endpoint_state="invalid"),
    21217: TwilioErrorRule("phone number does not appear to be valid", endpoint_state="invalid"),
    21408: TwilioErrorRule(
        "permission to send SMS to this region is not enabled",
        alert="enable the destination country in the Twilio Console under Messaging > "
        "Settings > Geo permissions, then send the failed messages again",
    ),
    21602: TwilioErrorRule("message body is required"),
    21603: TwilioErrorRule("a 'From' phone number is required"),
    21604: TwilioErrorRule("a 'To' phone number is required"),
    21606: TwilioErrorRule("the 'From' number is not a valid message-capable Twilio number"),
    21608: TwilioErrorRule("trial accounts can only send to verified numbers"),
    21610: TwilioErrorRule("recipient has unsubscribed (replied STOP)",
                           endpoint_state="opted_out"),
    21611: TwilioErrorRule("the 'From' number has too many queued messages", retryable=True),
    21612: TwilioErrorRule("the 'To' number is not currently reachable by SMS"),
    21614: TwilioErrorRule("'To' number is not a valid mobile number", endpoint_state="invalid"),
    21617: TwilioErrorRule("message body exceeds the 1600 character limit"),
    21703: TwilioErrorRule("the Messaging Service has no phone numbers in its sender pool"),
    # delivery (status callback ErrorCode, sometimes returned at creation)
    30001: TwilioErrorRule("queue overflow: too many messages queued", retryable=True),
    30002: TwilioErrorRule("Twilio account suspended"),
    # The handset was off or out of coverage: worth one more try later, not a retry storm.
    30003: TwilioErrorRule(
        "unreachable destination handset (off or out of coverage)", redeliver_after=30 * 60
    ),
    30004: TwilioErrorRule("message blocked by the recipient or carrier (opted out)",
                           endpoint_state="opted_out"),
    30005: TwilioErrorRule("unknown destination handset", endpoint_state="invalid"),
    30006: TwilioErrorRule("landline or unreachable carrier", endpoint_state="invalid"),
    30007: TwilioErrorRule("message filtered by the carrier"),
    30008: TwilioErrorRule("unknown delivery error"),
    30009: TwilioErrorRule("missing message segment"),
    30010: TwilioErrorRule("message price exceeds the max price"),
    30022: TwilioErrorRule("US A2P 10DLC throughput limit exceeded", retryable=True),
    30023: TwilioErrorRule("US A2P 10DLC daily cap reached"),
    30032: TwilioErrorRule("toll-free number has not been verified"),
    30034: TwilioErrorRule("message from an unregistered US A2P 10DLC number"),
}

def describe_error_code(code: int | str | None) -> TwilioErrorRule | None:
    """The rule for a Twilio error code (int or its string form), None when unknown."""
    if code is None or code == "":
        return None
    try:
        return TWILIO_ERRORS.get(int(code))
    except (TypeError, ValueError):
        return None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds (HTTP dates are ignored)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


_ERROR_HEADERS: ContextVar[CIMultiDict[str] | None] = ContextVar("twilio_error_headers", default=None)


class capture_response_headers:
    """Collect the headers of the Twilio error answers (status 400 and above) received inside
    the ``with`` block (this task only): what ``Retry-After`` is read from, because
    ``TwilioRestException`` does not carry it. A plain class, not a generator: it wraps every
    send."""

    __slots__ = ("headers", "_token")

    def __init__(self) -> None:
        self.headers: CIMultiDict[str] = CIMultiDict()

    def __enter__(self) -> CIMultiDict[str]:
        self._token = _ERROR_HEADERS.set(self.headers)
        return self.headers

    def __exit__(self, *exc: object) -> None:
        _ERROR_HEADERS.reset(self._token)


def record_error_headers(headers: Mapping[str, str]) -> None:
    """Hand an error answer's headers to the :class:`capture_response_headers` block this task
    is in, if any (the channel's HTTP client calls it)."""
    captured = _ERROR_HEADERS.get()
    if captured is not None:
        captured.extend(headers)


TwilioApiError = TwilioRestException | TwilioServiceException
"""What the twilio library raises for an error answer (legacy JSON or RFC 9457)."""

TWILIO_API_ERRORS: tuple[type[Exception], ...] = (TwilioRestException, TwilioServiceException)
"""The same, as a tuple for ``except``."""


def error_for_rest_exception(
    exc: TwilioApiError,
    retry_after: float | None = None,
    describe: Callable[[int | str | None], TwilioErrorRule | None] = describe_error_code,
) -> SendError:
    """Turn a Twilio REST error answer into the SendError the outbox understands.

    ``describe`` looks a code up (another Twilio channel passes its own table, e.g. WhatsApp's
    63xxx codes on top of these)."""
    status = int(exc.status or 0)
    code = exc.code if exc.code is not None else status
    rule = describe(code)
    if rule is not None:
        if rule.retryable or status == 429 or status >= 500:
            return RetryableSendError(rule.meaning, code=code, retry_after=retry_after)
        return PermanentSendError(rule.reason, code=code, endpoint_state=rule.endpoint_state)
    if status == 429:
        return RetryableSendError("too many requests", code=code, retry_after=retry_after)
    if status >= 500:
        return RetryableSendError(f"Twilio server error (HTTP {status})", code=code,
                                  retry_after=retry_after)
    message = exc.msg if isinstance(exc, TwilioRestException) else (exc.detail or exc.title)
    detail = scrub(str(message or "")).removeprefix("Unable to create record: ")
    return PermanentSendError(
        f"Twilio refused the message (HTTP {status}){': ' + detail if detail else ''}",
        code=code,
    )


def error_for_transport_exception(exc: BaseException) -> SendError:
    """Turn a network failure into a SendError: before the request left → retryable,
    after it left (timeout, dropped connection) → delivery unknown."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        return RetryableSendError(f"could not connect to Twilio: {type(exc).__name__}",
                                  code="connect")
    if isinstance(exc, TimeoutError):
        return DeliveryUnknownError("no answer from Twilio before the timeout", code="timeout")
    return DeliveryUnknownError(
        f"connection to Twilio failed after the request was sent: {type(exc).__name__}",
        code="connection",
    )
