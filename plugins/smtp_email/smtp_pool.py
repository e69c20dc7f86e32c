"""A small pool of reused aiosmtplib connections, and the SMTP-reply → SendError mapping."""

from __future__ import annotations

import asyncio
import logging
import re

import aiosmtplib

from gateway import (
    DeliveryUnknownError,
    PermanentSendError,
    RetryableSendError,
    SendError,
    mask_address,
    scrub,
)

from .settings import SmtpSettings

__all__ = ["SmtpConnectionPool", "error_for_reply", "is_bad_mailbox"]

_ENHANCED_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_UNKNOWN_MAILBOX_TEXT = re.compile(
    r"user unknown|unknown user|no such user|mailbox unavailable|does not exist|"
    r"recipient address rejected|invalid recipient|no mailbox",
    re.IGNORECASE,
)
_CONNECTION_ERRORS = (
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
    ConnectionError,
    TimeoutError,
    OSError,
)


def enhanced_status(text: str) -> str | None:
    """The RFC 3463 enhanced status code in a server reply (``5.1.1``), if any."""
    found = _ENHANCED_STATUS.search(text or "")
    return ".".join(found.groups()) if found else None


def is_bad_mailbox(code: int, text: str) -> bool:
    """True when a permanent reply says the address itself is bad (5.1.x, 5.2.1)."""
    if code < 500:
        return False
    status = enhanced_status(text)
    if status is not None:
        return status.startswith("5.1.") or status == "5.2.1"
    return code in (550, 553) and bool(_UNKNOWN_MAILBOX_TEXT.search(text or ""))


def error_for_reply(code: int, text: str, stage: str) -> SendError:
    """Map an SMTP error reply at ``stage`` (``MAIL``, ``RCPT``, ``DATA``) to a SendError."""
    # The server's text often quotes the address: scrubbed, as it is stored and logged.
    reason = scrub(f"SMTP {stage} refused: {code} {text}".strip())
    if 400 <= code < 500:
        return RetryableSendError(reason, code=code)
    if code >= 500:
        state = "invalid" if stage == "RCPT" and is_bad_mailbox(code, text) else None
        return PermanentSendError(reason, code=code, endpoint_state=state)
    return RetryableSendError(reason, code=code)


class _Slot:
    """One pooled connection (``client`` is None until first use or after a failure)."""

    __slots__ = ("client",)

    def __init__(self) -> None:
        self.client: aiosmtplib.SMTP | None = None

    def discard(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            client.close()


class SmtpConnectionPool:
    """Up to ``pool_size`` SMTP connections, each used by one send at a time and kept open.

    Connections open lazily, are reopened when the server dropped them, and survive a refused
    recipient (the transaction is reset with ``RSET``). :meth:`deliver` is safe to call
    concurrently; callers beyond ``pool_size`` wait for a free connection.
    """

    def __init__(self, settings: SmtpSettings, logger: logging.Logger) -> None:
        self.settings = settings
        self.log = logger
        self._free: asyncio.LifoQueue[_Slot] = asyncio.LifoQueue()
        self._slots = [_Slot() for _ in range(settings.pool_size)]
        for slot in self._slots:
            self._free.put_nowait(slot)
        self.connections_opened = 0

    def _new_client(self) -> aiosmtplib.SMTP:
        smtp = self.settings
        return aiosmtplib.SMTP(
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username,
            password=smtp.password.get_secret_value() if smtp.password else None,
            use_tls=smtp.tls,
            start_tls=smtp.starttls,
            validate_certs=smtp.validate_certs,
            timeout=smtp.timeout,
            local_hostname=smtp.local_hostname or smtp.sender_domain,
        )

    async def _connect(self, slot: _Slot) -> bool:
        """Make sure ``slot`` holds a live connection; True when it was just opened."""
        if slot.client is not None and slot.client.is_connected:
            return False
        slot.discard()
        client = self._new_client()
        try:
            await client.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            raise RetryableSendError(f"SMTP login refused: {scrub(exc.message)}", code=exc.code) from exc
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            raise RetryableSendError(f"SMTP server refused the session: {scrub(exc.message)}",
                                     code=exc.code) from exc
        except (*_CONNECTION_ERRORS, aiosmtplib.SMTPException) as exc:
            client.close()
            raise RetryableSendError(
                f"cannot connect to SMTP {self.settings.host}:{self.settings.port}: {scrub(exc)}",
                code="connect",
            ) from exc
        slot.client = client
        self.connections_opened += 1
        return True

    async def deliver(self, sender: str, recipient: str, data: bytes) -> None:
        """Send one message to one recipient; raise a :class:`SendError` subclass on failure."""
        slot = await self._free.get()
        try:
            await self._deliver_on(slot, sender, recipient, data)
        finally:
            self._free.put_nowait(slot)

    async def _deliver_on(self, slot: _Slot, sender: str, recipient: str, data: bytes) -> None:
        for attempt in (1, 2):
            fresh = await self._connect(slot)
            client = slot.client
            assert client is not None
            try:
                await client.mail(sender)
            except aiosmtplib.SMTPResponseException as exc:
                await self._after_refusal(slot, exc.code)
                raise error_for_reply(exc.code, exc.message, "MAIL") from exc
            except _CONNECTION_ERRORS as exc:
                # A reused connection the server closed meanwhile: nothing was handed over yet.
                slot.discard()
                if fresh or attempt == 2:
                    raise RetryableSendError(
                        f"SMTP connection lost: {scrub(exc)}", code="connection"
                    ) from exc
                self.log.debug("SMTP connection went stale; reconnecting")
                continue
            break
        try:
            await client.rcpt(recipient)
        except aiosmtplib.SMTPResponseException as exc:
            await self._after_refusal(slot, exc.code)
            self.log.info(
                "SMTP refused recipient %s: %s", mask_address(recipient), exc.code
            )
            raise error_for_reply(exc.code, exc.message, "RCPT") from exc
        except _CONNECTION_ERRORS as exc:
            slot.discard()
            raise RetryableSendError(f"SMTP connection lost: {scrub(exc)}", code="connection") from exc
        try:
            await client.data(data)
        except aiosmtplib.SMTPResponseException as exc:
            await self._after_refusal(slot, exc.code)
            raise error_for_reply(exc.code, exc.message, "DATA") from exc
        except _CONNECTION_ERRORS as exc:
            slot.discard()
            raise DeliveryUnknownError(
                "SMTP connection lost during DATA; the server may have taken the message: "
                f"{scrub(exc)}",
                code="connection",
            ) from exc

    async def _after_refusal(self, slot: _Slot, code: int) -> None:
        """Keep the connection for the next message: reset the transaction (or drop on 421)."""
        client = slot.client
        if client is None:
            return
        if code == 421 or not client.is_connected:
            slot.discard()
            return
        try:
            await client.rset()
        except (*_CONNECTION_ERRORS, aiosmtplib.SMTPException):
            slot.discard()

    async def close(self) -> None:
        """Say QUIT on every open connection."""
        for slot in self._slots:
            client, slot.client = slot.client, None
            if client is None:
                continue
            try:
                if client.is_connected:
                    await asyncio.wait_for(client.quit(), timeout=5)
            except (*_CONNECTION_ERRORS, aiosmtplib.SMTPException):
                pass
            finally:
                client.close()
