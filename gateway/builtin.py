"""Core behaviour expressed as hook implementations, so plugins can override it."""

from __future__ import annotations

from typing import Any

from gateway import hookimpl


@hookimpl(trylast=True)
def gateway_select_translation_engine(engines: list[Any], source: str, target: str) -> Any | None:
    """Default choice: the first configured engine that can translate the pair."""
    for engine in engines:
        if engine.available() and engine.can_translate(source, target):
            return engine
    return None
