"""Hostile e-mails through a real Dovecot while ``gateway serve`` keeps answering.

Three 100 KB replies built to be slow to parse (an endless attribution line, HTML that makes
``html.parser`` quadratic, hundreds of lines that look like quote headers) land in the IMAP
mailbox of a running ``gateway serve``. Each is stored (cut at ``inbound.max_text_chars``,
flagged) and marked read, and meanwhile ``/healthz`` keeps answering: before, the first one held
the event loop for minutes.

The bound is about the event loop not being blocked, measured from outside as the slowest of a
continuous stream of ``/healthz`` requests while the mails are processed: at most 100 ms, or
five times the slowest answer of an equally long stream just before (a shared, loaded machine
is slow for reasons of its own; a blocked loop is slower by orders of magnitude).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from gateway.storage.db import sync_url
from gateway.storage.models import InboundRecord
from gateway.testing.dovecot import DovecotServer
from gateway.testing.fakes import free_port
from gateway.testing.harness import write_config

FAMILY = "amina@families.example"
#: The slowest /healthz answer allowed while the hostile mails are parsed. Parsing on the event
#: loop froze it for 1.8 s for one mail and over 60 s for the largest; half a second leaves room
#: for a scheduling hiccup on a loaded machine (189 ms seen beside a CPU-bound process) and still
#: fails on any parse that runs on the loop.
BOUND = 0.500
MEASURE_SECONDS = 3.0

HOSTILE = {
    "endless attribution line": ("plain", "On " + "a " * 50000),
    "quadratic html": ("html", "<p>" + "<a" * 50000),
    "lines that look like headers": ("plain", ("On " + "a " * 98 + ":\n") * 500),
}


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[DovecotServer]:
    with DovecotServer(tmp_path) as server:
        yield server


def _mail(index: int, kind: str, body: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Amina Yusuf <{FAMILY}>"
    mail["To"] = "replies@district.example"
    mail["Subject"] = "Re: bus"
    mail["Message-ID"] = f"<hostile-{index}@families.example>"
    if kind == "html":
        mail.set_content(body, subtype="html")
    else:
        mail.set_content(body)
    return mail.as_bytes()


async def _latencies(base_url: str, seconds: float, until: Any = None) -> list[float]:
    """Answer times of back-to-back ``GET /healthz`` for ``seconds`` (or until ``until()``)."""
    times: list[float] = []
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline or (until is not None and not await until()):
            started = time.perf_counter()
            async with http.get(f"{base_url}/healthz") as response:
                await response.read()
                assert response.status == 200
            times.append(time.perf_counter() - started)
            if until is not None and time.monotonic() > deadline + 60:
                raise AssertionError("the hostile mails were not all processed within a minute")
    return times


async def test_hostile_mails_are_stored_while_serve_keeps_answering(
    tmp_path: Path, cli: Any, dovecot: DovecotServer
) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'gw' / 'data' / 'gateway.db'}"
    config = write_config(
        tmp_path / "gw",
        db_url,
        http={"host": "127.0.0.1", "port": port, "public_base_url": base_url},
        channels={
            "email": {
                "plugin": "smtp_email",
                "smtp": {"host": "127.0.0.1", "port": 9, "starttls": False,
                         "from_address": "liaison@district.example",
                         "reply_domain": "replies.district.example"},
                "imap": {"host": dovecot.host, "port": dovecot.port, "ssl": False, "idle": True,
                         "username": dovecot.user, "password": dovecot.password, "poll_seconds": 2},
            }
        },
    )
    families = tmp_path / "families.csv"
    families.write_text(
        "family_id,guardian_name,language,email,school,grade,student_name\n"
        f"F1,Amina Yusuf,en,{FAMILY},Lincoln,6,Ayaan\n",
        encoding="utf-8",
    )
    assert (await asyncio.to_thread(cli, ["families", "import", str(families)], config)).exit_code == 0
    log = tmp_path / "serve.log"
    serve = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("gateway")),
        "serve",
        "--config",
        str(config),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    engine = create_engine(sync_url(db_url))
    try:

        async def up() -> bool:
            try:
                async with aiohttp.ClientSession() as http, http.get(f"{base_url}/healthz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                assert serve.returncode is None, log.read_text()[-3000:]
                return False

        deadline = time.monotonic() + 60
        while not await up():
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            await asyncio.sleep(0.1)

        baseline = await _latencies(base_url, MEASURE_SECONDS)

        def processed() -> list[InboundRecord]:
            with Session(engine) as session:
                return [
                    r for r in session.scalars(select(InboundRecord)) if r.classification != "pending"
                ]

        async def all_processed() -> bool:
            return len(await asyncio.to_thread(processed)) == len(HOSTILE)

        for index, (kind, body) in enumerate(HOSTILE.values()):
            await asyncio.to_thread(dovecot.deliver, _mail(index, kind, body))
        during = await _latencies(base_url, MEASURE_SECONDS, until=all_processed)
    finally:
        serve.send_signal(signal.SIGTERM)
        await asyncio.wait_for(serve.wait(), timeout=30)
        records = processed() if "processed" in locals() else []
        engine.dispose()

    bound = max(BOUND, 5 * max(baseline))
    print(  # the figures, for docs/benchmarks.md
        f"/healthz while idle: {len(baseline)} requests, slowest {max(baseline) * 1000:.1f} ms; "
        f"while parsing the hostile mails: {len(during)} requests, slowest {max(during) * 1000:.1f} ms"
    )
    assert max(during) <= bound, (max(during), max(baseline))
    assert len(records) == len(HOSTILE)
    for record in records:
        assert record.sender == FAMILY and record.family_id is not None
        assert len(record.text) <= 4000
    assert sum(r.truncated for r in records) >= 2  # the two long plain-text ones
    assert dovecot.message_count(query="UNSEEN") == 0  # each one stored, so marked read
