"""``WhatsAppChannel``: WhatsApp through Twilio's WhatsApp sender (the Messages API).

WhatsApp lets a business write freely only inside the **24-hour customer-service window**
that each message from the family opens; outside it only templates WhatsApp approved may go,
sent by Content SID with their variables. So every send first asks whether the recipient's
window is open:

* **open** (last message from this address on this channel less than ``window_hours`` minus
  ``window_margin_minutes`` ago, and no 63016 since): the rendered text goes as it is; a
  question's choices go as ``twilio/quick-reply`` buttons when ``quick_replies`` has a Content
  SID for that many buttons (WhatsApp sends buttons only through a content template, even in
  the window), else as a numbered list the family answers with a digit;
* **closed**: the approved template configured for the message's template name (or
  ``default``) and language goes, its variables filled from the message; with none, the send
  fails with :data:`~.errors.NO_TEMPLATE_CODE` and a reason saying what is missing, and the
  outbox falls back to the guardian's next channel.

Twilio error 63016 (it thinks the window is closed) is never retried as it was: at creation
the same send is made at once with the template (or skipped as above); in a delivery report
the window is marked closed and the core sends the message once more, which then goes as the
template.

The window is read from the core (:meth:`gateway.ChannelContext.last_inbound_at`: the inbound
messages it stored for this channel) and from what this process's webhooks saw, so a reply
that arrived a moment ago counts before it is stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, cast

from gateway_plugins.twilio_sms.errors import TwilioErrorRule
from gateway_plugins.twilio_sms.messaging import TwilioMessagingChannel

from gateway import (
    AddressKind,
    Button,
    ChannelCapabilities,
    ChannelContext,
    ChannelSettings,
    OutboundMessage,
    PermanentSendError,
    SendResult,
    WebhookHandler,
    current_region,
)

from . import addresses
from .errors import NO_TEMPLATE_CODE, OUTSIDE_WINDOW, describe_whatsapp_error
from .settings import MAX_QUICK_REPLY_BUTTONS, TemplateRef, WhatsAppSettings
from .webhooks import WhatsAppWebhooks

#: The ``whatsapp`` address kind (national numbers read in ``families.default_region``).
WHATSAPP = AddressKind(
    **{  # type: ignore[arg-type]
        **addresses.address_kind_fields(),
        "normalise": lambda raw: addresses.normalise(raw, current_region() or "US"),
    }
)

__all__ = [
    "MAX_BODY_CHARACTERS",
    "MAX_BUTTON_TITLE",
    "MAX_QUICK_REPLY_BODY",
    "MAX_VARIABLE_CHARACTERS",
    "WhatsAppChannel",
]

#: Twilio's limit on a WhatsApp message ``Body``.
MAX_BODY_CHARACTERS = 1600
#: ``twilio/quick-reply``: text above the buttons, and one button's title.
MAX_QUICK_REPLY_BODY = 1024
MAX_BUTTON_TITLE = 20
#: What one template variable may hold (longer text is cut with an ellipsis).
MAX_VARIABLE_CHARACTERS = 1024

_SPACES = re.compile(r"\s+")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _variable_text(value: str) -> str:
    """A template variable's value on one line and bounded: Meta rejects template parameters
    with line breaks, tabs or long runs of spaces."""
    text = _SPACES.sub(" ", value).strip()
    if len(text) > MAX_VARIABLE_CHARACTERS:
        text = text[: MAX_VARIABLE_CHARACTERS - 1].rstrip() + "…"
    return text


def numbered_choices(body: str, buttons: tuple[Button, ...]) -> str:
    """``body`` followed by the choices as a numbered list (answered with the digit)."""
    lines = [f"{number}. {button.label}" for number, button in enumerate(buttons, start=1)]
    return body.rstrip() + "\n\n" + "\n".join(lines)


class WhatsAppChannel(TwilioMessagingChannel):
    """WhatsApp to a guardian's number through Twilio, window-aware (see the module doc)."""

    plugin: ClassVar[str] = "whatsapp"
    #: ``whatsapp:+E164`` addresses: a guardian's own ``address:whatsapp``, else their phone
    #: number (``defaults_from="phone"``), so SMS and WhatsApp share one number and each family
    #: gets the channel it chose.
    address_kind = WHATSAPP
    Settings: ClassVar[type[ChannelSettings]] = WhatsAppSettings
    max_body_length: ClassVar[int | None] = MAX_BODY_CHARACTERS
    #: Twilio's default text throughput of one WhatsApp sender (10 messages/s; up to 50 on
    #: request): set ``rate_per_second`` to what the account was granted.
    default_rate_per_second: ClassVar[float | None] = 10.0
    log_label: ClassVar[str] = "whatsapp"

    def __init__(self, name: str, settings: ChannelSettings, context: ChannelContext) -> None:
        super().__init__(name, settings, context)
        self.config = cast(WhatsAppSettings, settings)
        self._webhooks = WhatsAppWebhooks(
            name,
            context,
            self.config.auth_token.get_secret_value(),
            on_inbound=self.note_inbound,
            on_window_closed=self.note_window_closed,
        )
        self._inbound_seen: dict[str, datetime] = {}
        self._closed_at: dict[str, datetime] = {}

    @property
    def supports_buttons(self) -> bool:  # type: ignore[override]
        """Buttons are shown when a quick-reply content template is configured."""
        return bool(self.config.quick_replies)

    @property
    def features(self) -> ChannelCapabilities:
        """No subject; as many buttons as the largest quick-reply template configured (Twilio
        allows 3 without approval), Twilio's 1,600-character body, plain text, no media."""
        return ChannelCapabilities(
            subject=False,
            buttons=max(self.config.quick_replies, default=0),
            max_length=MAX_BODY_CHARACTERS,
            markup="text",
            media=False,
        )

    def describe_error(self, code: int | str | None) -> TwilioErrorRule | None:
        """WhatsApp's 63xxx codes on top of Twilio's messaging codes."""
        return describe_whatsapp_error(code)

    def masked(self, address: str) -> str:
        """A ``whatsapp:+E164`` address as it may appear in a log line."""
        return addresses.mask(address)

    # -- the 24-hour window ------------------------------------------------------------

    def note_inbound(self, address: str, at: datetime) -> None:
        """A message from ``address`` arrived at ``at``: its window (re)opens."""
        key = addresses.to_provider(address)
        seen = self._inbound_seen.get(key)
        if seen is None or at > seen:
            self._inbound_seen[key] = at

    def note_window_closed(self, address: str) -> None:
        """Twilio said (63016) that ``address``'s window is closed."""
        self._closed_at[addresses.to_provider(address)] = _utcnow()

    async def last_inbound_at(self, address: str) -> datetime | None:
        """When ``address`` last wrote on this channel: the core's record (asked in both forms
        of the number, ``+E164`` and ``whatsapp:+E164``, since which one the core stores
        depends on the endpoint's kind) or this process's."""
        key = addresses.to_provider(address)
        forms = dict.fromkeys((address, key, addresses.endpoint_form(key, addresses.DEFAULTS_FROM)))
        found = [await self.context.last_inbound_at(form) for form in forms]
        found.append(self._inbound_seen.get(key))
        candidates = [t for t in found if t is not None]
        return max(candidates) if candidates else None

    async def window_open(self, address: str, now: datetime | None = None) -> bool:
        """Whether free-form messages may go to ``address`` now (see the module doc)."""
        last = await self.last_inbound_at(address)
        if last is None:
            return False
        closed = self._closed_at.get(addresses.to_provider(address))
        if closed is not None and closed >= last:
            return False
        window = timedelta(hours=self.config.window_hours)
        margin = timedelta(minutes=self.config.window_margin_minutes)
        return (now or _utcnow()) < last + window - margin

    # -- templates -----------------------------------------------------------------------

    def template_for(self, message: OutboundMessage) -> tuple[str, TemplateRef] | None:
        """The approved template for ``message``: by its template name (``metadata['template']``,
        when the core passes it), else ``default``; in its language, else the language without
        its region (``es`` for ``es-MX``). None when there is none."""
        names = [str(message.metadata["template"])] if message.metadata.get("template") else []
        names.append("default")
        languages = [message.language]
        base = message.language.split("-", 1)[0]
        if base != message.language:
            languages.append(base)
        for name in names:
            by_language = self.config.templates.get(name) or {}
            for language in languages:
                if language in by_language:
                    return name, by_language[language]
        return None

    @staticmethod
    def template_variables(template: TemplateRef, message: OutboundMessage) -> dict[str, str]:
        """The template's ``ContentVariables``, filled from ``message``."""
        first_line = next((line for line in message.body.splitlines() if line.strip()), "")
        sources: dict[str, str] = {
            "body": message.body,
            "first_line": first_line,
            "subject": message.subject or first_line,
        }
        values: dict[str, str] = {}
        for name, source in template.variables.items():
            if source.startswith("metadata."):
                raw = message.metadata.get(source.removeprefix("metadata."))
                value = "" if raw is None else str(raw)
            else:
                value = sources[source]
            values[name] = _variable_text(value) or "-"
        return values

    def _no_template(self, message: OutboundMessage) -> PermanentSendError:
        name = message.metadata.get("template") or "default"
        return PermanentSendError(
            f"outside WhatsApp's 24-hour window and no approved template for {name!r} in "
            f"{message.language!r}: add one under channels.{self.name}.templates",
            code=NO_TEMPLATE_CODE,
        )

    # -- sending -----------------------------------------------------------------------

    def _base_params(self, message: OutboundMessage) -> dict[str, Any]:
        return self.sender_params(addresses.to_provider(message.address))

    def session_params(self, message: OutboundMessage) -> dict[str, Any]:
        """The free-form message for an open window: text, with quick-reply buttons when a
        content template for that many buttons is configured and the texts fit it, else with
        the choices as a numbered list."""
        params = self._base_params(message)
        buttons = message.buttons
        sid = self.config.quick_replies.get(len(buttons)) if buttons else None
        fits = (
            sid is not None
            and len(buttons) <= MAX_QUICK_REPLY_BUTTONS
            and len(message.body) <= MAX_QUICK_REPLY_BODY
            and all(0 < len(b.label) <= MAX_BUTTON_TITLE for b in buttons)
        )
        if sid is not None and fits:
            variables = {"1": message.body}
            for index, button in enumerate(buttons):
                variables[str(2 + 2 * index)] = button.label
                variables[str(3 + 2 * index)] = button.value
            params["content_sid"] = sid
            params["content_variables"] = json.dumps(variables, ensure_ascii=False)
            return params
        body = numbered_choices(message.body, buttons) if buttons else message.body
        if len(body) > MAX_BODY_CHARACTERS:
            raise PermanentSendError(
                f"message is {len(body)} characters; WhatsApp through Twilio allows at most "
                f"{MAX_BODY_CHARACTERS}",
                code=21617,
            )
        params["body"] = body
        return params

    def template_params(self, message: OutboundMessage) -> dict[str, Any]:
        """The approved template for a closed window; raises the no-template skip."""
        found = self.template_for(message)
        if found is None:
            raise self._no_template(message)
        _, template = found
        params = self._base_params(message)
        params["content_sid"] = template.content_sid
        variables = self.template_variables(template, message)
        if variables:
            params["content_variables"] = json.dumps(variables, ensure_ascii=False)
        return params

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send free-form inside the window, the approved template outside it (see the
        module doc); raises a SendError subclass on failure."""
        if not message.body.strip():
            raise PermanentSendError("message body is empty", code=21602)
        if await self.window_open(message.address):
            try:
                return await self._create(message, self.session_params(message))
            except PermanentSendError as exc:
                if exc.code != str(OUTSIDE_WINDOW):
                    raise
                # Twilio knows better: the window is closed. The template, never the same text.
                self.note_window_closed(message.address)
                self.log.info("whatsapp %s message %s to %s: outside the window, using the "
                              "template", self.name, message.message_id,
                              addresses.mask(message.address))
        return await self._create(message, self.template_params(message))

    async def _create(self, message: OutboundMessage, params: dict[str, Any]) -> SendResult:
        created = await self.create_message(message, params)
        return SendResult(provider_message_id=created.sid, status="queued", segments=1)

    def preview_details(self, message: OutboundMessage) -> Mapping[str, Any]:
        """Characters, whether the text fits, and whether a template exists for when the
        window is closed (the window itself is known only at send time)."""
        found = self.template_for(message)
        return {
            "characters": len(message.body),
            "too_long": len(message.body) > MAX_BODY_CHARACTERS,
            "template_outside_window": found[0] if found else None,
        }

    async def reconcile(
        self, message: OutboundMessage, provider_message_id: str | None
    ) -> str | None:
        """Twilio's current status for a message whose fate is unknown, in the gateway's words.

        With a SID the message is fetched; without one, recent messages to the address from
        our sender are listed and one created within :attr:`reconcile_window` whose body is the
        free-form text is taken (a template's text is Twilio's, so a template send whose SID
        never came back cannot be matched: None, and the outbox decides). None when Twilio has
        no such message or cannot be asked.
        """
        texts = {message.body, numbered_choices(message.body, message.buttons)}
        to = addresses.to_provider(message.address)
        return await self.find_status(message, provider_message_id, to=to, texts=texts, now=_utcnow)

    # -- webhooks ----------------------------------------------------------------------

    def webhooks(self) -> Mapping[str, WebhookHandler]:
        """``inbound`` (messages and button taps) and ``status`` (delivery and read reports)."""
        return self._webhooks.handlers()
