"""Webhook mode: setWebhook at start, the secret header, parsing and duplicate updates."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient as HttpClient
from gateway_plugins.telegram import TelegramChannel

from gateway.testing.channels import mounted_webhooks

CHAT = "5550004004"
SECRET = "s3cr3t_Webhook-token"
PATH = "/webhooks/telegram/update"


@pytest.fixture
async def webhook_channel(make_channel) -> TelegramChannel:
    return await make_channel(mode="webhook", webhook_secret=SECRET)


@pytest.fixture
async def gateway_http(webhook_channel) -> AsyncIterator[HttpClient]:
    """The channel's webhooks mounted the way the core mounts them."""
    async with mounted_webhooks(webhook_channel) as client:
        yield client


async def test_start_registers_the_webhook_with_its_secret(webhook_channel, telegram_server):
    [call] = telegram_server.calls_of("setWebhook")
    assert call.params["url"] == "https://gateway.example.org/webhooks/telegram/update"
    assert call.params["secret_token"] == SECRET
    assert {"message", "callback_query", "my_chat_member"} <= set(call.params["allowed_updates"])
    assert telegram_server.calls_of("getUpdates") == []
    assert set(webhook_channel.webhooks()) == {"update"}


async def test_update_with_the_right_secret_is_processed(gateway_http, telegram_server, context):
    update = telegram_server.text_message_update(CHAT, "Waan imanayaa", message_id=9)
    status = await telegram_server.deliver_webhook(
        update, url=str(gateway_http.make_url(PATH)), secret=SECRET
    )
    assert status == 200
    [inbound] = context.received
    assert inbound.text == "Waan imanayaa"
    assert inbound.provider_message_id == f"{CHAT}:9"


@pytest.mark.parametrize("headers", [{}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}])
async def test_missing_or_wrong_secret_is_refused_and_nothing_processed(
    gateway_http, telegram_server, context, headers
):
    update = telegram_server.text_message_update(CHAT, "hello")
    response = await gateway_http.post(PATH, json=update, headers=headers)
    assert response.status == 403
    assert context.received == []
    # The update was not remembered either: the genuine delivery still goes through.
    ok = await gateway_http.post(
        PATH, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    assert ok.status == 200
    assert [m.text for m in context.received] == ["hello"]


async def test_a_redelivered_update_is_processed_once(gateway_http, telegram_server, context):
    handed: list[str] = []
    record = context.receive

    async def counting_receive(message):
        handed.append(message.text)
        return await record(message)

    context.receive = counting_receive
    update = telegram_server.text_message_update(CHAT, "2")
    url = str(gateway_http.make_url(PATH))
    assert await telegram_server.deliver_webhook(update, url=url, secret=SECRET) == 200
    assert await telegram_server.deliver_webhook(update, url=url, secret=SECRET) == 200
    assert handed == ["2"]


async def test_button_tap_by_webhook_answers_the_callback(
    gateway_http, webhook_channel, telegram_server, context
):
    from gateway import Button, OutboundMessage

    result = await webhook_channel.send(
        OutboundMessage(
            message_id=8,
            channel="telegram",
            address=CHAT,
            language="en",
            body="Coming?",
            buttons=(Button("yes", "Yes"), Button("no", "No")),
        )
    )
    message_id = int(result.provider_message_id.split(":")[1])
    update = telegram_server.callback_query_update(CHAT, message_id, "a:8:no")
    response = await gateway_http.post(
        PATH, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    assert response.status == 200
    [inbound] = context.received
    assert (inbound.choice, inbound.in_reply_to_message_id) == ("no", 8)
    assert telegram_server.answered_callbacks[0]["callback_query_id"] == update["callback_query"]["id"]
    assert telegram_server.message(CHAT, message_id)["text"] == "Coming?\n\n✓ No"


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"update_id": "x"}'])
async def test_malformed_body_is_a_400(gateway_http, context, body):
    response = await gateway_http.post(
        PATH,
        data=body,
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert context.received == []


async def test_polling_channels_mount_no_webhook(make_channel):
    channel = await make_channel()
    assert channel.webhooks() == {}


def _poll_update(update_id: int) -> dict:
    # As the Bot API sends a poll; its options lack a field aiogram's model requires.
    poll = {
        "id": "5440000000000000001",
        "question": "Which day?",
        "options": [{"text": "Monday", "voter_count": 1}, {"text": "Friday", "voter_count": 0}],
        "total_voter_count": 1,
        "is_closed": False,
        "is_anonymous": True,
        "type": "regular",
        "allows_multiple_answers": False,
    }
    return {"update_id": update_id, "poll": poll}


def _join_request_update(update_id: int) -> dict:
    return {
        "update_id": update_id,
        "chat_join_request": {
            "chat": {"id": -1001234567890, "type": "supergroup", "title": "Parents"},
            "from": {"id": 5550007007, "is_bot": False, "first_name": "Parent"},
            "user_chat_id": 5550007007,
            "date": 1700000000,
        },
    }


@pytest.mark.parametrize(
    "update",
    [
        _poll_update(900001),
        _join_request_update(900002),
        {"update_id": 900003, "a_type_from_a_future_bot_api": {"x": 1}},
        # A type the bot handles, in a shape this aiogram cannot parse.
        {"update_id": 900004, "message": {"message_id": 1, "chat": {"id": 5}, "date": "yesterday"}},
    ],
    ids=["poll", "chat_join_request", "future-type", "unparseable-message"],
)
async def test_updates_the_bot_does_not_handle_are_answered_200_and_ignored(
    gateway_http, telegram_server, context, update
):
    url = str(gateway_http.make_url(PATH))
    assert await telegram_server.deliver_webhook(update, url=url, secret=SECRET) == 200
    assert context.received == []
    # Later updates are processed as usual.
    message = telegram_server.text_message_update(CHAT, "still here")
    assert await telegram_server.deliver_webhook(message, url=url, secret=SECRET) == 200
    assert [m.text for m in context.received] == ["still here"]


async def test_missing_or_wrong_secret_is_counted(gateway_http, telegram_server, context):
    update = telegram_server.text_message_update(CHAT, "hello")
    await gateway_http.post(PATH, json=update)
    await gateway_http.post(PATH, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "no"})
    assert context.signature_failures == 2
    await gateway_http.post(PATH, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert context.signature_failures == 2
