"""The Gateway: wires config, plugin manager, database, catalogs, renderer, translation,
channels, the outbox dispatcher and the inbound pipeline. One per process."""

from __future__ import annotations

import inspect
import logging
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy
from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy.engine import make_url

from gateway.addresses import AddressKind, AddressKinds
from gateway.channels import (
    Channel,
    ChannelSettings,
    EndpointLink,
    InboundMessage,
    InboundOutcome,
    StatusOutcome,
    StatusUpdate,
)
from gateway.config import GatewayConfig, format_validation_error
from gateway.contract import MessageStatusEvent, PluginContext
from gateway.errors import ConfigError, EndpointState, PluginError
from gateway.logs import install_scrubbing
from gateway.metrics import GatewayMetrics
from gateway.plugins import channel_types, engine_types, make_plugin_manager
from gateway.privacy import register_secret
from gateway.storage.db import Database
from gateway.translation.catalogs import UI_DOMAIN, CatalogSet
from gateway.translation.engine import EngineContext, EngineSettings, TranslationEngine
from gateway.translation.glossary import Glossary
from gateway.translation.service import TranslationService

if TYPE_CHECKING:
    from gateway.inbound.pipeline import InboundPipeline
    from gateway.outbox.planner import BroadcastPlanner
    from gateway.rendering.composer import MessageComposer
    from gateway.rendering.renderer import TemplateRenderer
    from gateway.scheduling.scheduler import JobRunner

__all__ = ["CoreChannelContext", "Gateway"]

log = logging.getLogger("gateway")


class Gateway:
    """Everything a command, the server or a worker needs, built from one config."""

    def __init__(self, config: GatewayConfig, pm: pluggy.PluginManager | None = None) -> None:
        self.config = config
        install_scrubbing()
        self.pm = pm or make_plugin_manager()
        self.data_dir = config.data_dir
        self.metrics = GatewayMetrics()
        register_secret(make_url(config.database_url).password)  # type: ignore[arg-type]
        self.db = Database(
            config.database_url,
            echo=config.database.echo,
            pool_size=config.database.pool_size,
            busy_timeout=config.database.busy_timeout_seconds,
        )
        self.catalogs = CatalogSet(config.locales_dir)
        self.ui_catalogs = CatalogSet(config.locales_dir, domain=UI_DOMAIN)
        self.plugin_context = PluginContext(self)
        """What hooks receive (``context``)."""
        self.address_kinds: AddressKinds = address_kinds(self.pm)
        """Every declared address kind: the built-in ones and those channel plugins declare."""
        self.channels: dict[str, Channel] = self._build_channels()
        self._engine_settings: dict[str, EngineSettings] = {}
        self._spare_engines: list[TranslationEngine] = []
        self.engines: list[TranslationEngine] = self._build_engines()
        self.translation = TranslationService(
            self.db,
            self.engines,
            source_language=config.translation.source_language,
            fallback=config.translation.fallback,
            glossary=Glossary.load(self._path(config.translation.glossary)),
            select_engine=self.pm.hook.gateway_select_translation_engine,
        )
        from gateway.intake import Intake
        from gateway.outbox.dispatcher import OutboxDispatcher

        self.dispatcher = OutboxDispatcher(self)
        self.intake = Intake(self)
        self.scheduler: JobRunner | None = None
        """The job runner, in the process that leads scheduling (``gateway serve``)."""
        self._started: list[Channel] = []

    # Built on first use: a worker that only sends (the outbox holds finished texts) does not
    # load Jinja, Babel's locale data or the survey machinery before its first message.
    @cached_property
    def renderer(self) -> TemplateRenderer:
        """Templates, their catalogs and the plugins' filters, under the render budget."""
        from gateway.rendering.renderer import RenderBudget, TemplateRenderer

        filters: dict[str, Any] = {}
        for extra in self.pm.hook.gateway_template_filters():
            filters.update(extra or {})
        budget = RenderBudget(
            seconds=self.config.rendering.time_limit_seconds,
            max_output=self.config.rendering.max_output_characters,
        )
        return TemplateRenderer(self.config.templates_dir, self.catalogs, filters, budget)

    @cached_property
    def composer(self) -> MessageComposer:
        """The one path from template + context + guardian + channel to the text sent."""
        from gateway.rendering.composer import MessageComposer

        return MessageComposer(self)

    @cached_property
    def planner(self) -> BroadcastPlanner:
        """Broadcasts: audience, composition and the outbox rows."""
        from gateway.outbox.planner import BroadcastPlanner

        return BroadcastPlanner(self)

    @cached_property
    def inbound(self) -> InboundPipeline:
        """Replies: classification, answers, the inbox."""
        from gateway.inbound.pipeline import InboundPipeline

        return InboundPipeline(self)

    # -- construction ---------------------------------------------------------------------
    def _path(self, value: Path | None) -> Path | None:
        if value is None:
            return None
        return value if value.is_absolute() else (self.config.base_dir / value).resolve()

    def _build_channels(self) -> dict[str, Channel]:
        types = channel_types(self.pm)
        channels: dict[str, Channel] = {}
        for name in self.config.ordered_channels():
            raw = dict(self.config.channels[name])
            plugin = raw.get("plugin")
            cls = types.get(plugin)
            if cls is None:
                known = ", ".join(sorted(types)) or "none"
                raise ConfigError(
                    f"{self.config.where()}: channels.{name}.plugin: unknown channel plugin "
                    f"{plugin!r} (installed: {known})"
                )
            settings_model: type[ChannelSettings] = cls.Settings
            try:
                settings = settings_model.model_validate(raw)
            except ValidationError as exc:
                raise ConfigError(
                    format_validation_error(exc, self.config.where(), prefix=f"channels.{name}.")
                ) from None
            declared = cls.declared_kind()
            kinds = ", ".join(self.address_kinds)
            if declared is None and settings.endpoint is None:
                guess = {"sms": "phone", "email": "email", "telegram": "telegram"}.get(name)
                if guess is None:
                    raise ConfigError(
                        f"{self.config.where()}: channels.{name}.endpoint: required for plugin "
                        f"{plugin!r} (a declared address kind: {kinds})"
                    )
                settings = settings.model_copy(update={"endpoint": guess})
            kind_name = declared or settings.endpoint
            if kind_name not in self.address_kinds:
                key = "plugin" if declared else "endpoint"
                raise ConfigError(
                    f"{self.config.where()}: channels.{name}.{key}: unknown address kind "
                    f"{kind_name!r} (declared: {kinds})"
                )
            _register_secrets(settings)
            channel = cls(name, settings, CoreChannelContext(self, name))
            channel.bind_address_kind(self.address_kinds[str(kind_name)])
            channels[name] = channel
        return channels

    def _build_engines(self) -> list[TranslationEngine]:
        types = engine_types(self.pm)
        where = self.config.where()
        settings = self.config.translation.engine_settings
        for name in settings:
            if name not in types:
                raise ConfigError(
                    f"{where}: translation.engine_settings.{name}: no installed engine is called "
                    f"{name!r} (installed: {', '.join(sorted(types)) or 'none'})"
                )
        # Every engine's settings are checked, listed in translation.engines or not: a typo in
        # a section kept for later must not wait until the day the engine is switched on.
        self._engine_settings = {
            name: types[name].parse_settings(raw, where, self.config.base_dir)
            for name, raw in settings.items()
        }
        engines: list[TranslationEngine] = []
        for name in self.config.translation.engines:
            cls = types.get(name)
            if cls is None:
                raise ConfigError(
                    f"{where}: translation.engines: unknown engine {name!r} "
                    f"(installed: {', '.join(sorted(types)) or 'none'})"
                )
            engines.append(self._new_engine(cls))
        return engines

    def _new_engine(self, cls: type[TranslationEngine]) -> TranslationEngine:
        validated = self._engine_settings.get(cls.name)
        if validated is None:
            validated = cls.parse_settings({}, self.config.where(), self.config.base_dir)
        return cls(EngineContext(self.data_dir / "translation" / cls.name, validated))

    def engine(self, name: str) -> TranslationEngine:
        """The engine called ``name``: the configured one, else a new instance of an installed
        engine with its ``engine_settings`` (for ``gateway translate install`` before the engine
        is listed in ``translation.engines``); closed with the gateway."""
        for engine in self.engines:
            if engine.name == name:
                return engine
        for engine in self._spare_engines:
            if engine.name == name:
                return engine
        types = engine_types(self.pm)
        cls = types.get(name)
        if cls is None:
            raise PluginError(
                f"no translation engine called {name!r} (installed: {', '.join(sorted(types)) or 'none'})"
            )
        engine = self._new_engine(cls)
        self._spare_engines.append(engine)
        return engine

    # -- lookups --------------------------------------------------------------------------
    def channel(self, name: str) -> Channel:
        """A configured channel by name."""
        try:
            return self.channels[name]
        except KeyError:
            raise PluginError(
                f"no channel named {name!r} (configured: {', '.join(self.channels) or 'none'})"
            ) from None

    def channels_for_kind(self, kind: str) -> list[Channel]:
        """Enabled channels reaching ``kind`` endpoints, in fallback order."""
        return [c for c in self.channels.values() if c.kind == kind and c.settings.enabled]

    def channels_for_endpoint(self, kind: str) -> list[Channel]:
        """Enabled channels that can reach an endpoint of ``kind``: those of the kind, and those
        of kinds that default from it (WhatsApp on a phone number), in fallback order."""
        derived = {k.name for k in self.address_kinds.derived(kind)}
        return [
            c
            for c in self.channels.values()
            if c.settings.enabled and (c.kind == kind or c.kind in derived)
        ]

    def resolve_preferred(self, value: str | None) -> str | None:
        """A stored ``preferred_channel`` as a channel name: a channel's name is kept; an address
        kind (or ``sms``, as older imports wrote) means the first channel of that kind."""
        if not value or value in self.channels:
            return value
        kind = "phone" if value == "sms" else value
        found = self.channels_for_kind(kind)
        return found[0].name if found else value

    def channel_name_for_kind(self, kind: str) -> str:
        """The name of the first channel reaching ``kind`` (the kind itself when none)."""
        found = self.channels_for_kind(kind)
        return found[0].name if found else kind

    # -- lifecycle ------------------------------------------------------------------------
    async def migrate(self) -> None:
        """Bring the schema up to date (Alembic is loaded only when it is not)."""
        from gateway.storage.migrate import schema_is_current, upgrade_async

        if not await schema_is_current(self.db.engine):
            await upgrade_async(self.config.database_url)

    async def start_channels(self, names: list[str] | None = None) -> None:
        """Start channels (open clients, pollers)."""
        for name, channel in self.channels.items():
            if names is not None and name not in names:
                continue
            if channel in self._started:
                continue
            await channel.start()
            self._started.append(channel)

    async def start(self) -> None:
        """Start every channel and call start-up hooks."""
        await self.start_channels()
        await self.call_hook("gateway_startup")

    async def close(self) -> None:
        """Stop channels and close the database."""
        await self.call_hook("gateway_shutdown")
        for channel in reversed(self._started):
            try:
                await channel.stop()
            except Exception:
                log.exception("channel %s failed to stop", channel.name)
        self._started.clear()
        for engine in [*self.engines, *self._spare_engines]:
            try:
                await engine.aclose()
            except Exception:
                log.exception("translation engine %s failed to close", engine.name)
        await self.translation.flush_stats()
        await self.db.close()

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def observed(self, hook: str) -> bool:
        """Whether any plugin implements the observer hook ``hook`` (so that events nobody
        receives are not built, at thousands of messages a second)."""
        return bool(getattr(self.pm.hook, hook).get_hookimpls())

    async def call_hook(self, hook: str, **kwargs: Any) -> None:
        """Call an observer hook, each implementation on its own: ``context`` and ``gateway``
        are added to ``kwargs``; an awaitable result is awaited; an exception (raised or from the
        awaitable) is logged with the plugin's name and the other implementations still run."""
        kwargs = {"context": self.plugin_context, "gateway": self, **kwargs}
        caller = getattr(self.pm.hook, hook)
        # pluggy's own call order: the last registered first, tryfirst/trylast honoured.
        for impl in reversed(caller.get_hookimpls()):
            if impl.hookwrapper or getattr(impl, "wrapper", False):
                continue
            try:
                result = impl.function(*(kwargs[name] for name in impl.argnames))
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.metrics.hook_failure(hook, impl.plugin_name)
                log.exception(
                    "plugin %s: %s failed; the other plugins were still called", impl.plugin_name, hook
                )

    async def message_status(self, event: MessageStatusEvent) -> None:
        """Tell ``gateway_message_status`` observers about one status change."""
        await self.call_hook(
            "gateway_message_status",
            event=event,
            message_id=event.message_id,
            status=event.status,
            detail=event,
        )

    def public_url(self, path: str) -> str:
        """``http.public_base_url`` + ``path``."""
        base = self.config.http.public_base_url
        if not base:
            raise ConfigError(
                f"{self.config.where()}: http.public_base_url: required (the address providers "
                "and families reach this gateway at)"
            )
        return base + path


def address_kinds(pm: pluggy.PluginManager) -> AddressKinds:
    """The built-in address kinds and those every installed channel plugin declares."""
    kinds = AddressKinds()
    for cls in channel_types(pm).values():
        declared = getattr(cls, "address_kind", None)
        owner = f"channel plugin {cls.plugin!r} ({cls.__module__})"
        if declared is not None and not isinstance(declared, AddressKind):
            raise PluginError(
                f"{owner}: address_kind must be a gateway.AddressKind, not {type(declared).__name__} "
                "(a built-in kind's name goes in endpoint_kind)"
            )
        if declared is not None:
            kinds.add(declared, owner)
    kinds.check_defaults()
    return kinds


def _register_secrets(value: Any) -> None:
    """Register every ``SecretStr`` of a settings model (nested models included) with
    :func:`gateway.privacy.register_secret`, so no log line ever shows them."""
    if isinstance(value, SecretStr):
        register_secret(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _register_secrets(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            _register_secrets(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _register_secrets(item)


class CoreChannelContext:
    """The gateway side of :class:`gateway.ChannelContext` for one channel."""

    def __init__(self, gateway: Gateway, name: str) -> None:
        self.gateway = gateway
        self.name = name
        self.data_dir = gateway.data_dir / "channels" / name
        self.logger = logging.getLogger(f"gateway.channel.{name}")

    def public_url(self, path: str) -> str:
        """``http.public_base_url`` + ``path``."""
        return self.gateway.public_url(path)

    def webhook_path(self, action: str) -> str:
        """Where the core mounts this channel's webhook ``action``."""
        return f"/webhooks/{self.name}/{action}"

    async def receive(self, message: InboundMessage) -> InboundOutcome:
        """Store (database or spool), then process now (:mod:`gateway.intake`)."""
        return await self.gateway.intake.receive(message)

    async def accept(self, message: InboundMessage) -> bool:
        """Store now (database or spool), process in the background."""
        return await self.gateway.intake.accept(message)

    async def update_status(self, update: StatusUpdate) -> StatusOutcome:
        """Apply a delivery report, keep it until it can be, or spool it."""
        return await self.gateway.intake.update_status(update)

    def _kind(self) -> AddressKind:
        channel = self.gateway.channel(self.name)
        return self.gateway.address_kinds[channel.kind]

    async def set_endpoint_state(self, address: str, state: EndpointState | None, reason: str) -> int:
        """Mark ``address`` on this channel only (every endpoint behind it)."""
        from gateway.storage.endpoints import set_endpoint_state

        return await set_endpoint_state(self.gateway.db, self._kind(), address, state, reason, self.name)

    async def link_endpoint(self, token: str, address: str) -> EndpointLink | None:
        """Redeem an onboarding token."""
        from gateway.storage.endpoints import redeem_link_token

        kind = self.gateway.channel(self.name).kind
        return await redeem_link_token(self.gateway.db, token, kind, address, self.name)

    async def endpoint_language(self, address: str) -> str | None:
        """The language of the guardian behind ``address``."""
        from gateway.storage.endpoints import endpoint_language

        return await endpoint_language(self.gateway.db, self._kind(), address)

    async def last_inbound_at(self, address: str) -> datetime | None:
        """When this channel last stored a message from ``address``."""
        from gateway.storage.endpoints import last_inbound_at

        return await last_inbound_at(self.gateway.db, self.name, address)

    def gettext(self, language: str, message: str, **params: Any) -> str:
        """A catalog string."""
        return self.gateway.catalogs.gettext(language, message, **params)

    async def text(self, language: str, message: str, **params: Any) -> str:
        """A plugin's sentence in ``language`` (catalog, memory, engine or English)."""
        return await self.gateway.composer.sentence(language, message, **params)

    def count_signature_failure(self) -> None:
        """``gateway_webhook_signature_failures_total{channel}`` + 1."""
        self.gateway.metrics.signature_failure(self.name)

    def alert(self, code: str, message: str) -> None:
        """A configuration alert for this channel (error log, ``/healthz``, metric)."""
        self.gateway.metrics.alert(self.name, code, message)
