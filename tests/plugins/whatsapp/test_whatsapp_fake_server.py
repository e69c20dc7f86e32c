"""The local Twilio server's WhatsApp sender, driven directly with the real twilio client: the
behaviour other tests rely on (window, 63016, Content templates and their errors)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from gateway_plugins.twilio_sms.http import RebasedAsyncTwilioHttpClient
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from whatsapp_support import SENDER, WA_PARENT

from gateway.testing.twilio_server import FakeTwilioServer


@pytest.fixture
async def client(twilio: FakeTwilioServer) -> AsyncIterator[Client]:
    http = RebasedAsyncTwilioHttpClient(twilio.url, timeout=2.0)
    try:
        yield Client(twilio.account_sid, twilio.auth_token, http_client=http)
    finally:
        await http.close()


async def create(client: Client, **params):
    return await client.messages.create_async(to=WA_PARENT, from_="whatsapp:" + SENDER, **params)


async def test_free_form_outside_the_window_is_accepted_then_fails_with_63016(
    twilio: FakeTwilioServer, client: Client
):
    received: list[dict[str, str]] = []

    async def status(request: web.Request) -> web.Response:
        received.append(dict(await request.post()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/status", status)
    async with TestClient(TestServer(app)) as receiver:
        created = await create(client, body="Hola", status_callback=str(receiver.make_url("/status")))
        assert created.status == "queued"
        answers = await twilio.post_status_callbacks(created.sid, ("sent", "delivered"))

    assert answers == [204]
    [report] = received
    assert report["MessageStatus"] == "failed" and report["ErrorCode"] == "63016"
    assert report["To"] == WA_PARENT and report["ChannelPrefix"] == "whatsapp"


async def test_free_form_refused_at_once_when_asked(twilio: FakeTwilioServer, client: Client):
    twilio.refuse_outside_window_at_once = True
    with pytest.raises(TwilioRestException) as caught:
        await create(client, body="Hola")
    assert caught.value.code == 63016 and twilio.messages == []


async def test_the_window_lasts_24_hours_from_the_last_message(twilio: FakeTwilioServer):
    now = datetime.now(UTC)
    twilio.open_whatsapp_window(WA_PARENT, at=now - timedelta(hours=23))
    assert twilio.whatsapp_window_open("+18165550199")
    twilio.open_whatsapp_window("+18165550199", at=now - timedelta(hours=25))
    assert not twilio.whatsapp_window_open(WA_PARENT)
    twilio.open_whatsapp_window(WA_PARENT)
    twilio.close_whatsapp_window(WA_PARENT)
    assert not twilio.whatsapp_window_open(WA_PARENT)


async def test_content_templates_render_with_variables_and_defaults(
    twilio: FakeTwilioServer, client: Client
):
    sid = twilio.add_content("Hola {{1}}, {{2}}.", defaults={"2": "gracias"})

    created = await create(client, content_sid=sid, content_variables=json.dumps({"1": "María"}))

    record = twilio.by_sid[created.sid]
    assert record.body == "Hola María, gracias." and record.pending_error is None


@pytest.mark.parametrize(
    ("variables", "code"),
    [("not json", 21656), (json.dumps({"1": 5}), 21656), (json.dumps({}), 21656)],
)
async def test_bad_content_variables_are_21656(twilio: FakeTwilioServer, client: Client,
                                               variables: str, code: int):
    sid = twilio.add_content("Hola {{1}}")
    with pytest.raises(TwilioRestException) as caught:
        await create(client, content_sid=sid, content_variables=variables)
    assert caught.value.code == code


async def test_an_unknown_content_sid_is_21655(client: Client):
    with pytest.raises(TwilioRestException) as caught:
        await create(client, content_sid="HX" + "f" * 32)
    assert caught.value.code == 21655


async def test_an_unapproved_template_outside_the_window_fails_like_free_form(
    twilio: FakeTwilioServer, client: Client
):
    sid = twilio.add_content("{{1}}", approved=False, actions=[("Sí", "yes")])
    created = await create(client, content_sid=sid, content_variables=json.dumps({"1": "¿Viene?"}))
    assert twilio.by_sid[created.sid].pending_error == 63016
    twilio.open_whatsapp_window(WA_PARENT)
    inside = await create(client, content_sid=sid, content_variables=json.dumps({"1": "¿Viene?"}))
    assert twilio.by_sid[inside.sid].pending_error is None
    assert twilio.by_sid[inside.sid].buttons == (("Sí", "yes"),)
