"""Inbound updates by long polling (real aiogram Dispatcher against the local Bot API server)."""

from __future__ import annotations

from gateway import Button, EndpointLink, OutboundMessage

CHAT = "5550002002"
OTHER_CHAT = "5550003003"


def link(language: str = "so", name: str = "Hodan") -> EndpointLink:
    return EndpointLink(family_id="fam-17", guardian_name=name, language=language)


def texts_to(server, chat: str) -> list[str]:
    return [message.plain_text for message in server.sent.get(chat, [])]


async def test_polling_start_drops_the_webhook_and_asks_for_the_handled_update_types(
    make_channel, telegram_server, wait_until
):
    await make_channel()
    await wait_until(lambda: telegram_server.calls_of("getUpdates"))
    methods = [call.method for call in telegram_server.calls]
    assert methods.index("deleteWebhook") < methods.index("getUpdates")
    allowed = telegram_server.calls_of("getUpdates")[0].params["allowed_updates"]
    assert {"message", "callback_query", "my_chat_member"} <= set(allowed)


async def test_start_with_a_good_token_links_the_chat_and_greets_in_its_language(
    make_channel, telegram_server, context, wait_until
):
    context.links["tok_GOOD-1"] = link(language="so", name="Hodan <Ali>")
    await make_channel()
    telegram_server.push_update(telegram_server.start_update(CHAT, "tok_GOOD-1"))

    await wait_until(lambda: texts_to(telegram_server, CHAT))
    assert context.languages[CHAT] == "so"  # redeemed for this chat
    assert "tok_GOOD-1" not in context.links
    assert (CHAT, None, "start") in context.endpoint_states
    assert texts_to(telegram_server, CHAT) == [
        "[so] Welcome, Hodan <Ali>! You will now receive school messages here."
    ]
    assert ("so", "Welcome, %(name)s! You will now receive school messages here.") in (
        context.gettext_calls
    )
    assert context.received == []  # onboarding is not a reply


async def test_start_with_a_bad_token_is_refused_politely(
    make_channel, telegram_server, context, wait_until
):
    context.links["tok_GOOD-1"] = link()
    await make_channel()
    telegram_server.push_update(
        telegram_server.start_update(CHAT, "tok_WRONG", language_code="es")
    )

    await wait_until(lambda: texts_to(telegram_server, CHAT))
    assert texts_to(telegram_server, CHAT) == [
        "[es] Sorry, this link is not valid any more. Please ask your school for a new one."
    ]
    assert CHAT not in context.languages
    assert context.endpoint_states == []
    assert "tok_GOOD-1" in context.links


async def test_a_used_token_cannot_link_a_second_chat(
    make_channel, telegram_server, context, wait_until
):
    context.links["tok_ONCE"] = link(language="ar")
    await make_channel()
    telegram_server.push_update(telegram_server.start_update(CHAT, "tok_ONCE"))
    await wait_until(lambda: texts_to(telegram_server, CHAT))
    telegram_server.push_update(telegram_server.start_update(OTHER_CHAT, "tok_ONCE"))
    await wait_until(lambda: texts_to(telegram_server, OTHER_CHAT))

    assert texts_to(telegram_server, OTHER_CHAT)[0].endswith("Please ask your school for a new one.")
    assert OTHER_CHAT not in context.languages
    assert [state[0] for state in context.endpoint_states] == [CHAT]


async def test_plain_start_from_a_known_chat_opts_back_in(
    make_channel, telegram_server, context, wait_until
):
    context.languages[CHAT] = "es"
    await make_channel()
    telegram_server.push_update(telegram_server.start_update(CHAT))
    telegram_server.push_update(telegram_server.start_update(OTHER_CHAT))  # unknown chat

    await wait_until(
        lambda: texts_to(telegram_server, CHAT) and texts_to(telegram_server, OTHER_CHAT)
    )
    assert texts_to(telegram_server, CHAT) == ["[es] You will receive school messages here again."]
    assert context.endpoint_states == [(CHAT, None, "start")]
    assert "link your school sent you" in texts_to(telegram_server, OTHER_CHAT)[0]


async def test_stop_command_is_handed_to_the_core_as_stop(
    make_channel, telegram_server, context, wait_until
):
    await make_channel()
    update = telegram_server.push_update(telegram_server.text_message_update(CHAT, "/stop"))

    await wait_until(lambda: context.received)
    [inbound] = context.received
    assert inbound.text == "STOP"
    assert inbound.sender == CHAT
    assert inbound.provider_message_id == f"{CHAT}:{update['message']['message_id']}"


async def test_typed_answer_is_handed_to_the_core(
    make_channel, telegram_server, context, wait_until
):
    await make_channel()
    update = telegram_server.push_update(
        telegram_server.text_message_update(CHAT, "haa, waan iman doonaa", message_id=77)
    )

    await wait_until(lambda: context.received)
    [inbound] = context.received
    assert inbound.channel == "telegram"
    assert inbound.provider_message_id == f"{CHAT}:77"
    assert inbound.sender == CHAT
    assert inbound.text == "haa, waan iman doonaa"
    assert inbound.choice is None
    assert update["update_id"] > 0


async def test_button_tap_records_the_choice_answers_and_edits_the_keyboard(
    make_channel, telegram_server, context, wait_until
):
    channel = await make_channel()
    context.answer_label = "Haa"
    result = await channel.send(
        OutboundMessage(
            message_id=314,
            channel="telegram",
            address=CHAT,
            language="so",
            body="<b>Shirka</b> ma imaan doontaa?",
            buttons=(Button("yes", "Haa"), Button("no", "Maya")),
        )
    )
    message_id = int(result.provider_message_id.split(":")[1])
    data = telegram_server.message(CHAT, message_id)["reply_markup"]["inline_keyboard"][0][0][
        "callback_data"
    ]
    update = telegram_server.push_update(
        telegram_server.callback_query_update(CHAT, message_id, data)
    )
    query_id = update["callback_query"]["id"]

    await wait_until(lambda: "✓" in telegram_server.message(CHAT, message_id)["text"])
    [inbound] = context.received
    assert inbound.choice == "yes"
    assert inbound.text == "yes"
    assert inbound.in_reply_to_message_id == 314
    assert inbound.provider_message_id == f"cb:{query_id}"
    assert inbound.sender == CHAT
    assert [a["callback_query_id"] for a in telegram_server.answered_callbacks] == [query_id]
    edited = telegram_server.message(CHAT, message_id)
    assert "reply_markup" not in edited  # keyboard removed
    assert edited["text"] == "Shirka ma imaan doontaa?\n\n✓ Haa"
    assert edited["entities"][0]["type"] == "bold"  # formatting kept through the edit


async def test_tap_on_an_index_encoded_button_hands_over_the_label(
    make_channel, telegram_server, context, wait_until
):
    channel = await make_channel()
    result = await channel.send(
        OutboundMessage(
            message_id=5,
            channel="telegram",
            address=CHAT,
            language="es",
            body="¿Viene?",
            buttons=(Button("sí", "Sí"), Button("no", "No")),
        )
    )
    message_id = int(result.provider_message_id.split(":")[1])
    data = telegram_server.message(CHAT, message_id)["reply_markup"]["inline_keyboard"][0][0][
        "callback_data"
    ]
    assert data == "i:5:0"
    telegram_server.push_update(telegram_server.callback_query_update(CHAT, message_id, data))

    await wait_until(lambda: context.received and telegram_server.answered_callbacks)
    [inbound] = context.received
    assert inbound.choice is None
    assert inbound.text == "Sí"
    assert inbound.raw["button_index"] == 0
    assert inbound.in_reply_to_message_id == 5
    await wait_until(lambda: telegram_server.message(CHAT, message_id)["text"].endswith("✓ Sí"))


async def test_language_command_offers_languages_and_hands_the_pick_to_the_core(
    make_channel, telegram_server, context, wait_until
):
    await make_channel()
    telegram_server.push_update(telegram_server.text_message_update(CHAT, "/language"))
    await wait_until(lambda: texts_to(telegram_server, CHAT))
    [picker] = telegram_server.sent[CHAT]
    buttons = [b for row in picker.reply_markup["inline_keyboard"] for b in row]
    codes = [b["callback_data"].removeprefix("lang:") for b in buttons]
    assert codes == ["en", "es", "ar", "so", "sw", "my", "ne", "fr", "vi", "prs"]

    update = telegram_server.push_update(
        telegram_server.callback_query_update(CHAT, picker.message_id, "lang:so")
    )
    await wait_until(lambda: context.received)
    [inbound] = context.received
    assert inbound.text == "/language so"
    assert inbound.sender == CHAT
    await wait_until(lambda: telegram_server.answered_callbacks)
    assert telegram_server.answered_callbacks[0]["callback_query_id"] == update["callback_query"]["id"]


async def test_blocking_the_bot_opts_the_chat_out(
    make_channel, telegram_server, context, wait_until
):
    await make_channel()
    telegram_server.push_update(telegram_server.my_chat_member_update(CHAT, "kicked"))
    telegram_server.push_update(telegram_server.my_chat_member_update(OTHER_CHAT, "member", "left"))

    await wait_until(lambda: context.endpoint_states)
    assert context.endpoint_states == [(CHAT, "opted_out", "blocked the bot")]


async def test_a_repeated_update_is_processed_once(
    make_channel, telegram_server, context, wait_until
):
    handed: list[str] = []
    record = context.receive

    async def counting_receive(message):
        handed.append(message.text)
        return await record(message)

    context.receive = counting_receive
    await make_channel()
    update = telegram_server.text_message_update(CHAT, "1")
    telegram_server.push_update(update)
    telegram_server.push_update(update)  # same update_id, e.g. after a restart
    telegram_server.push_update(telegram_server.text_message_update(CHAT, "2"))

    await wait_until(lambda: len(handed) >= 2)
    await wait_until(lambda: len(telegram_server.calls_of("getUpdates")) >= 3)
    assert sorted(handed) == ["1", "2"]  # the core never even saw the repeat


async def test_an_update_aiogram_cannot_parse_is_skipped_and_later_ones_arrive(
    make_channel, telegram_server, context, wait_until
):
    await make_channel()
    # A handled type in a shape aiogram refuses: fetched as plain JSON, it is confirmed and
    # skipped instead of failing every getUpdates after it.
    telegram_server.push_update(
        {"message": {"message_id": 1, "chat": {"id": int(CHAT)}, "date": "yesterday"}}
    )
    telegram_server.push_update(telegram_server.text_message_update(CHAT, "Haa, waan imanayaa"))
    await wait_until(lambda: context.received)
    assert [m.text for m in context.received] == ["Haa, waan imanayaa"]
    # Both were confirmed: the next getUpdates asks for what comes after them.
    await wait_until(
        lambda: int(telegram_server.calls_of("getUpdates")[-1].params.get("offset") or 0) >= 3
    )


async def test_update_types_without_a_handler_are_ignored_while_polling(
    make_channel, telegram_server, context, wait_until
):
    # Telegram sends polling bots only the types they ask for; a type without a handler that
    # arrives all the same (the same path serves webhooks) is confirmed and ignored.
    channel = await make_channel()
    poll = {"update_id": 1, "poll": {"id": "1", "question": "Which day?", "options": []}}
    join = {"update_id": 2, "chat_join_request": {"chat": {"id": -100}, "date": 1700000000}}
    assert await channel.process_update(poll) == "ignored"
    assert await channel.process_update(join) == "ignored"
    telegram_server.push_update(telegram_server.text_message_update(CHAT, "ok"))
    await wait_until(lambda: context.received)
    assert [m.text for m in context.received] == ["ok"]
