"""Unit tests: settings validation, callback data, error mapping, plugin registration."""

from __future__ import annotations

import aiohttp
import pluggy
import pytest
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import SendMessage
from gateway_plugins import telegram as telegram_plugin
from gateway_plugins.telegram import TelegramChannel, TelegramSettings
from gateway_plugins.telegram.errors import send_error_from
from gateway_plugins.telegram.keyboards import encode_answer, parse_answer, parse_language
from pydantic import ValidationError

from gateway import TELEGRAM, Button, DeliveryUnknownError, PermanentSendError, RetryableSendError

TOKEN = "123456:ABC-def_ghi"
METHOD = SendMessage(chat_id=1, text="x")


def test_plugin_provides_the_channel_type_through_the_hook():
    import gateway.hookspecs

    pm = pluggy.PluginManager("gateway")
    pm.add_hookspecs(gateway.hookspecs)
    pm.register(telegram_plugin)
    assert [TelegramChannel] in pm.hook.gateway_channel_types()
    assert TelegramChannel.plugin == "telegram"
    assert TelegramChannel.declared_kind() == "telegram" and TelegramChannel.address_kind is TELEGRAM
    assert TelegramChannel.supports_buttons is True
    assert TelegramChannel.default_rate_per_second == 30
    assert TelegramChannel.default_rate_per_recipient_per_second == 1


def test_settings_defaults_and_secret_handling():
    settings = TelegramSettings(plugin="telegram", token=TOKEN)
    assert settings.mode == "polling"
    assert settings.api_base_url == "https://api.telegram.org"
    assert TOKEN not in repr(settings)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"mode": "webhook"}, "webhook_secret is required"),
        ({"mode": "webhook", "webhook_secret": "has space"}, "webhook_secret must be"),
        ({"token": "not a token"}, "not a Telegram bot token"),
        ({"tokn": "typo"}, "Extra inputs are not permitted"),
        ({"api_base_url": "ftp://x"}, "http"),
    ],
)
def test_settings_refuse_bad_configuration(raw, message):
    with pytest.raises(ValidationError, match=message) as caught:
        TelegramSettings.model_validate({"plugin": "telegram", "token": TOKEN, **raw})
    assert TOKEN not in str(caught.value)


def test_callback_data_round_trip_and_limits():
    assert encode_answer(12, 0, Button("attending", "Voy")) == "a:12:attending"
    assert encode_answer(12, 3, Button("yes please", "Sí")) == "i:12:3"
    assert encode_answer(12, 1, Button("ñ", "ñ")) == "i:12:1"
    assert parse_answer("a:12:attending").value == "attending"
    assert parse_answer("i:12:3").index == 3
    for bad in (None, "", "a:x:yes", "lang:es", "a:1:" + "x" * 41, "z:1:2"):
        assert parse_answer(bad) is None
    assert parse_language("lang:prs") == "prs"
    assert parse_language("lang:zz") is None


def _network(cause: BaseException) -> TelegramNetworkError:
    try:
        raise TelegramNetworkError(METHOD, "boom") from cause
    except TelegramNetworkError as exc:
        return exc


def test_error_mapping_in_one_place():
    retry = send_error_from(TelegramRetryAfter(METHOD, "Too Many Requests", retry_after=5))
    assert isinstance(retry, RetryableSendError) and retry.retry_after == 5.0

    blocked = send_error_from(TelegramForbiddenError(METHOD, "Forbidden: user is deactivated"))
    assert isinstance(blocked, PermanentSendError)
    assert (blocked.code, blocked.endpoint_state) == ("403", "opted_out")

    missing = send_error_from(TelegramBadRequest(METHOD, "Bad Request: chat not found"))
    assert (missing.code, missing.endpoint_state) == ("400", "invalid")

    too_long = send_error_from(TelegramBadRequest(METHOD, "Bad Request: message is too long"))
    assert isinstance(too_long, PermanentSendError) and too_long.endpoint_state is None

    assert isinstance(send_error_from(TelegramServerError(METHOD, "Bad Gateway")), RetryableSendError)
    refused = aiohttp.ClientConnectorError(None, OSError(111, "refused"))  # type: ignore[arg-type]
    assert isinstance(send_error_from(_network(refused)), RetryableSendError)
    assert isinstance(send_error_from(_network(TimeoutError())), DeliveryUnknownError)

