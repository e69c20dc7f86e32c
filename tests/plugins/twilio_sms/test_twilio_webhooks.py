"""Twilio webhooks (incoming SMS, status callbacks) as Twilio posts them.

One harness runs a table of incoming requests (form + how it is signed) → the HTTP answer and
what reached the core (InboundMessage / StatusUpdate / endpoint state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from gateway_plugins.twilio_sms.webhooks import EMPTY_TWIML
from twilio_sms_support import FROM_NUMBER, PUBLIC_BASE_URL, ChannelFactory, RecordingContext

from gateway import OutboundMessage
from gateway.testing.twilio_server import (
    FakeTwilioServer,
    inbound_sms_form,
    sign_twilio_request,
)

PARENT = "+18165550199"
INBOUND_SID = "SM" + "a" * 32
OUTBOUND_SID = "SM" + "b" * 32


@dataclass
class IncomingCase:
    """One row: a webhook request and what must come of it."""

    id: str
    action: str
    form: dict[str, str]
    signing: str = "valid"  # valid | missing | other_token | local_url | tampered
    query: str = ""
    content_type: str | None = None
    http_status: int = 200
    inbound: dict[str, Any] | None = None
    status: dict[str, Any] | None = None
    endpoint_state: tuple[str, str] | None = None


def sms_form(body: str = "YES", **kwargs: Any) -> dict[str, str]:
    return inbound_sms_form(from_=PARENT, to=FROM_NUMBER, body=body, account_sid="AC" + "1" * 32,
                            message_sid=INBOUND_SID, **kwargs)


def status_form(status: str, error_code: int | None = None) -> dict[str, str]:
    form = {
        "SmsSid": OUTBOUND_SID, "SmsStatus": status, "MessageStatus": status, "To": PARENT,
        "MessageSid": OUTBOUND_SID, "AccountSid": "AC" + "1" * 32, "From": FROM_NUMBER,
        "ApiVersion": "2010-04-01",
    }
    if error_code is not None:
        form["ErrorCode"] = str(error_code)
    return form


INCOMING_CASES = [
    IncomingCase("inbound_signed", "inbound", sms_form("Sí, asistiré"),
                 inbound={"sender": PARENT, "text": "Sí, asistiré",
                          "provider_message_id": INBOUND_SID}),
    IncomingCase("inbound_with_media", "inbound",
                 sms_form("photo", media_urls=["https://api.twilio.com/media/ME1"],
                          media_types=["image/png"]),
                 inbound={"text": "photo", "raw": {"NumMedia": "1",
                                                   "MediaUrl0": "https://api.twilio.com/media/ME1",
                                                   "MediaContentType0": "image/png"}}),
    IncomingCase("inbound_empty_body", "inbound", sms_form(""), inbound={"text": ""}),
    IncomingCase("inbound_signed_with_query", "inbound", sms_form("STOP"), query="?school=12",
                 inbound={"text": "STOP"}),
    IncomingCase("inbound_unsigned", "inbound", sms_form(), signing="missing", http_status=403),
    IncomingCase("inbound_wrong_token", "inbound", sms_form(), signing="other_token",
                 http_status=403),
    IncomingCase("inbound_signed_for_local_address", "inbound", sms_form(),
                 signing="local_url", http_status=403),
    IncomingCase("inbound_body_tampered", "inbound", sms_form("NO"), signing="tampered",
                 http_status=403),
    IncomingCase("inbound_without_message_sid", "inbound",
                 {"From": PARENT, "To": FROM_NUMBER, "Body": "hi"}, http_status=400),
    IncomingCase("inbound_json_body", "inbound", sms_form(), content_type="application/json",
                 http_status=400),
    IncomingCase("status_sent", "status", status_form("sent"), http_status=204,
                 status={"status": "sent", "error_code": None, "endpoint_state": None}),
    IncomingCase("status_delivered", "status", status_form("delivered"), http_status=204,
                 status={"status": "delivered"}),
    IncomingCase("status_accepted_is_queued", "status", status_form("accepted"),
                 http_status=204, status={"status": "queued"}),
    IncomingCase("status_undelivered_30003", "status", status_form("undelivered", 30003),
                 http_status=204,
                 status={"status": "undelivered", "error_code": "30003", "endpoint_state": None,
                         "error_reason": "unreachable destination handset (off or out of "
                                         "coverage)"}),
    IncomingCase("status_undelivered_30004_blocked", "status", status_form("undelivered", 30004),
                 http_status=204, status={"status": "undelivered", "endpoint_state": "opted_out"},
                 endpoint_state=(PARENT, "opted_out")),
    IncomingCase("status_failed_21610", "status", status_form("failed", 21610), http_status=204,
                 status={"status": "failed", "error_code": "21610",
                         "endpoint_state": "opted_out"},
                 endpoint_state=(PARENT, "opted_out")),
    IncomingCase("status_undelivered_30005_unknown_handset", "status",
                 status_form("undelivered", 30005), http_status=204,
                 status={"endpoint_state": "invalid"}, endpoint_state=(PARENT, "invalid")),
    IncomingCase("status_undelivered_30006_landline", "status",
                 status_form("undelivered", 30006), http_status=204,
                 status={"endpoint_state": "invalid", "error_reason":
                         "landline or unreachable carrier"},
                 endpoint_state=(PARENT, "invalid")),
    IncomingCase("status_undelivered_30007_filtered", "status",
                 status_form("undelivered", 30007), http_status=204,
                 status={"error_code": "30007", "error_reason": "message filtered by the carrier",
                         "endpoint_state": None}),
    IncomingCase("status_failed_30008_unknown", "status", status_form("failed", 30008),
                 http_status=204, status={"error_reason": "unknown delivery error"}),
    IncomingCase("status_failed_unlisted_code", "status", status_form("failed", 39999),
                 http_status=204, status={"error_code": "39999",
                                          "error_reason": "Twilio error 39999"}),
    IncomingCase("status_received_is_ignored", "status", status_form("received"),
                 http_status=204),
    IncomingCase("status_unsigned", "status", status_form("delivered"), signing="missing",
                 http_status=403),
    IncomingCase("status_wrong_token", "status", status_form("failed", 21610),
                 signing="other_token", http_status=403),
    IncomingCase("status_without_message_status", "status",
                 {"MessageSid": OUTBOUND_SID, "To": PARENT}, http_status=400),
]


@pytest.mark.parametrize("case", INCOMING_CASES, ids=lambda case: case.id)
async def test_incoming(
    case: IncomingCase, webhook_client: TestClient, context: RecordingContext,
    twilio: FakeTwilioServer,
) -> None:
    path = f"/webhooks/sms/{case.action}{case.query}"
    public_url = PUBLIC_BASE_URL + path
    signed_form = dict(case.form)
    headers: dict[str, str] = {}
    if case.signing != "missing":
        token = "someone-else" if case.signing == "other_token" else twilio.auth_token
        url = str(webhook_client.make_url(path)) if case.signing == "local_url" else public_url
        headers["X-Twilio-Signature"] = sign_twilio_request(token, url, signed_form)
    sent_form = dict(case.form)
    if case.signing == "tampered":
        sent_form["Body"] = "YES"
    if case.content_type == "application/json":
        response = await webhook_client.post(path, json=sent_form, headers=headers)
    else:
        response = await webhook_client.post(path, data=sent_form, headers=headers)

    assert response.status == case.http_status, await response.text()
    if case.action == "inbound" and case.http_status == 200:
        assert response.content_type == "text/xml"
        assert await response.text() == EMPTY_TWIML

    if case.inbound is None:
        assert context.received == []
    else:
        [received] = context.received
        assert received.channel == "sms"
        for key, value in case.inbound.items():
            if key == "raw":
                for raw_key, raw_value in value.items():
                    assert received.raw[raw_key] == raw_value
            else:
                assert getattr(received, key) == value, key
    if case.status is None:
        assert context.statuses == []
    else:
        [update] = context.statuses
        assert update.channel == "sms"
        assert update.provider_message_id == OUTBOUND_SID
        for key, value in case.status.items():
            assert getattr(update, key) == value, key
    if case.endpoint_state is None:
        assert context.endpoint_states == []
    else:
        [(address, state, reason)] = context.endpoint_states
        assert (address, state) == case.endpoint_state
        assert reason


async def test_duplicate_inbound_is_answered_and_reported_duplicate(
    webhook_client: TestClient, context: RecordingContext, twilio: FakeTwilioServer
) -> None:
    form = sms_form("RSVP YES")
    path = "/webhooks/sms/inbound"
    signature = sign_twilio_request(twilio.auth_token, PUBLIC_BASE_URL + path, form)
    for _ in range(2):  # Twilio retries when it did not get our answer in time
        response = await webhook_client.post(path, data=form,
                                             headers={"X-Twilio-Signature": signature})
        assert response.status == 200
        assert await response.text() == EMPTY_TWIML
    assert len(context.received) == 1
    assert [outcome.duplicate for outcome in context.outcomes] == [False, True]


async def test_public_url_with_default_port_is_accepted(
    webhook_client: TestClient, context: RecordingContext, twilio: FakeTwilioServer
) -> None:
    """Twilio sometimes signs the URL with the explicit default port."""
    path = "/webhooks/sms/inbound"
    form = sms_form("hello")
    signature = sign_twilio_request(twilio.auth_token,
                                    "https://gateway.example.org:443" + path, form)
    response = await webhook_client.post(path, data=form,
                                         headers={"X-Twilio-Signature": signature})
    assert response.status == 200
    assert len(context.received) == 1


async def test_status_callbacks_from_twilio_end_to_end(
    twilio: FakeTwilioServer, make_channel: ChannelFactory, webhook_client: TestClient,
    context: RecordingContext,
) -> None:
    """Send through the channel; the fake Twilio posts signed callbacks to the StatusCallback
    URL it was given (through a 'proxy' to the local webhook server)."""
    channel = await make_channel()
    local = str(webhook_client.make_url("/")).rstrip("/")
    ok = await channel.send(OutboundMessage(1, "sms", PARENT, "en", "Conferences on Thursday"))
    bad = await channel.send(OutboundMessage(2, "sms", "+18165550142", "en", "Conferences"))

    answers = await twilio.post_status_callbacks(ok.provider_message_id,
                                                 ("queued", "sent", "delivered"), via=local)
    answers += await twilio.post_status_callbacks(bad.provider_message_id, ("sent", "failed"),
                                                  error_code=30003, via=local)
    assert answers == [204] * 5
    assert [(u.provider_message_id, u.status, u.error_code) for u in context.statuses] == [
        (ok.provider_message_id, "queued", None),
        (ok.provider_message_id, "sent", None),
        (ok.provider_message_id, "delivered", None),
        (bad.provider_message_id, "sent", None),
        (bad.provider_message_id, "failed", "30003"),
    ]
    assert await channel.reconcile(OutboundMessage(1, "sms", PARENT, "en", "x"),
                                   ok.provider_message_id) == "delivered"
