"""The local Twilio-protocol server speaks what the real API speaks (checked with plain HTTP)."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

import aiohttp
from twilio.request_validator import RequestValidator

from gateway.testing.twilio_server import FakeTwilioServer, inbound_sms_form, sign_twilio_request


def messages_url(server: FakeTwilioServer, suffix: str = ".json") -> str:
    return f"{server.url}/2010-04-01/Accounts/{server.account_sid}/Messages{suffix}"


def auth(server: FakeTwilioServer, token: str | None = None) -> dict[str, str]:
    value = aiohttp.encode_basic_auth(server.account_sid, token or server.auth_token)
    return {"Authorization": value}


async def test_create_fetch_list(twilio: FakeTwilioServer) -> None:
    async with aiohttp.ClientSession() as http:
        form = {"To": "+18165550199", "From": "+18165550100", "Body": "€" * 81,
                "StatusCallback": "https://gw.example.org/webhooks/sms/status"}
        async with http.post(messages_url(twilio), data=form, headers=auth(twilio)) as answer:
            assert answer.status == 201
            assert answer.content_type == "application/json"
            created = await answer.json()
        assert re.fullmatch(r"SM[0-9a-f]{32}", created["sid"])
        assert created["status"] == "queued"
        assert created["num_segments"] == "2"  # 162 septets
        assert created["to"] == "+18165550199" and created["from"] == "+18165550100"
        assert created["direction"] == "outbound-api"
        assert parsedate_to_datetime(created["date_created"]).tzinfo is not None
        assert created["uri"] == (
            f"/2010-04-01/Accounts/{twilio.account_sid}/Messages/{created['sid']}.json"
        )
        assert twilio.messages[0].status_callback == form["StatusCallback"]

        async with http.get(messages_url(twilio, f"/{created['sid']}.json"),
                            headers=auth(twilio)) as answer:
            assert answer.status == 200
            assert (await answer.json())["sid"] == created["sid"]

        await http.post(messages_url(twilio), headers=auth(twilio),
                        data={**form, "To": "+18165550111"})
        async with http.get(messages_url(twilio), params={"To": "+18165550199"},
                            headers=auth(twilio)) as answer:
            listing = await answer.json()
        assert [m["sid"] for m in listing["messages"]] == [created["sid"]]
        assert listing["next_page_uri"] is None and listing["page"] == 0


async def test_messaging_service_is_accepted_first(twilio: FakeTwilioServer) -> None:
    async with aiohttp.ClientSession() as http:
        form = {"To": "+18165550199", "MessagingServiceSid": "MG" + "1" * 32, "Body": "hi"}
        async with http.post(messages_url(twilio), data=form, headers=auth(twilio)) as answer:
            created = await answer.json()
    assert answer.status == 201
    assert created["status"] == "accepted"
    assert created["from"] is None
    assert created["messaging_service_sid"] == "MG" + "1" * 32


async def test_errors_have_twilio_shape(twilio: FakeTwilioServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(messages_url(twilio), data={"To": "+18165550199"},
                             headers=auth(twilio, "wrong")) as answer:
            assert answer.status == 401
            assert (await answer.json()) == {
                "code": 20003, "message": "Authenticate",
                "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401,
            }
        async with http.post(messages_url(twilio), data={"From": "+18165550100", "Body": "x"},
                             headers=auth(twilio)) as answer:
            assert answer.status == 400
            assert (await answer.json())["code"] == 21604
        twilio.fail_next(429, 20429, retry_after=3)
        async with http.post(messages_url(twilio), headers=auth(twilio),
                             data={"To": "+18165550199", "From": "+1816555010", "Body": "x"}
                             ) as answer:
            assert answer.status == 429
            assert answer.headers["Retry-After"] == "3"
            assert (await answer.json())["code"] == 20429
        async with http.get(messages_url(twilio, "/SM" + "0" * 32 + ".json"),
                            headers=auth(twilio)) as answer:
            assert answer.status == 404
            assert (await answer.json())["code"] == 20404
    assert twilio.messages == []
    assert twilio.requests == 3


def test_signing_helpers_match_twilio_validation() -> None:
    form = inbound_sms_form(from_="+18165550199", to="+18165550100", body="¿Mañana?",
                            account_sid="AC" + "1" * 32)
    url = "https://gateway.example.org/webhooks/sms/inbound"
    signature = sign_twilio_request("token", url, form)
    assert RequestValidator("token").validate(url, form, signature)
    assert not RequestValidator("other").validate(url, form, signature)
    assert form["NumMedia"] == "0" and form["SmsStatus"] == "received"
    assert form["MessageSid"] == form["SmsSid"]
