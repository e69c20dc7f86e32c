"""Telegram through the whole gateway in webhook mode: real aiogram against TelegramBotAPIServer,
updates posted to ``/webhooks/telegram/update`` on the web app, deep-link onboarding from
``gateway families link``, inline-keyboard surveys answered by taps and typed text."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_support import LiveGateway, live_gateway, write_event, write_families

from gateway.testing.telegram_server import SentMessage, TelegramBotAPIServer

SECRET = "s3cret-webhook_token"
PUBLIC = "https://gateway.example.org"  # behind a TLS proxy; Telegram only calls HTTPS
FATIMA_CHAT = 700001  # Arabic; links her chat with the deep link
BARAKA_CHAT = 552206  # Swahili; chat id imported from the CSV
DIL_CHAT = 552207  # Nepali; has blocked the bot


def _families(folder: Path) -> Path:
    return write_families(
        folder / "families.csv",
        [
            {
                "family_id": "T1",
                "guardian_name": "Fatima Al-Sayed",
                "language": "ar",
                "email": "fatima@example.net",
                "preferred_channel": "email",
                "student_name": "Yousef",
            },
            {
                "family_id": "T2",
                "guardian_name": "Baraka Mwangi",
                "language": "sw",
                "telegram_chat_id": str(BARAKA_CHAT),
                "preferred_channel": "telegram",
                "student_name": "Neema",
            },
            {
                "family_id": "T3",
                "guardian_name": "Dil Kumar Rai",
                "language": "ne",
                "telegram_chat_id": str(DIL_CHAT),
                "preferred_channel": "telegram",
                "student_name": "Asha",
            },
        ],
    )


def _survey(folder: Path) -> Path:
    """Values with a space do not fit ``a:ID:VALUE`` callback data: their buttons go by index.
    The labels are numbers on purpose: read as typed text, "1" would mean the first choice."""
    data = {
        "id": "travel-survey",
        "title": "Getting to school",
        "audience": "school:Lincoln",
        "questions": [
            {
                "id": "riders",
                "type": "choice",
                "text": "How many of your children ride the bus?",
                "choices": [
                    {"value": "no children", "label": "0"},
                    {"value": "one child", "label": "1"},
                    {"value": "two or more", "label": "2+"},
                ],
            },
            {"id": "pickup_ok", "type": "yesno", "text": "Is the pickup time right for you?"},
        ],
    }
    path = folder / "travel-survey.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
async def telegram() -> AsyncIterator[TelegramBotAPIServer]:
    async with TelegramBotAPIServer() as server:
        yield server


def _telegram_channels(server: TelegramBotAPIServer) -> Callable[[str], dict[str, Any]]:
    def channels(base_url: str) -> dict[str, Any]:
        return {
            "telegram": {
                "plugin": "telegram",
                "token": server.token,
                "api_base_url": server.base_url,
                "mode": "webhook",
                "webhook_secret": SECRET,
                "rate_per_recipient_per_second": 50,  # Telegram's 1/s per chat would only slow the test
                "request_timeout": 5,
            }
        }

    return channels


def _last(server: TelegramBotAPIServer, chat: int) -> SentMessage:
    return server.sent[str(chat)][-1]


async def _deliver(server: TelegramBotAPIServer, live: LiveGateway, update: dict[str, Any], **kw: Any) -> int:
    return await server.deliver_webhook(update, url=f"{live.base_url}/webhooks/telegram/update", **kw)


async def test_onboarding_survey_buttons_typed_answers_and_blocking(
    tmp_path: Path, db_url: str, cli: Any, telegram: TelegramBotAPIServer
) -> None:
    channels = _telegram_channels(telegram)
    async with live_gateway(
        tmp_path / "gw", cli, channels, db_url=db_url, public_base_url=PUBLIC
    ) as live:
        # Webhook registered at start, with the secret.
        assert telegram.webhook.url == f"{PUBLIC}/webhooks/telegram/update"
        assert telegram.webhook.secret_token == SECRET
        assert "callback_query" in (telegram.webhook.allowed_updates or [])

        assert (await live.run("families", "import", str(_families(tmp_path)), "--json")).json()[
            "errors"
        ] == []

        # `gateway families link` prints the t.me deep link with the bot's username.
        links = (await live.run("families", "link", "T1", "--json")).json()
        assert len(links) == 1 and links[0]["language"] == "ar"
        token = links[0]["token"]
        assert links[0]["url"] == f"https://t.me/{telegram.bot_username}?start={token}"
        assert len(token) <= 64 and token.replace("-", "").replace("_", "").isalnum()
        printed = await live.run("families", "link", "T1")
        assert f"https://t.me/{telegram.bot_username}?start=" in printed.stdout

        # /start <token> links the chat to Fatima's guardian and greets her in Arabic.
        assert await _deliver(telegram, live, telegram.start_update(FATIMA_CHAT, token)) == 200
        endpoint = await live.endpoint("telegram", str(FATIMA_CHAT))
        assert endpoint is not None and not endpoint.opted_out
        # The name is isolated inside the Arabic sentence (it reads left to right on its own).
        assert _last(telegram, FATIMA_CHAT).text.startswith("أهلًا \u2068Fatima Al-Sayed\u2069!")

        # The same token again, and a made-up one: a polite refusal, nothing linked.
        for chat, payload in ((700002, token), (700003, "not-a-real-token_123")):
            assert await _deliver(telegram, live, telegram.start_update(chat, payload)) == 200
            assert _last(telegram, chat).text.startswith("Sorry, this link is not valid any more.")
            assert await live.endpoint("telegram", str(chat)) is None
        linked = sorted(e.address for e in await live.endpoints("telegram"))
        assert linked == sorted([str(BARAKA_CHAT), str(DIL_CHAT), str(FATIMA_CHAT)])

        # The survey goes out with inline buttons; Dil has blocked the bot (403): opted out.
        telegram.fail_chat(DIL_CHAT, "blocked")
        survey = (await live.run("survey", "send", str(_survey(tmp_path)), "--json")).json()
        assert survey["messages"] == 3 and survey["by_channel"] == {"telegram": 3}
        await live.drain()
        dil = await live.state("telegram", str(DIL_CHAT), "telegram")
        assert dil.opted_out
        [dil_row] = await live.outbox(address=str(DIL_CHAT))
        assert dil_row.status == "failed" and dil_row.error_code == "403" and dil_row.attempts == 1

        question = _last(telegram, FATIMA_CHAT)
        keyboard = question.reply_markup["inline_keyboard"]  # type: ignore[index]
        assert [row[0]["text"] for row in keyboard] == ["0", "1", "2+"]
        data = [row[0]["callback_data"] for row in keyboard]
        [fatima_row] = await live.outbox(address=str(FATIMA_CHAT))
        assert data == [f"i:{fatima_row.id}:{index}" for index in range(3)]

        # Fatima taps "1" (one child), Baraka taps "2+" (two or more): each counts as that choice.
        tap = telegram.callback_query_update(FATIMA_CHAT, question.message_id, data[1], language_code="ar")
        assert await _deliver(telegram, live, tap) == 200
        assert telegram.answered_callbacks[-1]["callback_query_id"] == tap["callback_query"]["id"]
        edited = telegram.message(FATIMA_CHAT, question.message_id)
        assert edited is not None and edited["text"].endswith("✓ 1") and not edited.get("reply_markup")
        baraka_question = _last(telegram, BARAKA_CHAT)
        baraka_data = baraka_question.reply_markup["inline_keyboard"][2][0]["callback_data"]  # type: ignore[index]
        tap = telegram.callback_query_update(BARAKA_CHAT, baraka_question.message_id, baraka_data)
        assert await _deliver(telegram, live, tap) == 200

        # The next question comes at once: Fatima types her answer in Arabic, Baraka taps "yes".
        await live.drain()
        assert _last(telegram, FATIMA_CHAT).message_id != question.message_id
        typed = telegram.text_message_update(FATIMA_CHAT, "نعم", language_code="ar")
        assert await _deliver(telegram, live, typed) == 200
        assert await _deliver(telegram, live, typed) == 200  # Telegram retried it: processed once
        second = _last(telegram, BARAKA_CHAT)
        [[yes_button], _] = second.reply_markup["inline_keyboard"]  # type: ignore[index]
        assert yes_button["callback_data"].startswith("a:") and yes_button["callback_data"].endswith(":yes")
        tap = telegram.callback_query_update(BARAKA_CHAT, second.message_id, yes_button["callback_data"])
        assert await _deliver(telegram, live, tap) == 200

        records = await live.inbound()
        assert [(r.sender, r.classification) for r in records] == [
            (str(FATIMA_CHAT), "survey_answer"),
            (str(BARAKA_CHAT), "survey_answer"),
            (str(FATIMA_CHAT), "survey_answer"),
            (str(BARAKA_CHAT), "survey_answer"),
        ]
        results = (await live.run("survey", "results", "travel-survey", "--format", "json")).json()
        riders, pickup = results["questions"]
        assert riders["answers"] == {"one child": 1, "two or more": 1}
        assert pickup["answers"] == {"yes": 2}
        assert pickup["by_language"] == {"ar": {"yes": 1}, "sw": {"yes": 1}}
        assert results["respondents"] == 2

        # A wrong or missing secret: refused, nothing stored, nothing sent.
        sent_before = len(telegram.calls_of("sendMessage"))
        for secret in ("wrong-secret", ""):
            update = telegram.text_message_update(BARAKA_CHAT, "STOP")
            assert await _deliver(telegram, live, update, secret=secret) == 403
        assert len(await live.inbound()) == 4
        assert len(telegram.calls_of("sendMessage")) == sent_before
        baraka = await live.endpoint("telegram", str(BARAKA_CHAT))
        assert baraka is not None and not baraka.opted_out

        # No later broadcast goes to the chat that blocked the bot.
        await live.drain()
        invitation = (
            await live.run(
                "broadcast", "send", "workshop_invitation", "--event", str(write_event(tmp_path)), "--json"
            )
        ).json()
        assert invitation["messages"] == 2
        assert [s["family_id"] for s in invitation["skipped"]] == ["T3"]
        dil_calls = len(telegram.sent.get(str(DIL_CHAT), []))
        await live.drain()
        assert len(telegram.sent.get(str(DIL_CHAT), [])) == dil_calls == 0
