"""Every hook a gateway plugin can implement. One docstring each.

Plugins implement them with ``@gateway.hookimpl``; built-in plugins are registered through the
same entry-point group (``gateway``) a third-party package uses. Hooks that return awaitables
(start-up, shut-down, observers) are awaited by the core.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("gateway")


@hookspec
def gateway_channel_types() -> list[type]:
    """Return the :class:`gateway.Channel` subclasses this plugin provides."""


@hookspec
def gateway_translation_engines() -> list[type]:
    """Return the :class:`gateway.TranslationEngine` subclasses this plugin provides."""


@hookspec(firstresult=True)
def gateway_select_translation_engine(engines: list[Any], source: str, target: str) -> Any | None:
    """Pick the engine for one language pair from the configured ones (in config order).

    The first non-None answer wins; the built-in answer, registered ``trylast``, takes the
    first engine in ``translation.engines`` that can translate the pair.
    """


@hookspec
def gateway_template_filters() -> dict[str, Any]:
    """Return extra Jinja filters ``{name: callable}`` for every template."""


@hookspec
def gateway_web_routes(gateway: Any, app: Any) -> None:
    """Add routes to the aiohttp application (beyond channel webhooks)."""


@hookspec
def gateway_startup(gateway: Any) -> Any:
    """Called once the gateway is wired; may return an awaitable."""


@hookspec
def gateway_shutdown(gateway: Any) -> Any:
    """Called before the gateway stops; may return an awaitable."""


@hookspec
def gateway_inbound_processed(gateway: Any, inbound: Any, outcome: Any) -> Any:
    """Observe every reply after the pipeline handled it; may return an awaitable."""


@hookspec
def gateway_message_status(gateway: Any, message_id: int, status: str, detail: Any) -> Any:
    """Observe every outbox status change; may return an awaitable."""


@hookspec
def gateway_cli_commands(cli: Any) -> None:
    """Add commands to the ``gateway`` Typer application."""
