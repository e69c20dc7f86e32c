"""WhatsApp webhooks as Twilio posts them: replies, quick-reply button taps, quoted replies,
status callbacks with ``read``, and the same signature check as the SMS channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from whatsapp_support import PARENT, PUBLIC_BASE_URL, SENDER, WA_PARENT

from gateway.testing.twilio_server import sign_twilio_request, whatsapp_inbound_form

INBOUND = "/webhooks/whatsapp/inbound"
STATUS = "/webhooks/whatsapp/status"


async def post_signed(client, token: str, path: str, form: dict[str, str]):
    signature = sign_twilio_request(token, PUBLIC_BASE_URL + path, form)
    return await client.post(path, data=form, headers={"X-Twilio-Signature": signature})


@pytest.mark.parametrize(
    ("case", "form_fields", "expected"),
    [
        ("text reply", {"body": "Sí, iré con mi hija"},
         {"text": "Sí, iré con mi hija", "choice": None}),
        ("button tap", {"body": "Sí", "button_payload": "yes", "button_text": "Sí"},
         {"text": "Sí", "choice": "yes"}),
        ("button tap without body", {"body": "", "button_payload": "no", "button_text": "No"},
         {"text": "No", "choice": "no"}),
        ("quoted reply", {"body": "2", "original_replied_sid": "SM" + "c" * 32},
         {"text": "2", "provider_in_reply_to": ("SM" + "c" * 32,)}),
    ],
)
async def test_incoming_messages_reach_the_core(
    make_channel, mount, twilio, context, case, form_fields, expected
):
    channel = await make_channel()
    client = await mount(channel)
    form = whatsapp_inbound_form(from_=PARENT, to=SENDER, account_sid=twilio.account_sid,
                                 **form_fields)

    response = await post_signed(client, twilio.auth_token, INBOUND, form)

    assert response.status == 200, case
    assert "<Response></Response>" in await response.text()
    [message] = context.received
    assert message.channel == "whatsapp"
    # The whatsapp kind's form: the core finds the family by it (or by the phone number).
    assert message.sender == WA_PARENT
    assert message.provider_message_id == form["MessageSid"]
    assert message.raw["WaId"] == PARENT.removeprefix("+")
    for key, value in expected.items():
        assert getattr(message, key) == value, (case, key)
    # The reply (re)opened the window for free-form messages.
    assert set(context.inbound_times) == {WA_PARENT}
    assert await channel.window_open(WA_PARENT)


async def test_a_duplicate_delivery_is_answered_and_handed_in_once(make_channel, mount, twilio,
                                                                   context):
    client = await mount(await make_channel())
    form = whatsapp_inbound_form(from_=PARENT, to=SENDER, body="1", account_sid=twilio.account_sid)

    first = await post_signed(client, twilio.auth_token, INBOUND, form)
    second = await post_signed(client, twilio.auth_token, INBOUND, form)

    assert (first.status, second.status) == (200, 200)
    assert len(context.received) == 1


@pytest.mark.parametrize("forgery", ["missing", "other token", "tampered body"])
async def test_unsigned_or_forged_webhooks_are_refused(make_channel, mount, twilio, context,
                                                       forgery):
    channel = await make_channel()
    client = await mount(channel)
    form = whatsapp_inbound_form(from_=PARENT, to=SENDER, body="STOP",
                                 account_sid=twilio.account_sid, button_payload="stop")
    headers = {}
    if forgery == "other token":
        headers["X-Twilio-Signature"] = sign_twilio_request("0" * 32, PUBLIC_BASE_URL + INBOUND,
                                                            form)
    elif forgery == "tampered body":
        headers["X-Twilio-Signature"] = sign_twilio_request(twilio.auth_token,
                                                            PUBLIC_BASE_URL + INBOUND, form)
        form = {**form, "ButtonPayload": "yes"}

    response = await client.post(INBOUND, data=form, headers=headers)

    assert response.status == 403
    assert context.received == [] and context.statuses == []
    assert context.signature_failures == 1
    assert not await channel.window_open(WA_PARENT)  # a forged message opens nothing


async def test_status_callbacks_map_read_and_whatsapp_errors(make_channel, mount, twilio, context):
    client = await mount(await make_channel())
    base = {"MessageSid": "SM" + "d" * 32, "AccountSid": twilio.account_sid, "To": WA_PARENT,
            "From": "whatsapp:" + SENDER, "ChannelPrefix": "whatsapp", "ApiVersion": "2010-04-01"}

    for status, extra in [("read", {}), ("undelivered", {"ErrorCode": "63024"}),
                          ("failed", {"ErrorCode": "63049"})]:
        form = {**base, "MessageStatus": status, "SmsStatus": status, **extra}
        response = await post_signed(client, twilio.auth_token, STATUS, form)
        assert response.status == 204

    read, invalid, meta = context.statuses
    assert read.status == "read" and read.error_code is None
    assert invalid.endpoint_state == "invalid" and invalid.error_reason == "invalid WhatsApp recipient"
    assert meta.endpoint_state is None and meta.retry_after is None
    # The address is marked in the channel's form; the core marks it on WhatsApp only.
    assert [(address, state) for address, state, _ in context.endpoint_states] == [
        (WA_PARENT, "invalid")
    ]


async def test_an_old_reply_leaves_the_window_closed(make_channel, context):
    channel = await make_channel()
    context.inbound_times[WA_PARENT] = datetime.now(UTC) - timedelta(hours=25)
    assert not await channel.window_open(WA_PARENT)
