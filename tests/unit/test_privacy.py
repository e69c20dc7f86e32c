"""One masking function for addresses, one scrubbing function for text from outside the gateway,
and log records scrubbed as they are created (tracebacks included)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import aiosmtplib
import pytest
from sqlalchemy import text
from twilio.base.exceptions import TwilioRestException

from gateway import mask_address, scrub
from gateway.logs import install_scrubbing
from gateway.privacy import register_secret
from gateway.storage.db import Database


def test_mask_address_keeps_enough_to_tell_apart() -> None:
    assert mask_address("amina.yusuf@families.example") == "a***@families.example"
    assert mask_address("+19135550101") == "+1******0101"
    assert mask_address("5550001001") == "55****1001"  # a Telegram chat id
    assert mask_address("-100123456") == "-1****3456"
    assert mask_address("9135550") == "9****50"
    assert mask_address("552206") == "******"
    assert mask_address(None) == "-"
    assert mask_address("") == "-"


@pytest.mark.parametrize(
    ("raw", "gone", "kept"),
    [
        # Twilio's own messages quote the number.
        (
            str(
                TwilioRestException(
                    400,
                    "/Messages.json",
                    "The 'To' number +19135550101 is not a valid phone number.",
                    21211,
                    "POST",
                )
            ),
            ["+19135550101"],
            ["+1******0101", "not a valid phone number"],
        ),
        # aiosmtplib's refusal quotes the address.
        (
            str(
                aiosmtplib.SMTPRecipientRefused(
                    550, "5.1.1 <maria.h@example.net>: Recipient address rejected", "maria.h@example.net"
                )
            ),
            ["maria.h@example.net"],
            ["m***@example.net", "550"],
        ),
        # National formats and bare digits.
        ("call (913) 555-0101 or 913-555-0109 or 9135550177", ["555-0101", "555-0109", "9135550177"], []),
        # A Telegram bot URL carries the token.
        (
            "POST https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage",
            ["AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"],
            ["/sendMessage"],
        ),
        ("Authorization: Basic QUMxMjM6c2VjcmV0dG9rZW4=", ["QUMxMjM6c2VjcmV0dG9rZW4="], ["Basic"]),
        ("postgresql://gateway:hunter2hunter2@db:5432/gw", ["hunter2hunter2"], ["gateway:", "@db:5432"]),
        (
            "auth_token=0123456789abcdef0123456789abcdef",
            ["0123456789abcdef0123456789abcdef"],
            ["auth_token="],
        ),
        # What must stay: SIDs, dates, times, small numbers.
        (
            "message SM0123456789abcdef0123456789abcdef at 2026-12-01 10:42:07, 3 segments",
            [],
            ["SM0123456789abcdef0123456789abcdef", "2026-12-01 10:42:07", "3 segments"],
        ),
    ],
)
def test_scrub_masks_addresses_and_removes_secrets(raw: str, gone: list[str], kept: list[str]) -> None:
    cleaned = scrub(raw)
    for value in gone:
        assert value not in cleaned, cleaned
    for value in kept:
        assert value in cleaned, cleaned


def test_registered_secrets_are_removed_wherever_they_appear() -> None:
    register_secret("correct-horse-battery")
    assert scrub("login with correct-horse-battery failed") == "login with [secret] failed"
    register_secret("abc")  # too short to register: it would match ordinary words
    assert scrub("abc") == "abc"


@pytest.fixture
def scrubbed_logging() -> Iterator[list[logging.LogRecord]]:
    saved = logging.getLogRecordFactory()
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger = logging.getLogger("gateway.test.privacy")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    install_scrubbing()
    yield records
    logging.setLogRecordFactory(saved)
    logger.removeHandler(handler)


def test_records_are_scrubbed_as_they_are_created(scrubbed_logging: list[logging.LogRecord]) -> None:
    log = logging.getLogger("gateway.test.privacy")
    try:
        raise aiosmtplib.SMTPRecipientRefused(550, "5.1.1 unknown <fatima@example.net>", "fatima@example.net")
    except aiosmtplib.SMTPException:
        log.exception("sending to %s failed", "fatima@example.net")
    [record] = scrubbed_logging
    formatted = logging.Formatter().format(record)
    assert "fatima@example.net" not in formatted
    assert "f***@example.net" in formatted and "SMTPRecipientRefused" in formatted
    assert record.exc_info is None  # no handler can format the raw exception again


async def test_sql_parameters_never_reach_logs_or_errors(
    tmp_path,
    scrubbed_logging: list[logging.LogRecord],  # type: ignore[no-untyped-def]
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", echo=True)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (address TEXT UNIQUE)"))
            await conn.execute(text("INSERT INTO t VALUES (:a)"), {"a": "amina@example.net"})
        with pytest.raises(Exception) as caught:
            async with db.engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (:a)"), {"a": "amina@example.net"})
        assert "amina@example.net" not in str(caught.value)
        assert "hidden" in str(caught.value)
    finally:
        await db.close()
