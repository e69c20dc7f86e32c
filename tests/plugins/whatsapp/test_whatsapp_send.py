"""Sending WhatsApp through the real twilio client to the local Twilio server's WhatsApp sender:
the 24-hour window, approved templates by Content SID, quick replies, and error 63016."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from gateway_plugins.whatsapp import WhatsAppChannel
from gateway_plugins.whatsapp.errors import NO_TEMPLATE_CODE
from whatsapp_support import PARENT, PUBLIC_BASE_URL, SENDER, WA_PARENT, outbound

from gateway import Button, DeliveryUnknownError, PermanentSendError, RetryableSendError
from gateway.testing.twilio_server import FakeTwilioServer

INBOUND_PATH = "/webhooks/whatsapp/inbound"
STATUS_PATH = "/webhooks/whatsapp/status"
YES_NO = (Button("yes", "Sí"), Button("no", "No"))


async def family_writes(twilio: FakeTwilioServer, client, text: str = "Hola") -> None:
    """The parent writes on WhatsApp: Twilio opens the window and posts the signed webhook."""
    status, _ = await twilio.post_whatsapp_inbound(
        PUBLIC_BASE_URL + INBOUND_PATH, from_=PARENT, to=SENDER, body=text,
        via=str(client.make_url("/")),
    )
    assert status == 200


def template_settings(twilio: FakeTwilioServer) -> dict:
    sid = twilio.add_content(
        "Hola, la escuela tiene un mensaje para usted: {{1}}. Responda para leerlo.",
        approved=True,
    )
    return {"templates": {"default": {"es": {"content_sid": sid, "variables": {"1": "first_line"}}}}}


async def test_inside_the_window_the_text_goes_free_form(make_channel, twilio, mount, context):
    channel = await make_channel()
    await family_writes(twilio, await mount(channel))
    # The core keeps the reply under the sender in the channel's form, and finds it there.
    assert set(context.inbound_times) == {WA_PARENT}

    result = await channel.send(outbound())

    [record] = twilio.messages
    assert result.provider_message_id == record.sid
    assert record.to == WA_PARENT and record.from_ == "whatsapp:" + SENDER
    assert record.body == "Taller de lectura el martes a las 17:00."
    assert "ContentSid" not in record.form
    assert record.status_callback == PUBLIC_BASE_URL + STATUS_PATH
    assert record.pending_error is None


async def test_outside_the_window_the_approved_template_goes_by_content_sid(make_channel, twilio):
    channel = await make_channel(**template_settings(twilio))
    message = outbound("Taller de lectura\nEl martes\ta las 17:00,   en la biblioteca.")

    await channel.send(message)

    [record] = twilio.messages
    assert "Body" not in record.form
    assert record.form["ContentSid"] == channel.config.templates["default"]["es"].content_sid
    assert json.loads(record.form["ContentVariables"]) == {"1": "Taller de lectura"}
    assert record.body.startswith("Hola, la escuela tiene un mensaje para usted: Taller de lectura.")
    assert record.pending_error is None  # an approved template may open a conversation


async def test_template_variables_never_carry_line_breaks(make_channel, twilio):
    sid = twilio.add_content("Mensaje: {{1}} ({{2}})")
    channel = await make_channel(templates={"default": {"es": {
        "content_sid": sid, "variables": {"1": "body", "2": "metadata.survey_id"}}}})

    await channel.send(outbound("Línea uno\n\nLínea   dos\tfin", metadata={"survey_id": 7}))

    variables = json.loads(twilio.messages[0].form["ContentVariables"])
    assert variables == {"1": "Línea uno Línea dos fin", "2": "7"}


async def test_template_by_name_then_default_and_regional_language_falls_back(make_channel, twilio):
    named = twilio.add_content("Encuesta: {{1}}")
    default = twilio.add_content("Aviso: {{1}}")
    channel = await make_channel(templates={
        "survey_question": {"es": {"content_sid": named, "variables": {"1": "first_line"}}},
        "default": {"es": {"content_sid": default, "variables": {"1": "first_line"}}},
    })

    await channel.send(outbound(language="es-MX", metadata={"template": "survey_question"}))
    await channel.send(outbound(language="es", message_id=2))

    assert [m.form["ContentSid"] for m in twilio.messages] == [named, default]


async def test_outside_the_window_without_a_template_the_send_is_skipped_for_fallback(
    make_channel, twilio
):
    channel = await make_channel(**template_settings(twilio))

    with pytest.raises(PermanentSendError) as caught:
        await channel.send(outbound(language="so", metadata={"template": "event_reminder"}))

    error = caught.value
    assert error.code == NO_TEMPLATE_CODE and not error.retryable
    assert error.endpoint_state is None  # nothing is wrong with the family's number
    assert "'event_reminder'" in error.reason and "'so'" in error.reason
    assert "channels.whatsapp.templates" in error.reason
    assert twilio.requests == 0


async def test_63016_at_creation_sends_the_template_never_the_same_text(
    make_channel, twilio, context
):
    twilio.refuse_outside_window_at_once = True
    channel = await make_channel(**template_settings(twilio))
    # The gateway believes the window is open (a reply it stored), Twilio does not.
    context.inbound_times[WA_PARENT] = datetime.now(UTC) - timedelta(hours=1)

    result = await channel.send(outbound())

    assert twilio.requests == 2
    [record] = twilio.messages
    assert result.provider_message_id == record.sid
    assert record.content_sid is not None and "Body" not in record.form
    # The window is now known to be closed: the next message goes straight to the template.
    await channel.send(outbound(message_id=2))
    assert twilio.requests == 3 and twilio.messages[1].content_sid is not None


async def test_63016_at_creation_without_a_template_is_a_skip_not_a_retry(
    make_channel, twilio, context
):
    twilio.refuse_outside_window_at_once = True
    channel = await make_channel()
    context.inbound_times[WA_PARENT] = datetime.now(UTC) - timedelta(hours=1)

    with pytest.raises(PermanentSendError) as caught:
        await channel.send(outbound())

    assert caught.value.code == NO_TEMPLATE_CODE
    assert twilio.requests == 1


async def test_63016_in_a_status_callback_closes_the_window_and_the_resend_is_the_template(
    make_channel, twilio, mount, context
):
    channel = await make_channel(**template_settings(twilio))
    client = await mount(channel)
    context.inbound_times[WA_PARENT] = datetime.now(UTC) - timedelta(hours=2)

    first = await channel.send(outbound())
    assert twilio.messages[0].pending_error == 63016  # accepted, then failed by Twilio
    answers = await twilio.post_status_callbacks(
        first.provider_message_id, via=str(client.make_url("/"))
    )

    assert answers == [204]
    [report] = context.statuses
    assert report.status == "failed" and report.error_code == "63016"
    assert report.retry_after == 0.0  # the core sends it once more...
    assert report.endpoint_state is None
    second = await channel.send(outbound())  # ...and that send is the template
    assert twilio.by_sid[second.provider_message_id].content_sid is not None


async def test_the_window_closes_after_24_hours_minus_the_margin(make_channel, context):
    channel: WhatsAppChannel = await make_channel(window_margin_minutes=10)
    wrote = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
    context.inbound_times[WA_PARENT] = wrote

    assert await channel.window_open(WA_PARENT, now=wrote + timedelta(hours=23, minutes=49))
    assert not await channel.window_open(WA_PARENT, now=wrote + timedelta(hours=23, minutes=51))
    assert not await channel.window_open("whatsapp:+18165550111", now=wrote)


async def test_quick_reply_buttons_inside_the_window_through_a_content_template(
    make_channel, twilio, mount
):
    quick = twilio.add_content(
        "{{1}}", approved=False, actions=[("{{2}}", "{{3}}"), ("{{4}}", "{{5}}")]
    )
    channel = await make_channel(quick_replies={2: quick})
    assert channel.supports_buttons
    await family_writes(twilio, await mount(channel))

    await channel.send(outbound("¿Vendrá al taller?", buttons=YES_NO))

    [record] = twilio.messages
    assert record.content_sid == quick
    assert record.body == "¿Vendrá al taller?"
    assert record.buttons == (("Sí", "yes"), ("No", "no"))
    assert record.pending_error is None


async def test_buttons_without_a_quick_reply_template_become_a_numbered_list(
    make_channel, twilio, mount
):
    quick = twilio.add_content("{{1}}", approved=False, actions=[("{{2}}", "{{3}}")])
    channel = await make_channel(quick_replies={1: quick})  # none for two buttons
    await family_writes(twilio, await mount(channel))

    await channel.send(outbound("¿Vendrá al taller?", buttons=YES_NO))

    [record] = twilio.messages
    assert record.content_sid is None
    assert record.body == "¿Vendrá al taller?\n\n1. Sí\n2. No"


async def test_throttling_is_retryable_with_retry_after(make_channel, twilio, mount):
    channel = await make_channel()
    await family_writes(twilio, await mount(channel))
    twilio.fail_next(429, 20429, retry_after=7)

    with pytest.raises(RetryableSendError) as caught:
        await channel.send(outbound())

    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize(("code", "state"), [(63024, "invalid"), (21610, "opted_out")])
async def test_a_refused_recipient_fails_with_its_endpoint_state(
    make_channel, twilio, mount, code, state
):
    channel = await make_channel()
    await family_writes(twilio, await mount(channel))
    twilio.fail_for(WA_PARENT, 400, code)

    with pytest.raises(PermanentSendError) as caught:
        await channel.send(outbound())

    assert caught.value.code == str(code) and caught.value.endpoint_state == state


async def test_a_wrong_content_sid_raises_a_configuration_alert(make_channel, twilio, context):
    channel = await make_channel(templates={"default": {"es": {"content_sid": "HX" + "0" * 32}}})

    with pytest.raises(PermanentSendError) as caught:
        await channel.send(outbound())

    assert caught.value.code == "21655"
    [(code, text)] = context.alerts
    assert code == "21655" and "templates" in text


async def test_a_lost_answer_is_unknown_and_reconciled_from_twilio(make_channel, twilio, mount):
    channel = await make_channel(timeout=1.0)
    await family_writes(twilio, await mount(channel))
    twilio.lose_answer_next(5)

    with pytest.raises(DeliveryUnknownError):
        await channel.send(outbound())

    assert await channel.reconcile(outbound(), None) == "queued"
    assert len(twilio.messages) == 1


async def test_read_reports_reach_the_core(make_channel, twilio, mount, context):
    channel = await make_channel()
    client = await mount(channel)
    await family_writes(twilio, client)
    sent = await channel.send(outbound())

    answers = await twilio.post_status_callbacks(
        sent.provider_message_id, ("sent", "delivered", "read"), via=str(client.make_url("/"))
    )

    assert answers == [204, 204, 204]
    assert [u.status for u in context.statuses] == ["sent", "delivered", "read"]
    assert {u.provider_message_id for u in context.statuses} == {sent.provider_message_id}


async def test_empty_body_is_refused_before_twilio(make_channel, twilio):
    channel = await make_channel()
    with pytest.raises(PermanentSendError):
        await channel.send(outbound("  "))
    assert twilio.requests == 0



@pytest.mark.parametrize(
    ("stored_as", "endpoint_address"),
    [(PARENT, PARENT), (WA_PARENT, PARENT), (PARENT, WA_PARENT), (WA_PARENT, WA_PARENT)],
)
async def test_the_window_is_found_whichever_form_the_core_keeps(
    make_channel, context, stored_as, endpoint_address
):
    """The core keeps replies under the sender as the channel gave it: whatsapp:+E164 now,
    the bare +E164 for replies stored before the whatsapp address kind. The window is the same
    either way, whichever form the address comes in."""
    channel = await make_channel()
    context.inbound_times[stored_as] = datetime.now(UTC) - timedelta(minutes=5)
    assert await channel.window_open(endpoint_address)
