"""A fake :class:`gateway.ChannelContext` that records what a channel hands back to the core."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.channels import (
    EndpointLink,
    InboundMessage,
    InboundOutcome,
    StatusOutcome,
    StatusUpdate,
)
from gateway.errors import ConfigError, EndpointState


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class FakeChannelContext:
    """Records inbound messages, status updates and endpoint changes; links by a token table.

    ``received`` keeps every reply handed in (duplicates by provider id are reported as such,
    like the real pipeline); ``links`` maps onboarding tokens to :class:`EndpointLink` and each
    token works once; ``inbound_times`` is the last message time per sender (what
    ``last_inbound_at`` answers).
    """

    name: str = "test"
    data_dir: Path = field(default_factory=lambda: Path("."))
    public_base_url: str | None = "https://gateway.example.org"
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("gateway.test"))
    received: list[InboundMessage] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    endpoint_states: list[tuple[str, EndpointState | None, str]] = field(default_factory=list)
    links: dict[str, EndpointLink] = field(default_factory=dict)
    languages: dict[str, str] = field(default_factory=dict)
    signature_failures: int = 0
    alerts: list[tuple[str, str]] = field(default_factory=list)
    classification: str = "free_text"
    answer_label: str | None = None
    inbound_times: dict[str, datetime] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set)

    def public_url(self, path: str) -> str:
        """Join the public base URL and ``path``."""
        if not self.public_base_url:
            raise ConfigError("http.public_base_url: required for this channel")
        return self.public_base_url.rstrip("/") + path

    def webhook_path(self, action: str) -> str:
        """``/webhooks/{name}/{action}``."""
        return f"/webhooks/{self.name}/{action}"

    async def receive(self, message: InboundMessage) -> InboundOutcome:
        """Record ``message`` once per provider id."""
        if message.provider_message_id in self._seen:
            return InboundOutcome(inbound_id=None, duplicate=True, classification="duplicate")
        self._seen.add(message.provider_message_id)
        self.received.append(message)
        last = self.inbound_times.get(message.sender)
        if last is None or message.received_at > last:
            self.inbound_times[message.sender] = message.received_at
        return InboundOutcome(
            inbound_id=len(self.received),
            duplicate=False,
            classification=self.classification,
            answer_label=self.answer_label,
        )

    async def accept(self, message: InboundMessage) -> bool:
        """Record ``message`` once per provider id; False for a duplicate."""
        return not (await self.receive(message)).duplicate

    async def update_status(self, update: StatusUpdate) -> StatusOutcome:
        """Record ``update``; a repeat of one already recorded is ``repeat``."""
        repeat = any(
            (u.provider_message_id, u.status) == (update.provider_message_id, update.status)
            for u in self.statuses
        )
        self.statuses.append(update)
        return StatusOutcome.REPEAT if repeat else StatusOutcome.APPLIED

    async def set_endpoint_state(self, address: str, state: EndpointState | None, reason: str) -> int:
        """Record the change."""
        self.endpoint_states.append((address, state, reason))
        return 1

    async def link_endpoint(self, token: str, address: str) -> EndpointLink | None:
        """Redeem ``token`` once."""
        link = self.links.pop(token, None)
        if link is not None:
            self.languages[address] = link.language
        return link

    async def endpoint_language(self, address: str) -> str | None:
        """The language recorded for ``address``."""
        return self.languages.get(address)

    async def last_inbound_at(self, address: str) -> datetime | None:
        """When a message from ``address`` was last handed in (or set in ``inbound_times``)."""
        return self.inbound_times.get(address)

    def gettext(self, language: str, message: str, **params: Any) -> str:
        """Identity translation with ``%(name)s`` interpolation."""
        return message % params if params else message

    async def text(self, language: str, message: str, **params: Any) -> str:
        """What :meth:`gettext` says (a subclass may translate)."""
        return self.gettext(language, message, **params)

    def count_signature_failure(self) -> None:
        """Count it."""
        self.signature_failures += 1

    def alert(self, code: str, message: str) -> None:
        """Record ``(code, message)``."""
        self.alerts.append((code, message))
