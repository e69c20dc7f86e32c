"""Twilio's webhooks into the gateway: incoming SMS and message status callbacks.

Both check ``X-Twilio-Signature`` against the public URL Twilio called
(``http.public_base_url`` + path and query), never the address this server sees behind a
proxy, and hand nothing to the core unless it matches.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from multidict import MultiDictProxy
from twilio.request_validator import RequestValidator, add_port, remove_port

from gateway import ChannelContext, InboundMessage, StatusUpdate, mask_address

from .errors import TwilioErrorRule, describe_error_code

__all__ = ["EMPTY_TWIML", "TWILIO_STATUS_MAP", "TwilioWebhooks"]

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
"""The answer to an incoming SMS when the gateway replies later (or not at all)."""

#: Twilio ``MessageStatus`` → gateway delivery status; statuses not listed are ignored.
TWILIO_STATUS_MAP: dict[str, str] = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
    "partially_delivered": "sent",
}

_FORM_TYPE = "application/x-www-form-urlencoded"


class TwilioWebhooks:
    """The ``inbound`` and ``status`` webhook handlers of one Twilio channel."""

    def __init__(
        self,
        channel_name: str,
        context: ChannelContext,
        auth_token: str,
        describe: Callable[[int | str | None], TwilioErrorRule | None] = describe_error_code,
    ) -> None:
        self.channel_name = channel_name
        self.context = context
        self.log = context.logger
        self._validator = RequestValidator(auth_token)
        self._describe = describe

    def handlers(self) -> dict[str, Any]:
        """``{"inbound": ..., "status": ...}`` for :meth:`gateway.Channel.webhooks`."""
        return {"inbound": self.inbound, "status": self.status}

    # -- signature and form ---------------------------------------------------------------

    def signature_matches(self, url: str, params: Mapping[str, Any], signature: str) -> bool:
        """True when ``signature`` is Twilio's for ``url`` and ``params`` (the URL is tried
        with and without its default port, as Twilio signs either way). Constant-time."""
        parsed = urlsplit(url)
        candidates = {url, add_port(parsed), remove_port(parsed)}
        given = signature.encode()
        matched = False
        for candidate in candidates:
            expected = self._validator.compute_signature(candidate, params).encode()
            matched |= hmac.compare_digest(expected, given)
        return matched

    async def _signed_form(self, request: web.Request) -> MultiDictProxy[str]:
        """The request's form after checking its signature; raises 403 / 400."""
        signature = request.headers.get("X-Twilio-Signature")
        if not signature:
            self.log.warning("twilio %s webhook without X-Twilio-Signature: refused",
                             self.channel_name)
            self.context.count_signature_failure()
            raise web.HTTPForbidden(text="missing X-Twilio-Signature")
        if request.content_type != _FORM_TYPE:
            raise web.HTTPBadRequest(text=f"expected {_FORM_TYPE}")
        try:
            form = await request.post()
        except ValueError as exc:
            raise web.HTTPBadRequest(text="malformed form body") from exc
        if any(not isinstance(value, str) for value in form.values()):
            raise web.HTTPBadRequest(text="unexpected file upload")
        public = self.context.public_url(request.path_qs)
        if not self.signature_matches(public, form, signature):
            self.log.warning("twilio %s webhook with a wrong X-Twilio-Signature: refused",
                             self.channel_name)
            self.context.count_signature_failure()
            raise web.HTTPForbidden(text="invalid X-Twilio-Signature")
        return form  # type: ignore[return-value]

    # -- handlers -----------------------------------------------------------------------

    async def inbound(self, request: web.Request) -> web.StreamResponse:
        """An incoming SMS: hand it to the core, answer empty TwiML (also for duplicates)."""
        form = await self._signed_form(request)
        message = self.inbound_message(form)
        # Stored durably before Twilio gets its 200; classified and answered in the background.
        stored = await self.context.accept(message)
        self.log.debug(
            "twilio %s inbound %s from %s: %s", self.channel_name, message.provider_message_id,
            mask_address(message.sender), "stored" if stored else "duplicate",
        )
        return web.Response(text=EMPTY_TWIML, content_type="text/xml", charset="utf-8")

    def inbound_message(self, form: Mapping[str, str]) -> InboundMessage:
        """The :class:`gateway.InboundMessage` of a signed incoming-message form; raises 400
        without ``MessageSid`` or ``From``. A channel on another Twilio sender overrides it."""
        sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid")
        sender = (form.get("From") or "").strip()
        if not sid or not sender:
            raise web.HTTPBadRequest(text="MessageSid and From are required")
        return InboundMessage(
            channel=self.channel_name,
            provider_message_id=sid,
            sender=sender,
            text=form.get("Body", ""),
            raw=dict(form),
        )

    async def status(self, request: web.Request) -> web.StreamResponse:
        """A delivery report: map it to a :class:`gateway.StatusUpdate`; answer 204."""
        form = await self._signed_form(request)
        update = self.status_update(form)
        if update is None:
            return web.Response(status=204)
        # Kept by the core whatever the outcome (pending until the send's id is stored,
        # spooled while the database is away): Twilio gets its 204 either way.
        outcome = await self.context.update_status(update)
        recipient = self.recipient_address(form)
        if update.endpoint_state is not None and recipient:
            try:
                await self.context.set_endpoint_state(
                    recipient, update.endpoint_state,
                    f"twilio {update.error_code}: {update.error_reason}",
                )
            except Exception:  # the report (kept by the core) carries the state for its endpoint
                self.log.warning("twilio %s: could not mark %s %s now", self.channel_name,
                                 mask_address(recipient), update.endpoint_state, exc_info=True)
        self.log.debug("twilio %s status %s -> %s (%s)", self.channel_name,
                       update.provider_message_id, update.status, outcome.value)
        return web.Response(status=204)

    def recipient_address(self, form: Mapping[str, str]) -> str:
        """The address a status callback is about (``To``), in the endpoint's form."""
        return (form.get("To") or "").strip()

    def status_update(self, form: Mapping[str, str]) -> StatusUpdate | None:
        """The :class:`gateway.StatusUpdate` of a signed status callback; None for a status the
        gateway does not track; raises 400 without ``MessageSid`` or ``MessageStatus``."""
        sid = form.get("MessageSid") or form.get("SmsSid")
        twilio_status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
        if not sid or not twilio_status:
            raise web.HTTPBadRequest(text="MessageSid and MessageStatus are required")
        status = TWILIO_STATUS_MAP.get(twilio_status)
        if status is None:
            self.log.info("twilio %s status %r for %s ignored", self.channel_name,
                          twilio_status, sid)
            return None
        error_code = (form.get("ErrorCode") or "").strip() or None
        rule = self._describe(error_code)
        reason: str | None = None
        if error_code is not None:
            reason = rule.meaning if rule else f"Twilio error {error_code}"
        elif twilio_status == "canceled":
            reason = "message canceled before it was sent"
        failed = status in ("failed", "undelivered")
        return StatusUpdate(
            channel=self.channel_name,
            provider_message_id=sid,
            status=status,  # type: ignore[arg-type]
            error_code=error_code,
            error_reason=reason,
            endpoint_state=rule.endpoint_state if rule and failed else None,
            retry_after=rule.redeliver_after if rule and failed else None,
        )
