"""Webhooks never lose what they accepted: the database is made unavailable while signed Twilio
replies and delivery reports arrive — an SQLite file locked by another connection, PostgreSQL
connections killed and the server made unreachable — and every webhook is answered with
success (spooled when the database cannot take it in time); after recovery every reply is
stored and processed once and every report applied once. A restart of ``gateway serve`` with a
non-empty spool replays it at start-up."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from e2e_support import LiveGateway, live_gateway, write_event, write_families
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from gateway.storage.db import sync_url
from gateway.storage.models import StatusEvent
from gateway.testing.services import postgres_url
from gateway.testing.tcp_proxy import TcpProxy
from gateway.testing.twilio_server import FakeTwilioServer, inbound_sms_form, sign_twilio_request

FROM = "+18165550100"
PHONES = [f"+1913555{2000 + i:04d}" for i in range(5)]
OUTAGE = {"store_deadline_seconds": 0.5, "replay_max_backoff_seconds": 0.5}


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilioServer]:
    server = await FakeTwilioServer().start()
    try:
        yield server
    finally:
        await server.stop()


def _channels(twilio: FakeTwilioServer) -> Callable[[str], dict[str, Any]]:
    def channels(base_url: str) -> dict[str, Any]:
        return {
            "sms": {
                "plugin": "twilio_sms",
                "account_sid": twilio.account_sid,
                "auth_token": twilio.auth_token,
                "from_number": FROM,
                "api_base_url": twilio.url,
                "timeout": 10,
            }
        }

    return channels


async def _invite(live: LiveGateway, tmp_path: Path) -> list[str]:
    """Five families get an invitation; the SIDs Twilio gave the messages."""
    families = write_families(
        tmp_path / "families.csv",
        [
            {"family_id": f"F{i}", "guardian_name": f"Parent {i}", "language": "en", "phone": phone,
             "preferred_channel": "sms", "student_name": f"Kid {i}"}
            for i, phone in enumerate(PHONES)
        ],
    )
    assert (await live.run("families", "import", str(families), "--json")).json()["errors"] == []
    event = write_event(tmp_path)
    sent = (
        await live.run("broadcast", "send", "workshop_invitation", "--event", str(event), "--json")
    ).json()
    assert sent["messages"] == len(PHONES)
    await live.drain()
    return [m.provider_message_id for m in await live.outbox()]


@asynccontextmanager
async def _serving(live: LiveGateway) -> AsyncIterator[None]:
    """What ``gateway serve`` runs besides the web app: spool replay and reply processing."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(live.gw.intake.run(stop)),
        asyncio.create_task(live.gw.inbound.run_processor(stop)),
    ]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


class Webhooks:
    """Posts signed Twilio webhooks to the live gateway, each twice (Twilio retries)."""

    def __init__(self, live: LiveGateway, twilio: FakeTwilioServer) -> None:
        self.live = live
        self.twilio = twilio
        self.replies: list[str] = []
        self.answers: list[int] = []

    async def _post(self, http: aiohttp.ClientSession, action: str, form: dict[str, str]) -> int:
        url = f"{self.live.base_url}/webhooks/sms/{action}"
        headers = {"X-Twilio-Signature": sign_twilio_request(self.twilio.auth_token, url, form)}
        async with http.post(url, data=form, headers=headers) as response:
            return response.status

    async def burst(self, label: str, sids: list[str], during: Awaitable[Any] | None = None) -> None:
        """One reply from each family and a ``delivered`` report for each message, all twice,
        concurrently (with ``during`` running meanwhile)."""
        posts = []
        async with aiohttp.ClientSession() as http:
            for index, phone in enumerate(PHONES):
                sid = f"SM{label}{index:0{32 - len(label)}d}"
                self.replies.append(sid)
                form = inbound_sms_form(from_=phone, to=FROM, body=f"question {label} {index}",
                                        account_sid=self.twilio.account_sid, message_sid=sid)
                posts += [self._post(http, "inbound", form)] * 2
            for sid in sids:
                form = self.twilio.status_callback_form(self.twilio.by_sid[sid], "delivered")
                posts += [self._post(http, "status", form)] * 2
            results = await asyncio.gather(*posts, *([during] if during else []))
        self.answers += list(results[: len(posts)])


async def _until(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.05)


async def _everything_applied_once(live: LiveGateway, hooks: Webhooks, sids: list[str]) -> None:
    """Every reply stored and processed once, every report applied once, the spool empty."""

    async def settled() -> bool:
        records = await live.inbound()
        messages = await live.outbox(broadcast_id=1)
        return (
            not live.gw.intake.spool.has_records()
            and len(records) == len(hooks.replies)
            and all(r.classification != "pending" for r in records)
            and all(m.status == "delivered" for m in messages)
        )

    await _until(settled, "replay and processing after recovery")
    records = await live.inbound()
    assert sorted(r.provider_message_id for r in records) == sorted(hooks.replies)  # each once
    assert not {r.classification for r in records} & {"pending", "failed"}  # each processed
    async with live.gw.db.session() as session:
        for message in await live.outbox(broadcast_id=1):
            history = list(
                await session.scalars(
                    select(StatusEvent.status)
                    .where(StatusEvent.message_id == message.id)
                    .order_by(StatusEvent.id)
                )
            )
            assert history == ["sent", "delivered"], (message.provider_message_id, history)
    assert {m.provider_message_id for m in await live.outbox(broadcast_id=1)} == set(sids)
    assert set(hooks.answers) <= {200, 204}, hooks.answers


async def test_locked_sqlite_file_spools_webhooks_and_replays_them_once(
    tmp_path: Path, cli: Any, twilio: FakeTwilioServer
) -> None:
    db_file = tmp_path / "db" / "gateway.db"
    async with live_gateway(
        tmp_path / "gw", cli, _channels(twilio), db_url=f"sqlite+aiosqlite:///{db_file}",
        intake=OUTAGE, database={"busy_timeout_seconds": 2},
    ) as live:
        sids = await _invite(live, tmp_path)
        hooks = Webhooks(live, twilio)
        async with _serving(live):
            # Another program holds the write lock (WAL: readers still read, writers wait).
            blocker = sqlite3.connect(db_file, isolation_level=None, timeout=0)
            blocker.execute("BEGIN EXCLUSIVE")
            try:
                await hooks.burst("L", sids)
                assert hooks.answers and set(hooks.answers) <= {200, 204}, hooks.answers
                assert live.gw.intake.spool.has_records()  # what the database could not take
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            await _everything_applied_once(live, hooks, sids)
        metrics = await _metrics(live)
        assert metrics[("gateway_intake_spooled_total", (("kind", "inbound"),))] >= 1
        assert metrics[("gateway_intake_spooled_total", (("kind", "status"),))] >= 1
        assert metrics[("gateway_intake_spool_records", ())] == 0


async def _metrics(live: LiveGateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` parsed: (sample name, sorted labels) → value."""
    from prometheus_client.parser import text_string_to_metric_families

    async with aiohttp.ClientSession() as http, http.get(f"{live.base_url}/metrics") as response:
        body = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def _proxied(url: str, proxy: TcpProxy) -> str:
    proxied = make_url(url).difference_update_query(["host", "port"]).set(host="127.0.0.1", port=proxy.port)
    return proxied.render_as_string(hide_password=False)


def _upstream(url: str) -> tuple[str, int]:
    """Where the proxy forwards to: the server's TCP address, or the file of its Unix socket
    (a URL with a socket folder as host, or ``?host=/folder``, as a throwaway server has)."""
    parsed = make_url(url)
    host = parsed.host or str(parsed.query.get("host") or "/var/run/postgresql")
    port = parsed.port or int(str(parsed.query.get("port") or 5432))
    if host.startswith("/"):
        return f"{host}/.s.PGSQL.{port}", port
    return host, port


async def test_postgresql_connections_killed_and_server_unreachable(
    tmp_path: Path, cli: Any, twilio: FakeTwilioServer, pg_template: str
) -> None:
    from gateway.testing.harness import clone_pg_database, drop_pg_database

    url = await clone_pg_database(pg_template)
    parsed = make_url(url)
    proxy = await TcpProxy(*_upstream(url)).start()
    admin = await asyncpg.connect(postgres_url())
    try:
        async with live_gateway(
            tmp_path / "gw", cli, _channels(twilio), db_url=_proxied(url, proxy), intake=OUTAGE
        ) as live:
            sids = await _invite(live, tmp_path)
            hooks = Webhooks(live, twilio)
            async with _serving(live):

                async def kill_backends() -> None:
                    await asyncio.sleep(0.01)
                    await admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = $1 AND pid <> pg_backend_pid()",
                        parsed.database,
                    )

                # Connections killed while the webhooks arrive.
                await hooks.burst("K", sids, during=kill_backends())
                # The server unreachable: connections dropped, new ones refused.
                await proxy.cut()
                try:
                    await hooks.burst("U", sids)
                    assert live.gw.intake.spool.has_records()
                finally:
                    await proxy.restore()
                await _everything_applied_once(live, hooks, sids)
    finally:
        await admin.close()
        await proxy.stop()
        await drop_pg_database(url)


async def test_serve_replays_a_non_empty_spool_at_start(
    tmp_path: Path, cli: Any, twilio: FakeTwilioServer
) -> None:
    db_file = tmp_path / "db" / "gateway.db"
    db_url = f"sqlite+aiosqlite:///{db_file}"
    async with live_gateway(
        tmp_path / "gw", cli, _channels(twilio), db_url=db_url,
        intake=OUTAGE, database={"busy_timeout_seconds": 1},
    ) as live:
        sids = await _invite(live, tmp_path)
        hooks = Webhooks(live, twilio)
        blocker = sqlite3.connect(db_file, isolation_level=None, timeout=0)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            await hooks.burst("R", sids)
        finally:
            spooled = live.gw.intake.spool.count()
            blocker.execute("ROLLBACK")
            blocker.close()
        config = live.config
    # The gateway above stopped with replies and reports in its spool (nothing replayed them).
    assert spooled >= 1
    log = tmp_path / "serve.log"
    stored, deliveries = await asyncio.to_thread(
        _serve_until_settled, config, db_url, log, len(hooks.replies), len(sids)
    )
    assert stored == (len(hooks.replies), len(hooks.replies))  # each reply once
    assert deliveries == len(sids)  # each report applied once
    assert "replayed" in log.read_text()


def _serve_until_settled(
    config: Path, db_url: str, log: Path, replies: int, delivered: int
) -> tuple[tuple[int, int], int]:
    """Run ``gateway serve`` until ``replies`` replies are processed and ``delivered`` messages
    delivered; (distinct reply ids, reply rows) and the number of ``delivered`` events."""
    engine = create_engine(sync_url(db_url))
    gateway_bin = Path(sys.executable).with_name("gateway")
    serve = subprocess.Popen(
        [str(gateway_bin), "serve", "--config", str(config)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with engine.connect() as conn:
                done = conn.execute(
                    text("SELECT count(*) FROM inbound_messages WHERE classification <> 'pending'")
                ).scalar()
                sent = conn.execute(
                    text("SELECT count(*) FROM outbox_messages WHERE status = 'delivered'")
                ).scalar()
            if done == replies and sent == delivered:
                break
            assert serve.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                text("SELECT count(DISTINCT provider_message_id), count(*) FROM inbound_messages")
            ).one()
            deliveries = conn.execute(
                text("SELECT count(*) FROM message_status_events WHERE status = 'delivered'")
            ).scalar()
    finally:
        engine.dispose()
    return (int(stored[0]), int(stored[1])), int(deliveries or 0)


async def test_imap_replies_read_while_the_database_is_locked_are_spooled_then_stored(
    tmp_path: Path, cli: Any
) -> None:
    from gateway.testing.dovecot import DovecotServer

    db_file = tmp_path / "db" / "gateway.db"
    with DovecotServer(tmp_path) as dovecot:

        def channels(base_url: str) -> dict[str, Any]:
            return {"email": {
                "plugin": "smtp_email",
                "smtp": {"host": "127.0.0.1", "port": 9, "starttls": False,
                         "from_address": "liaison@district.example",
                         "reply_domain": "replies.district.example"},
                "imap": {"host": dovecot.host, "port": dovecot.port, "ssl": False, "idle": False,
                         "username": dovecot.user, "password": dovecot.password, "poll_seconds": 600},
            }}

        async with live_gateway(
            tmp_path / "gw", cli, channels, db_url=f"sqlite+aiosqlite:///{db_file}",
            intake=OUTAGE, database={"busy_timeout_seconds": 1},
        ) as live:
            blocker = sqlite3.connect(db_file, isolation_level=None, timeout=0)
            blocker.execute("BEGIN EXCLUSIVE")
            try:
                for index in range(3):
                    dovecot.deliver(
                        b"From: Amina <amina@families.example>\r\nTo: replies@district.example\r\n"
                        b"Subject: Re: bus\r\nMessage-ID: <outage-%d@families.example>\r\n\r\n"
                        b"Question %d about the bus\r\n" % (index, index)
                    )
                # This poll, or the channel's own first one, reads them.
                await live.gw.channels["email"].poll_once()

                async def all_read() -> bool:
                    return dovecot.message_count(query="UNSEEN") == 0

                # Spooled, so marked read: a restart does not read (or hang on) them again.
                await _until(all_read, "the mails were not marked read while the database was locked")
                assert live.gw.intake.spool.count() >= 1
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            async with _serving(live):

                async def stored() -> bool:
                    records = await live.inbound()
                    return len(records) == 3 and all(r.classification != "pending" for r in records)

                await _until(stored, "the spooled mails were not stored after the lock went")
            assert sorted(r.provider_message_id for r in await live.inbound()) == [
                f"<outage-{i}@families.example>" for i in range(3)
            ]
