"""No personal data in any log at any level: a whole send-and-reply cycle on SMS (local Twilio),
e-mail (aiosmtpd + Dovecot) and Telegram (local Bot API) with ``logging.level: DEBUG`` and
``database.echo: true``, every record of every logger captured at the root, and not one full
phone number, e-mail address, chat id, message body or secret in any of them."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from e2e_support import LiveGateway, live_gateway, write_families

from gateway.logs import QUIET_LOGGERS, configure_logging
from gateway.testing.dovecot import DovecotServer
from gateway.testing.smtp_server import RecordingSmtpServer
from gateway.testing.telegram_server import TelegramBotAPIServer
from gateway.testing.twilio_server import FakeTwilioServer, inbound_sms_form, sign_twilio_request

FROM_NUMBER = "+18165550100"
MARIA_PHONE = "+19135550101"
BAD_PHONE = "+19135550188"  # Twilio answers 21211, quoting the number
SARAH_EMAIL = "sarah.johnson@example.net"
REFUSED_EMAIL = "no.such.person@example.net"  # the SMTP server answers 550, quoting the address
BARAKA_CHAT = 5550004242
SECRET = "webhook-s3cret-value_42"
PUBLIC = "https://gateway.example.org"

#: Words that appear only inside message bodies: the event's text and the families' replies.
BODY_MARKERS = ("Quokka", "wombat-sandwich", "PANGOLIN", "narwhal", "AXOLOTL")


@pytest.fixture
def smtp_server() -> Iterator[RecordingSmtpServer]:
    with RecordingSmtpServer() as server:
        yield server


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[DovecotServer]:
    with DovecotServer(tmp_path) as server:
        yield server


class _Everything(logging.Handler):
    """Keeps every record that reaches the root, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.records: list[tuple[logging.LogRecord, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record, self.format(record)))


@pytest.fixture
def captured() -> Iterator[_Everything]:
    """Root at DEBUG with a handler that keeps everything; logging restored afterwards."""
    root = logging.getLogger()
    saved = (root.level, root.handlers[:], logging.getLogRecordFactory())
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    handler = _Everything()
    yield handler
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    logging.setLogRecordFactory(saved[2])
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _channels(
    twilio: FakeTwilioServer,
    smtp: RecordingSmtpServer,
    dovecot: DovecotServer,
    telegram: TelegramBotAPIServer,
) -> Callable[[str], dict[str, Any]]:
    def channels(base_url: str) -> dict[str, Any]:
        return {
            "sms": {
                "plugin": "twilio_sms",
                "account_sid": twilio.account_sid,
                "auth_token": twilio.auth_token,
                "from_number": FROM_NUMBER,
                "api_base_url": twilio.url,
                "timeout": 5,
            },
            "email": {
                "plugin": "smtp_email",
                "smtp": {
                    "host": "127.0.0.1",
                    "port": smtp.port,
                    "starttls": False,
                    "from_address": "liaison@district.example",
                    "reply_domain": "replies.district.example",
                    "timeout": 5,
                },
                "imap": {
                    "host": dovecot.host,
                    "port": dovecot.port,
                    "ssl": False,
                    "idle": False,
                    "username": dovecot.user,
                    "password": dovecot.password,
                    "poll_seconds": 600,
                    "timeout": 5,
                },
            },
            "telegram": {
                "plugin": "telegram",
                "token": telegram.token,
                "api_base_url": telegram.base_url,
                "mode": "webhook",
                "webhook_secret": SECRET,
                "rate_per_recipient_per_second": 50,
                "request_timeout": 5,
            },
        }

    return channels


def _event(folder: Path) -> Path:
    from datetime import UTC, datetime, timedelta

    start = (datetime.now(UTC) + timedelta(days=21)).replace(microsecond=0, second=0)
    data = {
        "id": "quokka-night",
        "title": "Quokka Reading Night",
        "description": "Bring a wombat-sandwich for the whole family.",
        "school": "Lincoln",
        "place": "Library",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "audience": "school:Lincoln",
        "rsvp": True,
        "reminders": [],
    }
    path = folder / "event.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _email_reply(original: EmailMessage, text: str) -> bytes:
    reply = EmailMessage()
    reply["From"] = SARAH_EMAIL
    reply["To"] = str(original["Reply-To"])
    reply["Subject"] = "Re: " + str(original["Subject"])
    reply["In-Reply-To"] = str(original["Message-ID"])
    reply.set_content(text)
    return bytes(reply)


def _forbidden(
    twilio: FakeTwilioServer, telegram: TelegramBotAPIServer, dovecot: DovecotServer
) -> dict[str, str]:
    """What must not appear in any log line, by what it is."""
    found: dict[str, str] = {}
    for number in (MARIA_PHONE, BAD_PHONE):
        digits = number[2:]
        found[number] = "phone"
        found[digits] = "phone (national digits)"
        found[f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"] = "phone (formatted)"
        found[f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"] = "phone (formatted)"
        found[f"{digits[:3]} {digits[3:6]} {digits[6:]}"] = "phone (formatted)"
    for address in (SARAH_EMAIL, REFUSED_EMAIL):
        found[address] = "e-mail address"
    found[str(BARAKA_CHAT)] = "Telegram chat id"
    for marker in BODY_MARKERS:
        found[marker] = "message body"
    found[twilio.auth_token] = "Twilio auth token"
    found[telegram.token] = "Telegram bot token"
    found[telegram.token.split(":", 1)[1]] = "Telegram bot token"
    found[SECRET] = "Telegram webhook secret"
    found[dovecot.password] = "IMAP password"
    return found


async def test_a_debug_log_of_a_whole_cycle_holds_no_personal_data(
    tmp_path: Path, cli: Any, smtp_server: RecordingSmtpServer, dovecot: DovecotServer, captured: _Everything
) -> None:
    twilio = await FakeTwilioServer().start()
    try:
        async with TelegramBotAPIServer() as telegram:
            await _cycle(tmp_path, cli, twilio, smtp_server, dovecot, telegram, captured)
            forbidden = _forbidden(twilio, telegram, dovecot)
    finally:
        await twilio.stop()

    assert len(captured.records) > 200
    levels = {record.levelno for record, _ in captured.records}
    assert logging.DEBUG in levels and logging.INFO in levels
    # database.echo is on: statements are logged, their parameters never.
    statements = [text for record, text in captured.records if record.name.startswith("sqlalchemy.engine")]
    assert any("INSERT INTO outbox_messages" in text for text in statements)
    leaks = [
        f"{what} {value!r} in {record.name}: {text[:300]}"
        for record, text in captured.records
        for value, what in forbidden.items()
        if value in text
    ]
    assert leaks == []
    # Masked forms are there instead, enough to tell records apart.
    assert any(re.search(r"\+1\*{6}0101", text) for _, text in captured.records)


async def _cycle(
    tmp_path: Path,
    cli: Any,
    twilio: FakeTwilioServer,
    smtp: RecordingSmtpServer,
    dovecot: DovecotServer,
    telegram: TelegramBotAPIServer,
    captured: _Everything,
) -> None:
    channels = _channels(twilio, smtp, dovecot, telegram)
    async with live_gateway(tmp_path / "gw", cli, channels, public_base_url=PUBLIC) as live:
        # As `gateway serve` does at start, with logging.level DEBUG and database.echo on.
        config = live.gw.config.model_copy(
            update={
                "logging": live.gw.config.logging.model_copy(update={"level": "DEBUG"}),
            }
        )
        configure_logging(config.logging, sql_echo=True)
        logging.getLogger().addHandler(captured)
        await _run_cycle(live, tmp_path, twilio, smtp, dovecot, telegram)


async def _run_cycle(
    live: LiveGateway,
    tmp_path: Path,
    twilio: FakeTwilioServer,
    smtp: RecordingSmtpServer,
    dovecot: DovecotServer,
    telegram: TelegramBotAPIServer,
) -> None:
    families = write_families(
        tmp_path / "families.csv",
        [
            {
                "family_id": "P1",
                "guardian_name": "Maria Hernandez",
                "language": "es",
                "phone": "(913) 555-0101",
                "preferred_channel": "sms",
                "student_name": "Sofia",
            },
            {
                "family_id": "P2",
                "guardian_name": "Aung Htay",
                "language": "en",
                "phone": "913 555 0188",
                "preferred_channel": "sms",
                "student_name": "Thiri",
            },
            {
                "family_id": "P3",
                "guardian_name": "Sarah Johnson",
                "language": "en",
                "email": SARAH_EMAIL,
                "preferred_channel": "email",
                "student_name": "Emma",
            },
            {
                "family_id": "P4",
                "guardian_name": "Nobody Here",
                "language": "en",
                "email": REFUSED_EMAIL,
                "preferred_channel": "email",
                "student_name": "Kid",
            },
            {
                "family_id": "P5",
                "guardian_name": "Baraka Mwangi",
                "language": "sw",
                "telegram_chat_id": str(BARAKA_CHAT),
                "preferred_channel": "telegram",
                "student_name": "Neema",
            },
        ],
    )
    imported = (await live.run("families", "import", str(families), "--json")).json()
    assert imported["errors"] == []
    twilio.fail_for(
        BAD_PHONE, 400, 21211, message=f"The 'To' number {BAD_PHONE} is not a valid phone number."
    )
    smtp.refuse(REFUSED_EMAIL, 550, f"5.1.1 <{REFUSED_EMAIL}>: Recipient address rejected")
    sent = (
        await live.run("broadcast", "send", "workshop_invitation", "--event", str(_event(tmp_path)), "--json")
    ).json()
    assert sent["messages"] == 5
    await live.drain()

    # SMS: delivered report, then Maria's signed reply.
    [maria_sms] = [m for m in twilio.messages if m.to == MARIA_PHONE]
    assert "Quokka" in maria_sms.body
    assert await twilio.post_status_callbacks(maria_sms.sid, ["sent", "delivered"], via=live.base_url) == [
        204,
        204,
    ]
    reply = inbound_sms_form(
        from_=MARIA_PHONE, to=FROM_NUMBER, body="1 PANGOLIN vamos todos", account_sid=twilio.account_sid
    )
    signature = sign_twilio_request(twilio.auth_token, f"{PUBLIC}/webhooks/sms/inbound", reply)
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{live.base_url}/webhooks/sms/inbound", data=reply, headers={"X-Twilio-Signature": signature}
        ) as answer:
            assert answer.status == 200

    # E-mail: Sarah replies through the IMAP mailbox.
    [sarah_mail] = smtp.messages_to(SARAH_EMAIL)
    dovecot.deliver(_email_reply(sarah_mail.message, "Yes! narwhal costume ready.\n"))
    assert await live.gw.channel("email").poll_once() == 1

    # Telegram: Baraka got the invitation; he answers by text.
    assert "Quokka" in telegram.sent[str(BARAKA_CHAT)][-1].text
    update = telegram.text_message_update(BARAKA_CHAT, "AXOLOTL: tutakuja wote")
    status = await telegram.deliver_webhook(
        update, url=f"{live.base_url}/webhooks/telegram/update", secret=SECRET
    )
    assert status == 200
    await live.drain()
    texts = sorted(record.text for record in await live.inbound())
    assert len(texts) == 3 and any("PANGOLIN" in t for t in texts)
