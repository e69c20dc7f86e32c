"""What the Twilio channels share (``twilio_sms`` here, ``whatsapp`` on top of it): one async
client of the real ``twilio`` library per channel, created in :meth:`start` inside the running
loop and reused for every send; a REST or transport error mapped to the SendError the outbox
understands (with one alert for codes staff must act on); and reconciliation of a message
whose outcome is unknown, by its SID or by a recent message with the same text.

The REST client (``twilio.rest``, its whole API tree) and its HTTP layer (``twilio.http``, which
pulls in ``requests``) are imported when a Twilio channel starts, not when the plugin is
registered: a worker without a Twilio channel does not pay for them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, cast

import aiohttp

from gateway import Channel, ChannelContext, ChannelSettings, OutboundMessage, mask_address

from .errors import (
    TWILIO_API_ERRORS,
    TwilioApiError,
    TwilioErrorRule,
    capture_response_headers,
    describe_error_code,
    error_for_rest_exception,
    error_for_transport_exception,
    parse_retry_after,
)
from .webhooks import TWILIO_STATUS_MAP

if TYPE_CHECKING:
    from twilio.rest import Client

    from .http import RebasedAsyncTwilioHttpClient

__all__ = ["TwilioMessagingChannel"]


class TwilioMessagingChannel(Channel):
    """A channel over Twilio's Messaging API. Its settings carry ``account_sid``,
    ``auth_token``, ``api_base_url``, ``timeout``, ``concurrency``, ``status_callback`` and
    ``from_number`` (or ``messaging_service_sid``)."""

    #: How far back :meth:`find_status` looks for a message whose SID never came back.
    reconcile_window: ClassVar[timedelta] = timedelta(hours=6)
    #: The word log lines start with (``twilio``, ``whatsapp``).
    log_label: ClassVar[str] = "twilio"

    def __init__(self, name: str, settings: ChannelSettings, context: ChannelContext) -> None:
        super().__init__(name, settings, context)
        self._twilio: Any = settings
        self._http: RebasedAsyncTwilioHttpClient | None = None
        self._client: Client | None = None
        self._status_callback_url: str | None = None

    # -- what a subclass may change ----------------------------------------------------

    def describe_error(self, code: int | str | None) -> TwilioErrorRule | None:
        """What an error code means for this channel (its retry rule, its alert)."""
        return describe_error_code(code)

    def masked(self, address: str) -> str:
        """``address`` as it may appear in a log line."""
        return mask_address(address)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Create the Twilio client (inside the running loop) and resolve the callback URL."""
        from twilio.rest import Client

        from .http import RebasedAsyncTwilioHttpClient

        settings = self._twilio
        if settings.status_callback:
            # Raises ConfigError when http.public_base_url is unset: fail at start, not later.
            self._status_callback_url = self.context.public_url(self.context.webhook_path("status"))
        self._http = RebasedAsyncTwilioHttpClient(
            settings.api_base_url,
            timeout=settings.timeout,
            pool_size=max(settings.concurrency, 8),
            logger=self.log,
        )
        self._client = Client(
            settings.account_sid, settings.auth_token.get_secret_value(), http_client=self._http
        )
        # Import the Messages API now, not inside the first (rate-limited) send.
        _ = self._client.messages

    async def stop(self) -> None:
        """Close the HTTP session."""
        if self._http is not None:
            await self._http.close()
        self._http = None
        self._client = None

    def _require_client(self) -> Client:
        if self._client is None:
            raise RuntimeError(f"channel {self.name!r} is not started")
        return self._client

    # -- sending -----------------------------------------------------------------------

    def sender_params(self, to: str) -> dict[str, Any]:
        """``to``, the sender (number or Messaging Service) and the status callback."""
        params: dict[str, Any] = {"to": to}
        if self._twilio.from_number:
            params["from_"] = self._twilio.from_number
        else:
            params["messaging_service_sid"] = self._twilio.messaging_service_sid
        if self._status_callback_url:
            params["status_callback"] = self._status_callback_url
        return params

    async def create_message(self, message: OutboundMessage, params: dict[str, Any]) -> Any:
        """``messages.create`` with ``params``; the created message, or the SendError its
        failure means (a code staff must act on raises one alert: health, metrics, a log line,
        not a retry per message)."""
        client = self._require_client()
        with capture_response_headers() as headers:
            try:
                return await client.messages.create_async(**params)
            except TWILIO_API_ERRORS as exc:
                error = error_for_rest_exception(
                    cast(TwilioApiError, exc),
                    parse_retry_after(headers.get("Retry-After")),
                    describe=self.describe_error,
                )
                self.log.info("%s %s message %s to %s refused: %s", self.log_label, self.name,
                              message.message_id, self.masked(message.address), error)
                rule = self.describe_error(error.code)
                if rule is not None and rule.alert:
                    self.context.alert(str(error.code), rule.reason)
                raise error from exc
            except (TimeoutError, aiohttp.ClientError) as exc:
                error = error_for_transport_exception(exc)
                self.log.warning("%s %s message %s to %s: %s", self.log_label, self.name,
                                 message.message_id, self.masked(message.address), error)
                raise error from exc

    # -- reconciliation ----------------------------------------------------------------

    async def find_status(
        self,
        message: OutboundMessage,
        provider_message_id: str | None,
        *,
        to: str,
        texts: Collection[str],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> str | None:
        """Twilio's current status of a message whose fate is unknown, in the gateway's words
        (``queued``, ``sent``, ``delivered``, ``failed``...).

        With a SID the message is fetched; without one, recent messages to ``to`` (from our
        sender) are listed and one created within :attr:`reconcile_window` whose body is one of
        ``texts`` is taken. None when Twilio has no such message or cannot be asked.
        """
        client = self._require_client()
        try:
            if provider_message_id:
                found = await client.messages(provider_message_id).fetch_async()
                return TWILIO_STATUS_MAP.get(str(found.status).lower())
            since = now() - self.reconcile_window
            filters: dict[str, Any] = {"to": to, "limit": 20, "page_size": 20}
            if self._twilio.from_number:
                filters["from_"] = self._twilio.from_number
            for candidate in await client.messages.list_async(**filters):
                created = candidate.date_created
                if candidate.body in texts and (created is None or created >= since):
                    return TWILIO_STATUS_MAP.get(str(candidate.status).lower())
            return None
        except TWILIO_API_ERRORS as exc:
            self.log.info("%s %s reconcile of message %s: HTTP %s code %s", self.log_label,
                          self.name, message.message_id, getattr(exc, "status", None),
                          getattr(exc, "code", None))
            return None
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.log.warning("%s %s reconcile of message %s failed: %s", self.log_label,
                             self.name, message.message_id, type(exc).__name__)
            return None
