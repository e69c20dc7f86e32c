"""A real SMTP server for tests and benchmarks that records what it receives.

:class:`RecordingSmtpServer` wraps :class:`aiosmtpd.controller.Controller` (its own thread and
event loop) on ``127.0.0.1`` and a free port. It keeps every accepted message (envelope and
parsed :class:`email.message.EmailMessage`), counts client connections, and injects failures
per recipient the way a real mail server answers them: ``refuse()`` → ``550 5.1.1`` at
``RCPT TO`` (permanent), ``defer()`` → ``451 4.3.0`` (temporary); ``drop_connections()`` hangs
up on every connected client, like a server closing idle sessions.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from functools import cached_property
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.testing.fakes import free_port

__all__ = ["ReceivedMail", "RecordingSmtpServer"]


@dataclass(frozen=True)
class ReceivedMail:
    """One message the server accepted (parsed on first access, to keep the server fast)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    peer: Any = None
    received_at: float = field(default_factory=time.monotonic)
    """``time.monotonic()`` when the server took the message (one clock for every process)."""

    @cached_property
    def message(self) -> EmailMessage:
        """The message parsed with ``email.policy.default``."""
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class _Failure:
    code: int
    text: str


@dataclass
class _Recorder:
    """The aiosmtpd handler: failure table in, accepted messages out."""

    failures: dict[str, _Failure] = field(default_factory=dict)
    messages: list[ReceivedMail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    hold_answers: list[float] = field(default_factory=list)
    """Seconds to wait before answering the next DATA commands (the mail is taken first)."""

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        with self.lock:
            failure = self.failures.get(address.lower())
        if failure is not None:
            return f"{failure.code} {failure.text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(envelope.content, bytes) and not raw:
            raw = envelope.content
        mail = ReceivedMail(
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=raw,
            peer=session.peer,
        )
        with self.lock:
            self.messages.append(mail)
            hold = self.hold_answers.pop(0) if self.hold_answers else None
        if hold is not None:
            await asyncio.sleep(hold)
        return "250 2.0.0 OK queued"


class _CountingSMTP(SMTP):
    """aiosmtpd's SMTP protocol, reporting each connection to its server."""

    def __init__(self, owner: RecordingSmtpServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._owner._connection_opened(transport)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner._connection_closed(self.transport)
        super().connection_lost(exc)


class _RecordingController(Controller):
    def __init__(self, owner: RecordingSmtpServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._owner = owner

    def factory(self) -> SMTP:
        return _CountingSMTP(self._owner, self.handler, **self.SMTP_kwargs)


class RecordingSmtpServer:
    """An SMTP server on 127.0.0.1 that records messages and injects per-recipient failures.

    Use as ``with RecordingSmtpServer() as smtp:`` (or ``async with``), or call :meth:`start`
    and :meth:`stop`. :attr:`messages` lists what was accepted; :attr:`connection_count` is
    how many client connections were opened since start.
    """

    def __init__(
        self, *, port: int | None = None, hostname: str = "127.0.0.1", tls_context: Any = None
    ) -> None:
        self.host = hostname
        self.port = port or free_port()
        self.tls_context = tls_context
        """An ``ssl.SSLContext``: offer (and require) STARTTLS with it."""
        self._recorder = _Recorder()
        self._lock = threading.Lock()
        self._connections = 0
        self._open: set[asyncio.BaseTransport] = set()
        self._controller: _RecordingController | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> RecordingSmtpServer:
        """Start listening (in a background thread).

        aiosmtpd logs every recipient address at INFO on its ``mail.log`` logger; that logger
        is raised to WARNING so test logs stay free of addresses like production logs.
        """
        if self._controller is not None:
            return self
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        controller = _RecordingController(
            self,
            self._recorder,
            hostname=self.host,
            port=self.port,
            server_hostname="smtp.test.local",
            ready_timeout=10,
            decode_data=False,
            enable_SMTPUTF8=True,
            **(
                {"tls_context": self.tls_context, "require_starttls": True}
                if self.tls_context is not None
                else {}
            ),
        )
        controller.start()
        self._controller = controller
        with self._lock:  # the controller's own readiness probe is not a client connection
            self._connections = 0
        return self

    def stop(self) -> None:
        """Stop listening and close every connection."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> RecordingSmtpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> RecordingSmtpServer:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- connections ---------------------------------------------------------------------

    def _connection_opened(self, transport: asyncio.BaseTransport) -> None:
        with self._lock:
            self._connections += 1
            self._open.add(transport)

    def _connection_closed(self, transport: asyncio.BaseTransport | None) -> None:
        with self._lock:
            self._open.discard(transport)  # type: ignore[arg-type]

    @property
    def connection_count(self) -> int:
        """Client connections opened since :meth:`start` (or :meth:`reset`)."""
        with self._lock:
            return self._connections

    @property
    def open_connections(self) -> int:
        """Client connections open right now."""
        with self._lock:
            return len(self._open)

    def drop_connections(self) -> None:
        """Hang up on every connected client (as a server closing idle sessions would)."""
        controller = self._controller
        if controller is None or controller.loop is None:
            return
        with self._lock:
            transports = list(self._open)
        done = threading.Event()

        def close_all() -> None:
            for transport in transports:
                transport.close()
            done.set()

        controller.loop.call_soon_threadsafe(close_all)
        done.wait(timeout=5)

    # -- failures ------------------------------------------------------------------------

    def refuse(self, address: str, code: int = 550, text: str = "5.1.1 User unknown") -> None:
        """Answer ``RCPT TO:<address>`` with a permanent failure (default ``550 5.1.1``)."""
        with self._recorder.lock:
            self._recorder.failures[address.lower()] = _Failure(code, text)

    def defer(self, address: str, code: int = 451, text: str = "4.3.0 Temporary failure, try later") -> None:
        """Answer ``RCPT TO:<address>`` with a temporary failure (default ``451 4.3.0``)."""
        with self._recorder.lock:
            self._recorder.failures[address.lower()] = _Failure(code, text)

    def lose_answer_next(self, seconds: float = 30.0) -> None:
        """Take the next message, then hold the answer to its DATA for ``seconds``: the client
        times out although the server has the mail (delivery unknown)."""
        with self._recorder.lock:
            self._recorder.hold_answers.append(seconds)

    def accept(self, address: str) -> None:
        """Stop refusing or deferring ``address``."""
        with self._recorder.lock:
            self._recorder.failures.pop(address.lower(), None)

    # -- records -------------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMail]:
        """Every accepted message, in arrival order (a copy)."""
        with self._recorder.lock:
            return list(self._recorder.messages)

    def messages_to(self, address: str) -> list[ReceivedMail]:
        """Accepted messages whose envelope recipients include ``address``."""
        wanted = address.lower()
        return [m for m in self.messages if wanted in (r.lower() for r in m.rcpt_tos)]

    def reset(self) -> None:
        """Forget recorded messages and the connection count (failures stay)."""
        with self._recorder.lock:
            self._recorder.messages.clear()
        with self._lock:
            self._connections = 0
