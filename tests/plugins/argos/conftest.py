"""Shared fixtures for the Argos engine tests: test packages built once per session, no network."""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

if "argostranslate" not in sys.modules:
    # Read once, at argostranslate's first import: the tiny models run fastest on one thread.
    # (The engine points argostranslate's folders into its own data folder by itself.)
    os.environ.setdefault("ARGOS_INTRA_THREADS", "1")

from gateway_plugins.argos_translate import ArgosEngine, install_package

from gateway import EngineContext
from gateway.testing.argos_package import build_test_package

MANGLING_REMAP = {"]": ")"}
"""The en→ar test model turns every ``]`` piece into ``)``: it breaks ``[n]`` tokens."""


@pytest.fixture(scope="session")
def argos_packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every test package, built once: ``en-es``, ``fr-en``, ``en-ar`` (mangles), ``en-zt``."""
    folder = tmp_path_factory.mktemp("argos-packages")
    return {
        "en-es": build_test_package(folder / "en-es", "en", "es", {"▁world": "▁order"}),
        "fr-en": build_test_package(folder / "fr-en", "fr", "en", {"▁bonjour": "▁hello"}),
        "en-ar": build_test_package(folder / "en-ar", "en", "ar", MANGLING_REMAP),
        "en-zt": build_test_package(folder / "en-zt", "en", "zt", {"▁world": "▁family"}),
    }


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to download (a sentence splitter, a package index...)."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args[:1]}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(urllib.request, "urlretrieve", refuse)


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[Callable[..., ArgosEngine]]:
    """Build an engine on a fresh data folder, with the given packages installed."""
    engines: list[ArgosEngine] = []

    def factory(*packages: Path, settings: dict[str, Any] | None = None) -> ArgosEngine:
        data_dir = tmp_path / f"argos-{len(engines)}"
        for package in packages:
            install_package(package, data_dir)
        engine = ArgosEngine(EngineContext(data_dir, settings or {}))
        engines.append(engine)
        return engine

    yield factory
    for engine in engines:
        engine.close()


@pytest.fixture
def counting_executor() -> Iterator[CountingExecutor]:
    """A one-thread pool that counts its jobs (to check batching)."""
    executor = CountingExecutor()
    yield executor
    executor.shutdown(wait=True)


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that counts the jobs submitted to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.jobs = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Count, then submit."""
        self.jobs += 1
        return super().submit(fn, *args, **kwargs)
