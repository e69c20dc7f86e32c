"""Fixtures for the LibreTranslate engine: a local server speaking LibreTranslate's API and
engines pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from gateway_plugins.libretranslate_engine import LibreTranslateEngine

from gateway import EngineContext
from gateway.testing.libretranslate_server import FakeLibreTranslateServer


@pytest.fixture
async def server() -> AsyncIterator[FakeLibreTranslateServer]:
    """A LibreTranslate server with the default languages and no API key."""
    async with FakeLibreTranslateServer() as running:
        yield running


@pytest.fixture
async def make_engine(tmp_path: Path) -> AsyncIterator[Callable[..., LibreTranslateEngine]]:
    """``make_engine(url, **settings)``: an engine on its own data folder, closed afterwards."""
    made: list[LibreTranslateEngine] = []

    def factory(url: str, **settings: Any) -> LibreTranslateEngine:
        engine = LibreTranslateEngine(EngineContext(tmp_path / f"lt-{len(made)}", {"url": url, **settings}))
        made.append(engine)
        return engine

    yield factory
    for engine in made:
        await engine.aclose()
