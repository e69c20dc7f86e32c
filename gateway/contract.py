"""The versioned plugin contract: what hooks receive, and which contract version a plugin needs.

:data:`CONTRACT_VERSION` is ``MAJOR.MINOR``. The minor number grows when something is added
(a hook, a field, a context method); the major number when something a plugin may rely on
changes. A plugin module (or object) that declares ``GATEWAY_CONTRACT = "2"`` (or ``"2.1"``) is
loaded only by a gateway whose contract has the same major version and at least that minor
version; any other is refused at load time with both versions named.

Hooks receive a :class:`PluginContext` (``context``), a narrow door into the gateway: a
database session factory, the settings, a way to queue a reply to a family, and the public URL.
The ``gateway`` argument older plugins take is still passed, but is not part of the contract.
"""

from __future__ import annotations

import logging
import re
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from gateway.errors import PluginError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from gateway.app import Gateway
    from gateway.channels import StatusUpdate
    from gateway.config import GatewayConfig

__all__ = [
    "CONTRACT_VERSION",
    "MessageStatusEvent",
    "PluginContext",
    "QueuedReply",
    "check_contract",
]

CONTRACT_VERSION = "2.0"
"""The plugin contract this gateway implements (``MAJOR.MINOR``)."""

_VERSION = re.compile(r"(\d+)(?:\.(\d+))?")


def _parse(version: str, where: str) -> tuple[int, int]:
    match = _VERSION.fullmatch(str(version).strip())
    if match is None:
        raise PluginError(f"{where}: contract version {version!r} is not MAJOR or MAJOR.MINOR")
    return int(match.group(1)), int(match.group(2) or 0)


def check_contract(plugin: object, name: str, version: str = CONTRACT_VERSION) -> None:
    """Refuse ``plugin`` when its ``GATEWAY_CONTRACT`` cannot be met by ``version``."""
    wanted = getattr(plugin, "GATEWAY_CONTRACT", None)
    if wanted is None:
        return
    where = f"plugin {name!r}"
    need_major, need_minor = _parse(str(wanted), where)
    have_major, have_minor = _parse(version, "gateway")
    if need_major != have_major or need_minor > have_minor:
        raise PluginError(
            f"{where} needs plugin contract {wanted}, this gateway implements {version} "
            f"(same major version and at least the minor version are required)"
        )


@dataclass(frozen=True, slots=True)
class MessageStatusEvent:
    """One outbox status change, as ``gateway_message_status`` observers receive it."""

    message_id: int
    channel: str
    status: str
    """The status the message now has (``sent``, ``delivered``, ``read``, ``failed``,
    ``unknown``, ``queued`` when sent again, ``cancelled``...)."""
    occurred_at: datetime
    provider_message_id: str | None = None
    error_code: str | None = None
    reason: str | None = None
    """Why, when there is a why (a provider's error, "endpoint opted out"); never an address."""
    source: str = "dispatch"
    """``dispatch`` (the outcome of a send) or ``report`` (a provider's delivery report)."""

    @classmethod
    def from_report(
        cls, message_id: int, report: StatusUpdate, status: str | None = None
    ) -> MessageStatusEvent:
        """The event for a delivery report that moved ``message_id`` to ``status``."""
        return cls(
            message_id=message_id,
            channel=report.channel,
            status=status or report.status,
            occurred_at=report.occurred_at,
            provider_message_id=report.provider_message_id,
            error_code=report.error_code,
            reason=report.error_reason,
            source="report",
        )


@dataclass(frozen=True, slots=True)
class QueuedReply:
    """What :meth:`PluginContext.queue_reply` queued."""

    message_id: int
    channel: str
    language: str
    status: str


class PluginContext:
    """What the gateway offers every hook: a narrow, stable door in place of the gateway itself."""

    contract_version: str = CONTRACT_VERSION

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self.logger = logging.getLogger("gateway.plugin")

    @property
    def settings(self) -> GatewayConfig:
        """The validated configuration (read it, do not change it)."""
        return self._gateway.config

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A new database session: ``async with context.session() as session: ...`` (commit
        what you change; the gateway's own tables are not part of the contract)."""
        return self._gateway.db.session()

    def public_url(self, path: str) -> str:
        """``http.public_base_url`` joined with ``path``; ConfigError when it is not set."""
        return self._gateway.public_url(path)

    async def queue_reply(self, inbound_id: int, text: str, *, author: str = "plugin") -> QueuedReply:
        """Answer a family's reply (an inbox item): ``text`` is translated into the family's
        language and queued on the channel the reply came from, like a staff answer. Raises
        :class:`~gateway.errors.StaffFacingError` (nothing queued) when the family opted out of
        that channel or its address there does not work."""
        row = await self._gateway.inbound.staff_reply(inbound_id, text, staff=author)
        return QueuedReply(message_id=row.id, channel=row.channel, language=row.language, status=row.status)

    def channel_names(self) -> list[str]:
        """The configured channels, in fallback order."""
        return list(self._gateway.channels)
