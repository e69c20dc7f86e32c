"""The channel plugin contract: the base class, the settings every channel shares, and the
messages that cross the boundary between the core and a channel.

A channel plugin subclasses :class:`Channel`, declares which kind of family address it reaches
(:attr:`Channel.address_kind`, an :class:`~gateway.addresses.AddressKind`: a built-in one such as
``PHONE`` or its own), what it can show (:attr:`Channel.capabilities`) and implements
:meth:`Channel.send`. It gets a
:class:`ChannelContext` from the core: the only door back into the gateway (inbound replies,
delivery status, endpoint state, public URLs, catalog strings).
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from gateway.addresses import BUILTIN_KINDS, AddressKind
from gateway.errors import EndpointState

__all__ = [
    "Attachment",
    "Button",
    "Channel",
    "ChannelCapabilities",
    "ChannelContext",
    "ChannelSettings",
    "EndpointKind",
    "EndpointLink",
    "InboundMessage",
    "InboundOutcome",
    "OutboundMessage",
    "SendResult",
    "StatusOutcome",
    "StatusUpdate",
    "WebhookHandler",
]

EndpointKind = str
"""The name of an address kind (:class:`~gateway.addresses.AddressKind`): ``phone``, ``email``,
``telegram`` or one a plugin declares."""

#: Template variant a channel renders, by the built-in endpoint kind it reaches.
VARIANT_BY_KIND: dict[str, str] = {k.name: k.variant for k in BUILTIN_KINDS}
_BUILTIN_BY_NAME: dict[str, AddressKind] = {k.name: k for k in BUILTIN_KINDS}

#: Delivery statuses in the order they progress; a status update never moves backwards.
DELIVERY_STATUS_ORDER: dict[str, int] = {
    "queued": 0,
    "sending": 1,
    "unknown": 1,
    "sent": 2,
    "delivered": 3,
    "read": 4,
    "undelivered": 3,
    "failed": 3,
}

WebhookHandler = Callable[[Any], Awaitable[Any]]
"""``async (aiohttp.web.Request) -> aiohttp.web.StreamResponse``."""


#: Buttons a channel that only says ``supports_buttons = True`` is taken to show.
MAX_LEGACY_BUTTONS = 10


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class ChannelSettings(BaseModel):
    """Settings every channel has. A plugin subclasses this for its own keys.

    Unknown keys are refused, so a typo in ``config.yaml`` fails at start with its key path.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    plugin: str = Field(description="Which plugin implements this channel.")
    endpoint: str | None = Field(
        default=None,
        description="Address kind this channel reaches (a declared kind); plugins that know "
        "theirs ignore it.",
    )
    enabled: bool = True
    rate_per_second: float | None = Field(
        default=None, gt=0, description="Messages (or SMS segments) per second, all workers together."
    )
    rate_per_recipient_per_second: float | None = Field(
        default=None, gt=0, description="Messages per second to one address (Telegram: 1)."
    )
    concurrency: int = Field(default=8, ge=1, le=512, description="Sends in flight at once.")
    max_queue_hours: float | None = Field(
        default=10,
        gt=0,
        description="Refuse broadcasts that would take longer than this at rate_per_second "
        "(Twilio's queue limit per sender is 10 hours).",
    )


@dataclass(frozen=True, slots=True)
class ChannelCapabilities:
    """What a channel can show, read by the core when it renders and plans.

    A channel declares it as :attr:`Channel.capabilities`; channels that do not are described
    from the older attributes (``max_body_length``, ``supports_buttons``,
    ``supports_attachments``).
    """

    subject: bool = False
    """A subject or title line (e-mail subject, push notification title): rendered from the
    template's ``<channel>_title``, ``<kind>_title`` or ``email_subject`` block."""
    buttons: int = 0
    """How many reply buttons one message may carry (0: none; choices are then written out)."""
    max_length: int | None = None
    """The longest body the channel takes, in characters: the planner refuses, before writing
    anything, a broadcast with a longer message for this channel."""
    markup: Literal["text", "html", "telegram_html", "markdown"] = "text"
    """What the body is: plain text, an HTML part (e-mail), Telegram HTML or Markdown."""
    media: bool = False
    """Whether files travel with the message (others get a link in the text)."""

    def __post_init__(self) -> None:
        if self.buttons < 0:
            raise ValueError("buttons: 0 or more")
        if self.max_length is not None and self.max_length < 1:
            raise ValueError("max_length: 1 or more, or None")


@dataclass(frozen=True, slots=True)
class Button:
    """A reply choice shown as a button where the channel can (Telegram inline keyboards)."""

    value: str
    label: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that goes with a message: channels that carry files attach ``path``'s bytes;
    the others have the ``url`` in the text already."""

    filename: str
    content_type: str
    path: Path
    url: str | None = None
    size: int = 0


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One rendered message for one address, as the outbox hands it to a channel."""

    message_id: int
    channel: str
    address: str
    language: str
    body: str
    """SMS text, the e-mail's plain-text part, or Telegram-safe HTML."""
    subject: str | None = None
    html: str | None = None
    """The e-mail's HTML part (already carries ``lang`` and ``dir``)."""
    buttons: tuple[Button, ...] = ()
    reply_token: str | None = None
    """Per-message token: e-mail ``Reply-To`` and one-click unsubscribe."""
    unsubscribe_url: str | None = None
    text_direction: Literal["ltr", "rtl"] = "ltr"
    family_id: str | None = None
    broadcast_id: int | None = None
    attempt: int = 1
    metadata: Mapping[str, Any] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    """Files to send with the message (channels with ``supports_attachments``)."""

    @property
    def idempotency_key(self) -> str:
        """``gw-<message_id>``: the same for every attempt of this message (and its redelivery
        after a passing failure), different for every other message. Send it to providers that
        deduplicate on a key, or store it with the message where the provider keeps metadata,
        so :meth:`Channel.reconcile` can find the message when its fate is unknown."""
        return f"gw-{self.message_id}"


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the provider said when it took the message."""

    provider_message_id: str | None = None
    status: Literal["sent", "queued", "delivered"] = "sent"
    segments: int | None = None


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A delivery report from the provider (Twilio status callback, e-mail bounce...)."""

    channel: str
    provider_message_id: str
    status: Literal["queued", "sending", "sent", "delivered", "undelivered", "failed", "read"]
    error_code: str | None = None
    error_reason: str | None = None
    endpoint_state: EndpointState | None = None
    occurred_at: datetime = field(default_factory=utcnow)
    retry_after: float | None = None
    """For a ``failed`` / ``undelivered`` report that may pass (a handset out of coverage):
    the outbox sends the message again, once, no sooner than this many seconds later; a second
    failure is final."""


class StatusOutcome(StrEnum):
    """What the core did with a delivery report (:meth:`ChannelContext.update_status`).

    A provider may call back before the send returned and its message id was stored, so "no
    message has this id" is not the same as "already applied": the first is ``pending``, the
    second ``repeat``. Only ``applied`` is truthy, so ``if await ctx.update_status(u):`` still
    reads "the status changed".
    """

    APPLIED = "applied"
    """The message's status moved forward (history, endpoint state, fallback as needed)."""
    REPEAT = "repeat"
    """The message is already at this status or past it: nothing changed (statuses never move
    backwards), e.g. a provider retry."""
    PENDING = "pending"
    """No message carries this provider id yet: the report is kept and applied, in order, as
    soon as the id is stored; dropped (with a metric) if it never appears (bounded in age and
    count, see ``intake.pending_reports_*``)."""
    SPOOLED = "spooled"
    """The database could not take the report in time: it is in the local durable spool and
    will be applied (as above) when the database is back."""

    def __bool__(self) -> bool:
        return self is StatusOutcome.APPLIED


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A reply from a family (or anyone) as a channel parsed it."""

    channel: str
    provider_message_id: str
    sender: str
    """The address in the endpoint kind's form (E.164, lower-case e-mail, chat id)."""
    text: str
    received_at: datetime = field(default_factory=utcnow)
    choice: str | None = None
    """A tapped button's value, when the channel has buttons."""
    in_reply_to_message_id: int | None = None
    """The outbox message this answers, when the channel can tell (button, e-mail token)."""
    reply_token: str | None = None
    provider_in_reply_to: tuple[str, ...] = ()
    """Provider ids this reply references (e-mail ``In-Reply-To`` / ``References``)."""
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InboundOutcome:
    """What the inbound pipeline did with a reply."""

    inbound_id: int | None
    duplicate: bool
    classification: str
    family_id: str | None = None
    answer_label: str | None = None
    """For a recorded survey answer: the label of the matched choice, in the family's language."""


@dataclass(frozen=True, slots=True)
class EndpointLink:
    """Result of linking a chat/address to a family through an onboarding token."""

    family_id: str
    guardian_name: str
    language: str


class ChannelContext(Protocol):
    """What the core offers a channel. Implemented by the gateway; faked in tests."""

    name: str
    data_dir: Path
    logger: logging.Logger

    def public_url(self, path: str) -> str:
        """``http.public_base_url`` joined with ``path``; raises ConfigError when unset."""

    def webhook_path(self, action: str) -> str:
        """The path this channel's webhook ``action`` is mounted at."""

    async def receive(self, message: InboundMessage) -> InboundOutcome:
        """Hand a reply to the inbound pipeline (deduplicated on provider id) and process it now.

        Once this returns (without raising) the reply is stored durably: in the database, or,
        when the database cannot take it within ``intake.store_deadline_seconds``, in the local
        spool (``classification == "spooled"``, replayed when the database is back). A reply
        whose processing fails is kept and retried in the background
        (``classification == "pending"``). So a poller may mark the provider's copy as read
        as soon as this returns.
        """

    async def accept(self, message: InboundMessage) -> bool:
        """Store a reply durably (deduplicated) and return at once; False for a duplicate.

        The pipeline processes it in the background. For webhooks that must answer fast
        (SMS providers); use :meth:`receive` when the outcome is needed right away. As with
        :meth:`receive`, a reply the database cannot take in time is spooled (True).
        """

    async def update_status(self, update: StatusUpdate) -> StatusOutcome:
        """Apply a delivery report; see :class:`StatusOutcome` for what came of it.

        Every outcome means the report is safe: answer the provider with success. A report
        for a provider id not stored yet is kept (``pending``) and applied when the id
        appears; a repeat changes nothing (``repeat``).
        """

    async def set_endpoint_state(self, address: str, state: EndpointState | None, reason: str) -> int:
        """Mark ``address`` opted out or invalid (``None``: usable again) on this channel only:
        the family's other channels, even on the same address, are not affected. Every
        endpoint behind the address (guardians may share one) is marked; returns how many."""

    async def link_endpoint(self, token: str, address: str) -> EndpointLink | None:
        """Redeem an onboarding token for ``address``; None when bad, revoked or used."""

    async def endpoint_language(self, address: str) -> str | None:
        """The language of the guardian behind ``address``, if known."""

    async def last_inbound_at(self, address: str) -> datetime | None:
        """When this channel last received a message from ``address`` (None: never, or not
        stored yet). For windows a provider opens on each incoming message (WhatsApp's 24
        hours)."""

    def gettext(self, language: str, message: str, **params: Any) -> str:
        """A reviewed catalog string in ``language`` (English when no catalog has it)."""

    async def text(self, language: str, message: str, **params: Any) -> str:
        """``message`` (an English sentence of the plugin's own, ``%(name)s`` placeholders) in
        ``language``, the way the core translates template strings: reviewed catalog, translation
        memory, machine translation, or English. ``params`` are filled in afterwards (isolated in
        a right-to-left language) and never reach an engine."""

    def count_signature_failure(self) -> None:
        """Count a webhook request refused for a missing or wrong signature or secret
        (``gateway_webhook_signature_failures_total{channel}``)."""

    def alert(self, code: str, message: str) -> None:
        """Report a setting staff must change for this channel to work (e.g. a country the
        provider account may not send to): logged as an error the first time, listed under
        ``alerts`` in ``/healthz`` and exported as ``gateway_channel_config_alert{channel,code}``
        until the gateway restarts. ``message`` says what to change; it must hold no address."""


class Channel(abc.ABC):
    """Base class of every channel plugin.

    Subclasses set :attr:`plugin` (the name used as ``plugin:`` in config) and, when they
    know it, :attr:`address_kind` (or, as older plugins do, :attr:`endpoint_kind`, the name of a
    built-in kind); they may declare :attr:`Settings` for their own keys and
    :attr:`capabilities`.
    """

    plugin: ClassVar[str]
    address_kind: ClassVar[AddressKind | None] = None
    """The kind of address this channel reaches, declared with the channel (its own or a
    built-in one: ``gateway.PHONE``, ``gateway.EMAIL``, ``gateway.TELEGRAM``)."""
    endpoint_kind: ClassVar[str | None] = None
    """Older form of :attr:`address_kind`: the name of a declared kind."""
    capabilities: ClassVar[ChannelCapabilities | None] = None
    """What the channel can show; None: described from the attributes below."""
    Settings: ClassVar[type[ChannelSettings]] = ChannelSettings
    max_body_length: ClassVar[int | None] = None
    supports_buttons: ClassVar[bool] = False
    supports_attachments: ClassVar[bool] = False
    """Whether the channel sends files itself (e-mail); others get a link in the text."""
    default_rate_per_second: ClassVar[float | None] = None
    default_rate_per_recipient_per_second: ClassVar[float | None] = None

    def __init__(self, name: str, settings: ChannelSettings, context: ChannelContext) -> None:
        self.name = name
        self.settings = settings
        self.context = context
        self.log = context.logger
        self._address_kind: AddressKind | None = None

    @classmethod
    def declared_kind(cls) -> str | None:
        """The name of the address kind the class declares (None: the config says)."""
        if cls.address_kind is not None:
            return cls.address_kind.name
        return cls.endpoint_kind

    def bind_address_kind(self, kind: AddressKind) -> None:
        """Called by the core once the channel's kind is resolved against the declared kinds."""
        self._address_kind = kind

    @property
    def kind(self) -> EndpointKind:
        """The name of the address kind this channel reaches."""
        kind = self.declared_kind() or self.settings.endpoint
        if kind is None:  # pragma: no cover - validated when the channel is built
            raise ValueError(f"channel {self.name!r} does not say which endpoint kind it reaches")
        return kind

    @property
    def kind_info(self) -> AddressKind | None:
        """The :class:`AddressKind` this channel reaches, once resolved."""
        return self._address_kind or self.address_kind or _BUILTIN_BY_NAME.get(self.kind)

    @property
    def variant(self) -> str:
        """The built-in template form this channel renders (``sms``, ``email``, ``telegram``)."""
        info = self.kind_info
        return info.variant if info is not None else VARIANT_BY_KIND.get(self.kind, "sms")

    @property
    def template_blocks(self) -> tuple[str, ...]:
        """Template blocks tried before the variant's own: the channel's name, then its kind's."""
        return tuple(dict.fromkeys((self.name, self.kind)))

    @property
    def features(self) -> ChannelCapabilities:
        """The capabilities the core reads: :attr:`capabilities`, or a description from
        ``max_body_length``, ``supports_buttons`` and ``supports_attachments``."""
        if self.capabilities is not None:
            return self.capabilities
        variant = self.variant
        return ChannelCapabilities(
            subject=variant == "email",
            buttons=MAX_LEGACY_BUTTONS if self.supports_buttons else 0,
            max_length=self.max_body_length,
            markup="html" if variant == "email" else "telegram_html" if variant == "telegram" else "text",
            media=bool(self.supports_attachments),
        )

    @property
    def rate_per_second(self) -> float | None:
        """Overall send rate, from config or the plugin's default."""
        return self.settings.rate_per_second or self.default_rate_per_second

    @property
    def rate_per_recipient_per_second(self) -> float | None:
        """Per-address send rate, from config or the plugin's default."""
        return self.settings.rate_per_recipient_per_second or self.default_rate_per_recipient_per_second

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open clients, start pollers. Called once before the first send."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Close clients and stop background tasks."""

    @abc.abstractmethod
    async def send(self, message: OutboundMessage) -> SendResult:
        """Hand ``message`` to the provider; raise a :class:`~gateway.errors.SendError` subclass."""

    def webhooks(self) -> Mapping[str, WebhookHandler]:
        """Webhook actions, mounted by the core at ``POST /webhooks/{channel}/{action}``."""
        return {}

    def preview_details(self, message: OutboundMessage) -> Mapping[str, Any]:
        """Facts shown before sending (segments, encoding, cost for SMS). Empty by default."""
        return {}

    def cost_units(self, message: OutboundMessage) -> int:
        """How many units of the channel's rate limit one message uses (SMS: segments)."""
        return 1

    async def reconcile(self, message: OutboundMessage, provider_message_id: str | None) -> str | None:
        """For a message whose fate is unknown, ask the provider whether it has it.

        Called by the outbox (never concurrently for one message) for a message left
        ``unknown``: :meth:`send` raised :class:`~gateway.errors.DeliveryUnknownError`, or the
        worker died mid-send and its lease expired. ``provider_message_id`` is the id if one
        was recorded, else None: look the message up by what the channel sent with it (the
        idempotency key ``gw-<message_id>``, a custom header, the reply token).

        Return the provider's status (``queued``, ``sent``, ``delivered``, ``failed``...) when
        it can tell — the outbox records it and never resends — or None when it cannot (the
        outbox re-queues the message once the lease period has passed: a possible duplicate,
        counted as ``requeued_unknown``). Only channels that override this method get this
        treatment; the others are resent when their lease expires. See docs/plugin_hooks.md.
        """
        return None
