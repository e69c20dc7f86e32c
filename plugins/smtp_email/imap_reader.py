"""Reading replies and bounces from an IMAP mailbox (imap_tools, in a worker thread).

:class:`ImapMailboxReader` fetches UNSEEN mail without marking it, hands each raw message to an
async handler, and only then flags it ``\\Seen`` (or moves it to ``processed_folder``), so a
crash or restart never loses a reply and never reads a handled one twice. :meth:`run` polls
forever, waiting with IMAP IDLE between polls when the server offers it.
"""

from __future__ import annotations

import asyncio
import imaplib
import logging
import threading
import time
from collections.abc import Awaitable, Callable

from imap_tools import AND, BaseMailBox, MailBox, MailBoxUnencrypted, MailMessageFlags

from .settings import ImapSettings

__all__ = ["ImapMailboxReader", "MailHandler"]

MailHandler = Callable[[bytes], Awaitable[bool]]
"""``async (raw) -> handled``: False leaves the mail unseen, to be read again next poll."""

_IMAP_ERRORS = (imaplib.IMAP4.error, OSError, EOFError)
_IDLE_SLICE_SECONDS = 0.5


class ImapMailboxReader:
    """One IMAP connection reading ``settings.mailbox``; safe to poll from one event loop."""

    def __init__(self, settings: ImapSettings, handler: MailHandler, logger: logging.Logger) -> None:
        self.settings = settings
        self.handler = handler
        self.log = logger
        self._mailbox: BaseMailBox | None = None
        self._lock = asyncio.Lock()
        self._interrupt = threading.Event()
        self._stopping = asyncio.Event()
        #: Set while the connection waits in IDLE (the server pushes new mail from then on).
        self.idling = threading.Event()

    # -- connection (worker thread) ------------------------------------------------------

    def _connect_sync(self) -> BaseMailBox:
        if self._mailbox is not None:
            return self._mailbox
        s = self.settings
        mailbox: BaseMailBox
        if s.ssl:
            mailbox = MailBox(s.host, s.port, timeout=s.timeout)
        else:
            mailbox = MailBoxUnencrypted(s.host, s.port, timeout=s.timeout)
        mailbox.login(s.username, s.password.get_secret_value(), initial_folder=s.mailbox)
        if s.processed_folder and not mailbox.folder.exists(s.processed_folder):
            mailbox.folder.create(s.processed_folder)
        self._mailbox = mailbox
        return mailbox

    def _disconnect_sync(self) -> None:
        mailbox, self._mailbox = self._mailbox, None
        if mailbox is None:
            return
        try:
            mailbox.logout()
        except Exception:  # closing a connection that may be dead
            try:
                mailbox.client.shutdown()
            except Exception:
                pass

    @property
    def connected(self) -> bool:
        """True while logged in to the mailbox."""
        return self._mailbox is not None

    @property
    def supports_idle(self) -> bool:
        """True when connected and the server announced IDLE."""
        mailbox = self._mailbox
        return mailbox is not None and "IDLE" in mailbox.client.capabilities

    def _unseen_sync(self) -> list[tuple[str, bytes]]:
        mailbox = self._connect_sync()
        mailbox.client.noop()  # lets the server report new mail before SEARCH
        uids = mailbox.uids(AND(seen=False))[: self.settings.batch_size]
        found: list[tuple[str, bytes]] = []
        for uid in uids:
            status, data = mailbox.client.uid("FETCH", uid, "(BODY.PEEK[])")
            if status != "OK":
                raise imaplib.IMAP4.error(f"UID FETCH {uid} answered {status}")
            raw = next(
                (item[1] for item in data if isinstance(item, tuple) and len(item) == 2), None
            )
            if isinstance(raw, bytes):
                found.append((uid, raw))
        return found

    def _mark_processed_sync(self, uid: str) -> None:
        mailbox = self._connect_sync()
        folder = self.settings.processed_folder
        if folder:
            mailbox.flag(uid, MailMessageFlags.SEEN, True)
            mailbox.move(uid, folder)
        else:
            status, _ = mailbox.client.uid("STORE", uid, "+FLAGS", f"({MailMessageFlags.SEEN})")
            if status != "OK":
                raise imaplib.IMAP4.error(f"UID STORE {uid} answered {status}")

    def _idle_sync(self, seconds: float) -> bool:
        """Wait in IDLE until the server reports something, ``seconds`` pass or interrupt."""
        mailbox = self._connect_sync()
        deadline = time.monotonic() + seconds
        news = False
        mailbox.idle.start()
        self.idling.set()
        try:
            while not (self._interrupt.is_set() or self._stopping.is_set()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                responses = mailbox.idle.poll(timeout=min(_IDLE_SLICE_SECONDS, remaining))
                if any(b"EXISTS" in line or b"RECENT" in line for line in responses):
                    news = True
                    break
        finally:
            self.idling.clear()
            mailbox.idle.stop()
        return news

    # -- async API -----------------------------------------------------------------------

    async def poll_once(self) -> int:
        """Read every UNSEEN message once; returns how many were handled (and marked)."""
        self._interrupt.set()  # cut a running IDLE wait short
        async with self._lock:
            self._interrupt.clear()
            try:
                unseen = await asyncio.to_thread(self._unseen_sync)
            except _IMAP_ERRORS:
                await asyncio.to_thread(self._disconnect_sync)
                raise
            handled = 0
            for uid, raw in unseen:
                if not await self.handler(raw):
                    continue
                try:
                    await asyncio.to_thread(self._mark_processed_sync, uid)
                except _IMAP_ERRORS:
                    await asyncio.to_thread(self._disconnect_sync)
                    raise
                handled += 1
            return handled

    async def _wait_for_mail(self) -> None:
        s = self.settings
        if s.idle and self.supports_idle:
            async with self._lock:
                try:
                    await asyncio.to_thread(self._idle_sync, s.poll_seconds)
                except _IMAP_ERRORS:
                    await asyncio.to_thread(self._disconnect_sync)
                    raise
            return
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=s.poll_seconds)
        except TimeoutError:
            pass

    async def run(self) -> None:
        """Poll until :meth:`stop`; connection errors are logged and retried with backoff."""
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                count = await self.poll_once()
                if count:
                    self.log.info("read %d mail(s) from IMAP %s", count, self.settings.mailbox)
                backoff = 1.0
                if not self._stopping.is_set():
                    await self._wait_for_mail()
            except _IMAP_ERRORS as exc:
                self.log.warning(
                    "IMAP %s:%s failed (%s); retrying in %.0f s",
                    self.settings.host, self.settings.port, type(exc).__name__, backoff,
                )
                try:
                    await asyncio.wait_for(self._stopping.wait(), timeout=backoff)
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, max(self.settings.poll_seconds, 1.0))

    def request_stop(self) -> None:
        """Ask :meth:`run` to finish (an IDLE wait ends within half a second)."""
        self._stopping.set()
        self._interrupt.set()

    async def close(self) -> None:
        """Log out (after any running IMAP command has finished)."""
        async with self._lock:
            await asyncio.to_thread(self._disconnect_sync)
