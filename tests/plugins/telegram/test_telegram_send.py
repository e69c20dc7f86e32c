"""Sending through real aiogram to the local Bot API server: what reaches Telegram, and errors."""

from __future__ import annotations

import pytest
from gateway_plugins.telegram.html_split import split_telegram_html
from gateway_plugins.telegram.keyboards import parse_answer

from gateway import (
    Button,
    DeliveryUnknownError,
    OutboundMessage,
    PermanentSendError,
    PluginError,
    RetryableSendError,
)
from gateway.testing.telegram_server import (
    ScriptedReply,
    TelegramBotAPIServer,
    parse_telegram_html,
    utf16_length,
)

CHAT = "5550001001"


def outbound(body: str, *, message_id: int = 41, buttons: tuple[Button, ...] = ()) -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id,
        channel="telegram",
        address=CHAT,
        language="es",
        body=body,
        buttons=buttons,
    )


async def test_plain_message_reaches_the_chat_as_html(make_channel, telegram_server):
    channel = await make_channel()
    result = await channel.send(outbound("<b>Hola</b> Tom &lt;script&gt; Baker, reunión mañana"))

    [sent] = telegram_server.sent[CHAT]
    assert sent.params["parse_mode"] == "HTML"
    assert sent.params["text"] == "<b>Hola</b> Tom &lt;script&gt; Baker, reunión mañana"
    assert sent.plain_text == "Hola Tom <script> Baker, reunión mañana"
    assert "reply_markup" not in sent.params
    assert result.provider_message_id == f"{CHAT}:{sent.message_id}"
    assert result.status == "sent"


async def test_buttons_are_one_per_row_with_short_callback_data(make_channel, telegram_server):
    channel = await make_channel()
    buttons = (
        Button("yes", "Sí"),
        Button("no", "No"),
        Button("sí, claro", "Sí, claro"),  # not [A-Za-z0-9_-]: encoded as an index
        Button("x" * 41, "Long value"),
    )
    message_id = 9_223_372_036_854_775_807  # the largest outbox id still fits in 64 bytes
    await channel.send(outbound("¿Viene a la reunión?", message_id=message_id, buttons=buttons))

    [sent] = telegram_server.sent[CHAT]
    rows = sent.reply_markup["inline_keyboard"]
    assert [len(row) for row in rows] == [1, 1, 1, 1]
    assert [row[0]["text"] for row in rows] == ["Sí", "No", "Sí, claro", "Long value"]
    data = [row[0]["callback_data"] for row in rows]
    assert all(1 <= len(item.encode()) <= 64 for item in data)
    assert all("Sí" not in item and "Long" not in item for item in data)  # never the label
    decoded = [parse_answer(item) for item in data]
    assert [(d.message_id, d.value, d.index) for d in decoded] == [
        (message_id, "yes", None),
        (message_id, "no", None),
        (message_id, None, 2),
        (message_id, None, 3),
    ]


async def test_long_message_is_split_in_order_with_tags_intact(make_channel, telegram_server):
    channel = await make_channel(rate_per_recipient_per_second=5)
    lines = [
        f'<b>Line {n}</b> about the <a href="https://school.example/e/{n}">field trip</a> &amp; '
        f"<i>permission slip</i> número {n}"
        for n in range(90)
    ]
    body = "\n".join(lines)
    assert len(body) > 2 * 4096
    result = await channel.send(outbound(body, buttons=(Button("ok", "OK"),)))

    parts = telegram_server.sent[CHAT]
    assert len(parts) == len(split_telegram_html(body)) == 3
    assert all(utf16_length(part.params["text"]) <= 4096 for part in parts)
    # The server parsed each part as Telegram HTML (it answers 400 to a broken tag).
    plain = "\n".join(part.plain_text for part in parts)
    assert plain == parse_telegram_html(body)[0]
    # Cut at line boundaries, so every part starts with a whole line.
    assert all(part.params["text"].startswith("<b>Line ") for part in parts)
    # Only the last part carries the keyboard; the result names the last part.
    assert [("reply_markup" in part.params) for part in parts] == [False, False, True]
    assert result.provider_message_id == f"{CHAT}:{parts[-1].message_id}"
    # Parts to one chat are spaced by the per-recipient rate (5/s here).
    gaps = [b.at - a.at for a, b in zip(parts, parts[1:], strict=False)]
    assert all(gap >= 0.18 for gap in gaps)
    assert channel.cost_units(outbound(body)) == 3


async def test_retry_of_a_half_sent_message_resumes_after_the_sent_parts(
    make_channel, telegram_server
):
    channel = await make_channel(rate_per_recipient_per_second=50)
    body = "\n".join(f"Paragraph {n} " + "texto " * 30 for n in range(60))
    telegram_server.script(
        ScriptedReply(),  # first part goes through
        ScriptedReply(status=429, description="Too Many Requests: retry after 2", retry_after=2),
    )
    with pytest.raises(RetryableSendError):
        await channel.send(outbound(body))
    assert len(telegram_server.sent[CHAT]) == 1

    await channel.send(outbound(body))
    texts = [part.plain_text for part in telegram_server.sent[CHAT]]
    assert texts[0].startswith("Paragraph 0 ")
    assert texts[1].startswith("Paragraph ") and texts[1] != texts[0]
    assert len(texts) == len(split_telegram_html(body)) == 3
    assert " ".join(texts).split() == body.split()  # nothing lost, nothing sent twice


async def test_429_is_retryable_with_retry_after_then_succeeds(make_channel, telegram_server):
    channel = await make_channel()
    telegram_server.script(
        ScriptedReply(status=429, description="Too Many Requests: retry after 7", retry_after=7)
    )
    with pytest.raises(RetryableSendError) as caught:
        await channel.send(outbound("Hola"))
    assert caught.value.retryable is True
    assert caught.value.retry_after == 7.0
    assert caught.value.code == "429"
    assert CHAT not in telegram_server.sent

    result = await channel.send(outbound("Hola"))
    assert result.provider_message_id == f"{CHAT}:1"


async def test_blocked_user_is_permanent_and_opts_out(make_channel, telegram_server):
    channel = await make_channel()
    telegram_server.fail_chat(CHAT, "blocked")
    with pytest.raises(PermanentSendError) as caught:
        await channel.send(outbound("Hola"))
    assert caught.value.code == "403"
    assert caught.value.endpoint_state == "opted_out"
    assert caught.value.retryable is False
    assert "blocked" in caught.value.reason


async def test_chat_not_found_is_permanent_and_invalid(make_channel, telegram_server):
    channel = await make_channel()
    telegram_server.fail_chat(CHAT, "not_found")
    with pytest.raises(PermanentSendError) as caught:
        await channel.send(outbound("Hola"))
    assert caught.value.code == "400"
    assert caught.value.endpoint_state == "invalid"


async def test_other_bad_request_is_permanent_without_touching_the_endpoint(make_channel):
    channel = await make_channel()
    with pytest.raises(PermanentSendError) as caught:
        await channel.send(outbound("line one<br>line two"))  # Telegram has no <br>
    assert caught.value.code == "400"
    assert caught.value.endpoint_state is None
    assert "can't parse entities" in caught.value.reason


async def test_server_error_is_retryable(make_channel, telegram_server):
    channel = await make_channel()
    telegram_server.script(ScriptedReply(status=502, description="Bad Gateway"))
    with pytest.raises(RetryableSendError):
        await channel.send(outbound("Hola"))


async def test_timeout_after_the_request_left_is_delivery_unknown(make_channel, telegram_server):
    channel = await make_channel(request_timeout=1)
    telegram_server.script(ScriptedReply(delay=2.0))
    with pytest.raises(DeliveryUnknownError):
        await channel.send(outbound("Hola"))


async def test_unreachable_api_is_retryable(make_channel, telegram_server):
    channel = await make_channel()
    await telegram_server.stop()
    with pytest.raises(RetryableSendError):
        await channel.send(outbound("Hola"))


async def test_address_that_is_not_a_chat_id_is_invalid(make_channel):
    channel = await make_channel()
    message = OutboundMessage(
        message_id=1, channel="telegram", address="parent@example.org", language="en", body="Hi"
    )
    with pytest.raises(PermanentSendError) as caught:
        await channel.send(message)
    assert caught.value.endpoint_state == "invalid"


async def test_wrong_token_fails_start_with_a_plugin_error(context):
    from gateway_plugins.telegram import TelegramChannel

    async with TelegramBotAPIServer() as server:
        settings = TelegramChannel.Settings.model_validate(
            {"plugin": "telegram", "token": "42:not-the-right-token", "api_base_url": server.base_url}
        )
        channel = TelegramChannel("telegram", settings, context)
        with pytest.raises(PluginError, match="Unauthorized"):
            await channel.start()
        assert server.calls[0].method == "getMe"
        await channel.stop()
