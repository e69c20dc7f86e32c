"""The ``smtp_email`` channel: SMTP out over reused aiosmtplib connections, replies from IMAP."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

from gateway import (
    EMAIL,
    Channel,
    ChannelCapabilities,
    ChannelContext,
    OutboundMessage,
    SendResult,
    mask_address,
)

from .composer import build_email, email_bytes
from .imap_reader import ImapMailboxReader
from .inbound_mail import BounceMail, IgnoredMail, ParsedMail, ReplyMail, raw_reply
from .parse_worker import MailParseWorker
from .settings import SmtpEmailSettings
from .smtp_pool import SmtpConnectionPool

__all__ = ["PARSE_TIMEOUT_SECONDS", "SmtpEmailChannel"]

#: The longest the worker process may take to parse one incoming mail before it is ended and
#: the raw fallback used instead (parsing itself is budgeted well below this; see ``reply_text``).
PARSE_TIMEOUT_SECONDS = 10.0


class SmtpEmailChannel(Channel):
    """E-mail to families: multipart text + HTML with a ``Reply-To`` token, replies via IMAP.

    ``send()`` returns the message's ``Message-ID`` (stable across attempts) as the provider
    id; bounces found in the IMAP mailbox are reported against it. Without an ``imap`` block
    the channel only sends.
    """

    plugin: ClassVar[str] = "smtp_email"
    address_kind = EMAIL
    supports_attachments = True
    capabilities = ChannelCapabilities(subject=True, markup="html", media=True)
    Settings = SmtpEmailSettings

    def __init__(self, name: str, settings: SmtpEmailSettings, context: ChannelContext) -> None:
        super().__init__(name, settings, context)
        self.settings: SmtpEmailSettings = settings
        self.pool = SmtpConnectionPool(settings.smtp, self.log)
        self.reader: ImapMailboxReader | None = (
            ImapMailboxReader(settings.imap, self.handle_incoming_mail, self.log)
            if settings.imap is not None
            else None
        )
        self._reader_task: asyncio.Task[None] | None = None
        self._own_addresses = frozenset({settings.smtp.from_address.lower()})
        self._parser = MailParseWorker(PARSE_TIMEOUT_SECONDS)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the IMAP reader loop (SMTP connections open on the first send)."""
        if self.reader is not None and self._reader_task is None:
            self._reader_task = asyncio.create_task(
                self.reader.run(), name=f"imap-reader:{self.name}"
            )

    async def stop(self) -> None:
        """Stop the reader, log out of IMAP and QUIT every SMTP connection."""
        task, self._reader_task = self._reader_task, None
        if self.reader is not None:
            self.reader.request_stop()
            if task is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(task), timeout=10)
                except TimeoutError:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await self.reader.close()
        await self._parser.close()
        await self.pool.close()

    # -- sending -------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send one message; SMTP 4xx → retryable, 5xx → permanent (see the module docs)."""
        email = build_email(message, self.settings.smtp)
        data = email_bytes(email)
        await self.pool.deliver(self.settings.smtp.from_address, message.address.strip(), data)
        self.log.debug("e-mail %s sent to %s", message.message_id, mask_address(message.address))
        return SendResult(provider_message_id=str(email["Message-ID"]), status="sent")

    def preview_details(self, message: OutboundMessage) -> dict[str, Any]:
        """From, Reply-To and size of the MIME message."""
        email = build_email(message, self.settings.smtp)
        return {
            "from": str(email["From"]),
            "reply_to": str(email["Reply-To"]) if email["Reply-To"] else None,
            "bytes": len(email_bytes(email)),
            "html": message.html is not None,
        }

    # -- replies -------------------------------------------------------------------------

    async def poll_once(self) -> int:
        """Read the IMAP mailbox once (replies, unsubscribes, bounces); returns mails handled."""
        if self.reader is None:
            return 0
        return await self.reader.poll_once()

    async def handle_incoming_mail(self, raw: bytes) -> bool:
        """Hand one raw mail to the core; True once it is stored (so it may be marked read),
        False (retry next poll) when the core could not take it.

        Parsing runs in a worker process, bounded in size and time; a mail it cannot parse in
        time (or at all) is handed over as a raw reply rather than lost or retried forever.
        """
        parsed = await self._parse(raw)
        if parsed is None:
            self.log.warning("unreadable mail without a sender in the reply mailbox; marking it read")
            return True
        try:
            if isinstance(parsed, ReplyMail):
                # The core stores it (database, or its spool) before answering: safe to mark.
                await self.context.receive(parsed.message)
                self.log.info(
                    "%s from %s",
                    "unsubscribe" if parsed.unsubscribe else "reply",
                    mask_address(parsed.message.sender),
                )
            elif isinstance(parsed, BounceMail):
                for update in parsed.updates:
                    await self.context.update_status(update)
                self.log.info("bounce for %s", parsed.updates[0].provider_message_id)
            elif isinstance(parsed, IgnoredMail):
                self.log.info("ignored mail in the reply mailbox: %s", parsed.reason)
        except Exception:  # keep it unseen and try again next poll
            self.log.exception("could not hand a mail to the gateway; will retry")
            return False
        return True

    async def _parse(self, raw: bytes) -> ParsedMail | None:
        """:func:`parse_incoming_mail` in the worker process (:mod:`.parse_worker`); the raw
        fallback when it fails or takes longer than :data:`PARSE_TIMEOUT_SECONDS`."""
        reply_domain = self.settings.smtp.effective_reply_domain
        try:
            return await self._parser.parse(
                raw, channel=self.name, reply_domain=reply_domain, own_addresses=self._own_addresses
            )
        except Exception as exc:  # one malformed or hostile mail must not block the mailbox
            self.log.warning("mail could not be parsed (%s); stored as it came", type(exc).__name__)
        try:
            return await asyncio.to_thread(raw_reply, raw, channel=self.name, reply_domain=reply_domain)
        except Exception:
            self.log.exception("mail unreadable even as raw text")
            return None
