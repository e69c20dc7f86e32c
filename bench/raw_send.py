"""The raw client libraries, nothing else: what ``bench/peers.py`` compares the gateway with.

Imports only the standard library and, when sending, the library itself (``aiosmtplib`` or
``twilio``), so that run as a command its start-up is what a district's own script would pay:

    .venv/bin/python bench/raw_send.py sms|email|email-starttls OUTBOX_DB PROVIDER_JSON CONNECTIONS

sends every message of the gateway's outbox (``OUTBOX_DB``, the SQLite file of a gateway that
planned them) to the provider described by ``PROVIDER_JSON`` (what ``ProviderProcess.info``
holds) over ``CONNECTIONS`` connections, then exits.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

FROM_ADDRESS = "news@lincoln.district.example"
FROM_NUMBER = "+19135550100"


def outbox_messages(database: Path) -> list[dict[str, Any]]:
    """What the gateway rendered: address, subject, text, HTML and reply token per message."""
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT id, address, subject, body, html, reply_token FROM outbox_messages ORDER BY id"
        ).fetchall()
    return [
        dict(zip(("id", "address", "subject", "body", "html", "token"), row, strict=True)) for row in rows
    ]


def stdlib_email(message: dict[str, Any]) -> EmailMessage:
    """The same e-mail with the standard library's EmailMessage (text + HTML alternative)."""
    email = EmailMessage()
    email["From"] = f"Lincoln Middle School <{FROM_ADDRESS}>"
    email["To"] = message["address"]
    email["Subject"] = message["subject"] or ""
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = f"<raw{message['id']}@lincoln.district.example>"
    email["Reply-To"] = f"reply+{message['token']}@lincoln.district.example"
    email.set_content(message["body"])
    if message["html"]:
        email.add_alternative(message["html"], subtype="html")
    return email


async def raw_email(
    info: dict[str, Any], messages: list[dict[str, Any]], connections: int, starttls: bool
) -> float:
    """aiosmtplib over ``connections`` connections, each sending its share in turn; seconds."""
    import aiosmtplib

    async def one_connection(share: list[dict[str, Any]]) -> None:
        client = aiosmtplib.SMTP(
            hostname=info["host"], port=info["port"], start_tls=starttls, validate_certs=False
        )
        await client.connect()
        for message in share:
            await client.send_message(stdlib_email(message))
        await client.quit()

    started = time.monotonic()
    await asyncio.gather(*(one_connection(messages[n::connections]) for n in range(connections)))
    return time.monotonic() - started


async def raw_sms(info: dict[str, Any], messages: list[dict[str, Any]], connections: int) -> float:
    """The ``twilio`` library's async client (its aiohttp client, ``connections`` at most in
    flight) pointed at the local server; seconds."""
    from twilio.http.async_http_client import AsyncTwilioHttpClient
    from twilio.rest import Client

    http = AsyncTwilioHttpClient(pool_connections=True)
    client = Client(info["account_sid"], info["auth_token"], http_client=http)
    client.api.base_url = info["url"]
    queue = list(messages)

    async def sender() -> None:
        while queue:
            message = queue.pop()
            await client.messages.create_async(to=message["address"], from_=FROM_NUMBER, body=message["body"])

    started = time.monotonic()
    await asyncio.gather(*(sender() for _ in range(connections)))
    elapsed = time.monotonic() - started
    await http.close()
    return elapsed


async def send(kind: str, info: dict[str, Any], messages: list[dict[str, Any]], connections: int) -> float:
    """Send ``messages`` the raw way for ``kind``; seconds from the first send to the last answer."""
    if kind == "sms":
        return await raw_sms(info, messages, connections)
    return await raw_email(info, messages, connections, kind == "email-starttls")


def main() -> None:
    """Command line (see the module doc)."""
    kind, database, provider, connections = sys.argv[1:5]
    messages = outbox_messages(Path(database))
    asyncio.run(send(kind, json.loads(provider), messages, int(connections)))


if __name__ == "__main__":
    main()
