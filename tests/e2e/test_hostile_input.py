"""What a family sends is stored normalised, on every channel, on SQLite and PostgreSQL (which
refuses NUL): NUL and other control characters removed (tab and line feed kept), bytes that were
not UTF-8 replaced by U+FFFD, the text cut at ``inbound.max_text_chars`` with the item flagged
``truncated`` and the whole text kept in the raw payload.

Through the real doors: a signed Twilio webhook with a percent-encoded NUL and an invalid byte,
a Telegram webhook update whose JSON carries ``\\u0000`` and a lone surrogate, and an e-mail with
a NUL and a stray byte read from a real Dovecot mailbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from e2e_support import LiveGateway, live_gateway, write_families

from gateway.inbound.sanitize import FULL_TEXT_KEY
from gateway.storage.models import InboundRecord
from gateway.testing.dovecot import DovecotServer
from gateway.testing.telegram_server import TelegramBotAPIServer
from gateway.testing.twilio_server import inbound_sms_form, sign_twilio_request

ACCOUNT = "AC" + "1" * 32
TOKEN = "t" * 32
FROM = "+18165550100"
PHONE = "+19135550101"
CHAT = 552206
EMAIL = "amina@families.example"
CAP = 500
LONG = "Could you help us with the bus? " * 40  # 1,280 characters


def _families(folder: Path) -> Path:
    return write_families(
        folder / "families.csv",
        [{"family_id": "F1", "guardian_name": "Amina Yusuf", "language": "en", "phone": PHONE,
          "email": EMAIL, "telegram_chat_id": str(CHAT), "preferred_channel": "sms",
          "student_name": "Ayaan"}],
    )


def _check(record: InboundRecord, *, expected_start: str) -> None:
    """Cleaned, cut, flagged, the whole text kept."""
    assert "\x00" not in record.text and "\x07" not in record.text
    assert record.text.startswith(expected_start), record.text[:60]
    assert "\ufffd" in record.text  # the byte that was not UTF-8
    assert "\tcol\nrow" in record.text  # tab and line feed kept
    assert len(record.text) == CAP and record.truncated
    full = record.raw[FULL_TEXT_KEY]
    assert full.startswith(record.text) and full.rstrip().endswith(LONG.strip()) and "\x00" not in full


async def _import(live: LiveGateway, folder: Path) -> None:
    assert (await live.run("families", "import", str(_families(folder)), "--json")).json()["errors"] == []


async def _only_record(live: LiveGateway) -> InboundRecord:
    [record] = await live.inbound()
    return record


async def test_twilio_form_body(tmp_path: Path, db_url: str, cli: Any) -> None:
    def channels(base_url: str) -> dict[str, Any]:
        return {"sms": {"plugin": "twilio_sms", "account_sid": ACCOUNT, "auth_token": TOKEN,
                        "from_number": FROM, "api_base_url": "http://127.0.0.1:9"}}

    async with live_gateway(tmp_path / "gw", cli, channels, db_url=db_url,
                            inbound={"max_text_chars": CAP}) as live:
        await _import(live, tmp_path)
        raw_body = b"yes\x00 bell\x07 caf\xff\tcol\r\nrow " + LONG.encode()
        form = inbound_sms_form(from_=PHONE, to=FROM, body="", account_sid=ACCOUNT)
        # Twilio signs what the server decodes: the stray byte reads as U+FFFD.
        signed = {**form, "Body": raw_body.decode("utf-8", "replace")}
        url = f"{live.base_url}/webhooks/sms/inbound"
        headers = {
            "X-Twilio-Signature": sign_twilio_request(TOKEN, url, signed),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        data = urlencode({**form, "Body": raw_body})  # %00, %07, %FF as Twilio encodes them
        async with aiohttp.ClientSession() as http, http.post(url, data=data, headers=headers) as response:
            assert response.status == 200, await response.text()
        await live.gw.inbound.drain()
        record = await _only_record(live)
        _check(record, expected_start="yes bell caf\ufffd")
        assert record.classification == "free_text"


@pytest.fixture
async def telegram() -> AsyncIterator[TelegramBotAPIServer]:
    async with TelegramBotAPIServer() as server:
        yield server


async def test_telegram_update(tmp_path: Path, db_url: str, cli: Any, telegram: TelegramBotAPIServer) -> None:
    secret = "s3cret-webhook_token"

    def channels(base_url: str) -> dict[str, Any]:
        return {"telegram": {"plugin": "telegram", "token": telegram.token, "api_base_url": telegram.base_url,
                             "mode": "webhook", "webhook_secret": secret, "request_timeout": 5}}

    async with live_gateway(tmp_path / "gw", cli, channels, db_url=db_url,
                            public_base_url="https://gateway.example.org",
                            inbound={"max_text_chars": CAP}) as live:
        await _import(live, tmp_path)
        # JSON escapes: \u0000, \u0007 and a lone surrogate \udcff (not a character at all).
        update = telegram.text_message_update(CHAT, "yes\x00 bell\x07 caf\udcff\tcol\r\nrow " + LONG)
        status = await telegram.deliver_webhook(
            update, url=f"{live.base_url}/webhooks/telegram/update", secret=secret
        )
        assert status == 200
        record = await _only_record(live)
        _check(record, expected_start="yes bell caf\ufffd")
        assert record.family_id is not None


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[DovecotServer]:
    with DovecotServer(tmp_path) as server:
        yield server


async def test_email_reply(tmp_path: Path, db_url: str, cli: Any, dovecot: DovecotServer) -> None:
    def channels(base_url: str) -> dict[str, Any]:
        return {"email": {
            "plugin": "smtp_email",
            "smtp": {"host": "127.0.0.1", "port": 9, "starttls": False,
                     "from_address": "liaison@district.example", "reply_domain": "replies.district.example"},
            "imap": {"host": dovecot.host, "port": dovecot.port, "ssl": False, "idle": False,
                     "username": dovecot.user, "password": dovecot.password, "poll_seconds": 600},
        }}

    async with live_gateway(tmp_path / "gw", cli, channels, db_url=db_url,
                            inbound={"max_text_chars": CAP}) as live:
        await _import(live, tmp_path)
        body = b"yes\x00 bell\x07 caf\xff\tcol\r\nrow " + LONG.encode() + b"\r\n"
        mail = (
            b"From: Amina Yusuf <" + EMAIL.encode() + b">\r\nTo: replies@district.example\r\n"
            b"Subject: Re: bus\r\nMessage-ID: <hostile-1@families.example>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body
        )
        dovecot.deliver(mail)
        assert await live.gw.channels["email"].poll_once() == 1
        record = await _only_record(live)
        # Dovecot itself stores a NUL as the byte 0x80 (not UTF-8 either): U+FFFD here too.
        _check(record, expected_start="yes\ufffd bell caf\ufffd")
        assert dovecot.message_count(query="UNSEEN") == 0  # stored, so marked read
