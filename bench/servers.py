"""Provider servers for the benchmarks, each in a process of its own (so the provider does not
share the gateway's interpreter lock or event loop), driven over a pipe.

    with ProviderProcess("twilio", latency=0.02) as provider:
        info = provider.info          # port, credentials
        ...
        figures = provider.ask("stats")
        held, first, last = provider.ask("progress")   # cheap to poll; monotonic arrival times

Kinds: ``smtp`` (:class:`~gateway.testing.smtp_server.RecordingSmtpServer`; ``starttls=True``
offers and requires STARTTLS with a throwaway self-signed certificate), ``twilio``
(:class:`~gateway.testing.twilio_server.FakeTwilioServer`, optional fixed ``latency`` per
message creation) and ``telegram``
(:class:`~gateway.testing.telegram_server.TelegramBotAPIServer`).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import ssl
import subprocess
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

__all__ = ["ProviderProcess"]


def _twilio_class(latency: float) -> type:
    from gateway.testing.twilio_server import FakeTwilioServer

    class SlowTwilioServer(FakeTwilioServer):
        """Answers every message creation after ``latency`` seconds, recording arrival times."""

        arrivals: list[float]
        peers: set[Any]

        async def _create_message(self, request: web.Request) -> web.StreamResponse:
            self.arrivals.append(time.monotonic())
            if request.transport is not None:
                self.peers.add(request.transport.get_extra_info("peername"))
            if latency:
                await asyncio.sleep(latency)
            return await super()._create_message(request)

    return SlowTwilioServer


def _self_signed_context(folder: Path) -> ssl.SSLContext:
    """A server TLS context with a throwaway self-signed certificate (made with ``openssl``)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def _smtp_server(starttls: bool) -> Any:
    """A RecordingSmtpServer, offering (and requiring) STARTTLS when asked."""
    from gateway.testing.smtp_server import RecordingSmtpServer

    context = _self_signed_context(Path(tempfile.mkdtemp())) if starttls else None
    return RecordingSmtpServer(tls_context=context).start()


async def _serve(kind: str, options: dict[str, Any], conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    if kind == "smtp":
        smtp = _smtp_server(bool(options.get("starttls")))
        conn.send({"host": smtp.host, "port": smtp.port})

        def stats() -> dict[str, Any]:
            messages = smtp.messages
            recipients = Counter(r for m in messages for r in m.rcpt_tos)
            return {
                "messages": len(messages),
                "connections": smtp.connection_count,
                "duplicates": sum(n - 1 for n in recipients.values()),
            }

        def progress() -> tuple[int, float | None, float | None]:
            messages = smtp.messages
            if not messages:
                return 0, None, None
            return len(messages), messages[0].received_at, messages[-1].received_at

        def reset() -> None:
            smtp.reset()

        async def stop() -> None:
            smtp.stop()

    elif kind == "twilio":
        twilio = _twilio_class(float(options.get("latency", 0.0)))()
        twilio.arrivals = []
        twilio.peers = set()
        await twilio.start()
        conn.send({"url": twilio.url, "account_sid": twilio.account_sid, "auth_token": twilio.auth_token})

        def stats() -> dict[str, Any]:
            bodies = Counter((m.to, m.body) for m in twilio.messages)
            return {
                "messages": len(twilio.messages),
                "requests": twilio.requests,
                "duplicates": sum(n - 1 for n in bodies.values()),
                "arrivals": list(twilio.arrivals),
                "connections": len(twilio.peers),
            }

        def progress() -> tuple[int, float | None, float | None]:
            arrivals = twilio.arrivals
            if not arrivals:
                return 0, None, None
            return len(twilio.messages), arrivals[0], arrivals[-1]

        def reset() -> None:
            twilio.messages.clear()
            twilio.by_sid.clear()
            twilio.arrivals.clear()
            twilio.peers.clear()
            twilio.requests = 0

        stop = twilio.stop
    elif kind == "telegram":
        from gateway.testing.telegram_server import TelegramBotAPIServer

        telegram = TelegramBotAPIServer()
        await telegram.start()
        conn.send({"base_url": telegram.base_url, "token": telegram.token})

        def stats() -> dict[str, Any]:
            sent = telegram.all_sent
            return {
                "messages": len(sent),
                "arrivals": [(m.chat_id, m.at) for m in sent],
                "duplicates": sum(n - 1 for n in Counter(m.text for m in sent).values()),
            }

        def progress() -> tuple[int, float | None, float | None]:
            sent = telegram.all_sent
            return len(sent), (sent[0].at if sent else None), (sent[-1].at if sent else None)

        def reset() -> None:
            telegram.sent.clear()
            telegram.calls.clear()

        stop = telegram.stop
    else:
        raise ValueError(f"unknown provider kind {kind!r}")
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "stats":
            conn.send(stats())
        elif command == "progress":  # cheap enough to poll: (messages, first, last arrival)
            conn.send(progress())
        elif command == "reset":
            reset()
            conn.send(True)
        else:
            await stop()
            conn.send(True)
            return


def _child(kind: str, options: dict[str, Any], conn: Connection) -> None:
    asyncio.run(_serve(kind, options, conn))


class ProviderProcess:
    """One provider server in a child process; ``info`` says where it listens."""

    def __init__(self, kind: str, **options: Any) -> None:
        self.kind = kind
        self.options = options
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(target=_child, args=(kind, options, child_conn), daemon=True)
        self.info: dict[str, Any] = {}

    def start(self) -> ProviderProcess:
        """Start the child and wait until it listens."""
        self._process.start()
        if not self._conn.poll(60):
            raise RuntimeError(f"the {self.kind} provider process did not start")
        self.info = self._conn.recv()
        return self

    def ask(self, command: str) -> Any:
        """``stats`` (a dict of figures) or ``reset``."""
        self._conn.send(command)
        return self._conn.recv()

    def stop(self) -> None:
        """Stop the server and the child."""
        if self._process.is_alive():
            try:
                self._conn.send("stop")
                self._conn.poll(10)
            except (BrokenPipeError, EOFError):
                pass
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)

    def __enter__(self) -> ProviderProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
