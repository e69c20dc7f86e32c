"""Every hook a gateway plugin can implement. One docstring each.

Plugins implement them with ``@gateway.hookimpl``; built-in plugins are registered through the
same entry-point group (``gateway``) a third-party package uses. Hooks that return awaitables
(start-up, shut-down, observers) are awaited by the core.

Hooks about the running gateway receive ``context`` (a :class:`~gateway.contract.PluginContext`).
They are also passed ``gateway`` (the whole :class:`~gateway.app.Gateway`) so plugins written
before contract 2 keep working; it is not part of the contract. An implementation takes only
the arguments it names.

Observers (``gateway_inbound_processed``, ``gateway_message_status``, ``gateway_startup``,
``gateway_shutdown``) are isolated: an exception in one implementation is logged with the
plugin's name and the others still run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import typer
    from aiohttp import web

    from gateway.app import Gateway
    from gateway.channels import Channel, InboundMessage, InboundOutcome
    from gateway.contract import MessageStatusEvent, PluginContext
    from gateway.translation.engine import TranslationEngine

hookspec = pluggy.HookspecMarker("gateway")

#: What an observer returns: nothing, or an awaitable the core awaits.
Observed = Awaitable[None] | None


@hookspec
def gateway_channel_types() -> list[type[Channel]]:
    """Return the :class:`gateway.Channel` subclasses this plugin provides (each declares its
    :class:`gateway.AddressKind` as ``address_kind``)."""


@hookspec
def gateway_translation_engines() -> list[type[TranslationEngine]]:
    """Return the :class:`gateway.TranslationEngine` subclasses this plugin provides."""


@hookspec(firstresult=True)
def gateway_select_translation_engine(
    engines: list[TranslationEngine], source: str, target: str
) -> TranslationEngine | None:
    """Pick the engine for one language pair from the configured ones (in config order).

    The first non-None answer wins; the built-in answer, registered ``trylast``, takes the
    first engine in ``translation.engines`` that can translate the pair.
    """


@hookspec
def gateway_template_filters() -> dict[str, Callable[..., Any]]:
    """Return extra Jinja filters ``{name: callable}`` for every template."""


@hookspec
def gateway_web_routes(context: PluginContext, app: web.Application, gateway: Gateway) -> None:
    """Add routes to the aiohttp application (beyond channel webhooks)."""


@hookspec
def gateway_startup(context: PluginContext, gateway: Gateway) -> Observed:
    """Called once the gateway is wired and its channels started; may return an awaitable."""


@hookspec
def gateway_shutdown(context: PluginContext, gateway: Gateway) -> Observed:
    """Called before the gateway stops; may return an awaitable."""


@hookspec
def gateway_inbound_processed(
    context: PluginContext, inbound: InboundMessage, outcome: InboundOutcome, gateway: Gateway
) -> Observed:
    """Observe every reply after the pipeline handled it; may return an awaitable."""


@hookspec
def gateway_message_status(
    context: PluginContext,
    event: MessageStatusEvent,
    gateway: Gateway,
    message_id: int,
    status: str,
    detail: MessageStatusEvent,
) -> Observed:
    """Observe every outbox status change (``event``: a :class:`gateway.MessageStatusEvent`,
    whether it came from a send or a provider's report); may return an awaitable.

    ``message_id``, ``status`` and ``detail`` (the same event) are kept for older plugins.
    """


@hookspec
def gateway_cli_commands(cli: typer.Typer) -> None:
    """Add commands to the ``gateway`` Typer application."""
