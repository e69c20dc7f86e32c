"""The plugin manager factory.

Built-in plugins (``gateway_plugins.*``) are declared in the ``gateway`` entry-point group of
this distribution, exactly like a third-party package would declare its own, and loaded by the
same :meth:`pluggy.PluginManager.load_setuptools_entrypoints` call. :data:`DEFAULT_PLUGINS`
is only the fallback for a source tree that was never installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pluggy

from gateway import hookspecs
from gateway.contract import CONTRACT_VERSION, check_contract
from gateway.errors import PluginError

__all__ = ["DEFAULT_PLUGINS", "ENTRY_POINT_GROUP", "PluginInfo", "make_plugin_manager"]

# A plugin's GATEWAY_CONTRACT is checked once every plugin is registered (gateway.contract).

ENTRY_POINT_GROUP = "gateway"

#: Modules of the built-in plugins (also declared as entry points in pyproject.toml).
DEFAULT_PLUGINS: tuple[str, ...] = ("gateway_plugins.sandbox",)


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """One registered plugin, as ``gateway plugins list`` shows it."""

    name: str
    module: str
    distribution: str | None
    hooks: tuple[str, ...]
    channels: tuple[str, ...]
    engines: tuple[str, ...]
    address_kinds: tuple[str, ...] = ()
    """Address kinds the plugin's channels declare (``address:<kind>`` columns)."""
    contract: str | None = None
    """The plugin contract it says it needs (``GATEWAY_CONTRACT``), if any."""


def make_plugin_manager(extra: Iterable[ModuleType | object] = ()) -> pluggy.PluginManager:
    """Build a plugin manager with the hook specs, entry-point plugins and ``extra`` objects."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    from gateway import builtin  # core behaviour that is itself a plugin

    pm.register(builtin, name="gateway.builtin")
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for module_name in DEFAULT_PLUGINS:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # pragma: no cover - broken install
            raise PluginError(f"built-in plugin {module_name} cannot be imported: {exc}") from exc
        if not pm.is_registered(module):
            pm.register(module, name=module_name.rsplit(".", 1)[-1])
    for obj in extra:
        # Named after its module or class, so a failing hook is logged with a readable name.
        name = getattr(obj, "__name__", None) or type(obj).__name__
        pm.register(obj, name=None if pm.has_plugin(name) else name)
    pm.check_pending()
    for name, plugin in pm.list_name_plugin():
        if plugin is not None:
            check_contract(plugin, name, CONTRACT_VERSION)
    return pm


def channel_types(pm: pluggy.PluginManager) -> dict[str, type]:
    """Every channel plugin class by its ``plugin`` name; a clash is an error."""
    found: dict[str, type] = {}
    for classes in pm.hook.gateway_channel_types():
        for cls in classes or ():
            other = found.get(cls.plugin)
            if other is not None and other is not cls:
                raise PluginError(
                    f"two plugins both provide channel plugin {cls.plugin!r}: "
                    f"{other.__module__} and {cls.__module__}"
                )
            found[cls.plugin] = cls
    return found


def engine_types(pm: pluggy.PluginManager) -> dict[str, type]:
    """Every translation engine class by its ``name``; a clash is an error."""
    found: dict[str, type] = {}
    for classes in pm.hook.gateway_translation_engines():
        for cls in classes or ():
            other = found.get(cls.name)
            if other is not None and other is not cls:
                raise PluginError(
                    f"two plugins both provide translation engine {cls.name!r}: "
                    f"{other.__module__} and {cls.__module__}"
                )
            found[cls.name] = cls
    return found


def describe_plugins(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """What each registered plugin provides, for ``gateway plugins list``."""
    dists: dict[int, str] = {}
    for plugin, dist in pm.list_plugin_distinfo():
        dists[id(plugin)] = f"{dist.project_name} {dist.version}"
    infos = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or ()))
        channel_classes = _call(plugin, "gateway_channel_types")
        channels = tuple(sorted(cls.plugin for cls in channel_classes))
        kinds = tuple(
            sorted({cls.address_kind.name for cls in channel_classes if getattr(cls, "address_kind", None)})
        )
        engines = tuple(sorted(cls.name for cls in _call(plugin, "gateway_translation_engines")))
        infos.append(
            PluginInfo(
                name=name,
                module=getattr(plugin, "__name__", type(plugin).__name__),
                distribution=dists.get(id(plugin)),
                hooks=hooks,
                channels=channels,
                engines=engines,
                address_kinds=kinds,
                contract=getattr(plugin, "GATEWAY_CONTRACT", None),
            )
        )
    return infos


def _call(plugin: Any, hook: str) -> list[type]:
    impl = getattr(plugin, hook, None)
    return list(impl() or ()) if callable(impl) else []
