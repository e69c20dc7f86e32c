"""Fixtures for the translation tests: the deterministic engine wired into the CLI, configs,
families files and event files."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import gateway.app
from gateway.testing.engines import DeterministicEnginePlugin
from gateway.testing.harness import write_config


@pytest.fixture
def engines() -> DeterministicEnginePlugin:
    """The deterministic engines (``table``, ``table2``) and their shared recorder."""
    return DeterministicEnginePlugin()


@pytest.fixture
def with_engines(
    monkeypatch: pytest.MonkeyPatch, engines: DeterministicEnginePlugin
) -> DeterministicEnginePlugin:
    """Every Gateway the CLI opens in this test also registers the deterministic engines."""
    real = gateway.app.make_plugin_manager

    def make(extra: Any = ()) -> Any:
        return real((*tuple(extra), engines))

    monkeypatch.setattr(gateway.app, "make_plugin_manager", make)
    return engines


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Path]:
    """``make_config(db_url=None, **translation)``: a test config using the table engine."""

    def make(db_url: str | None = None, folder: str = "gw", **translation: Any) -> Path:
        settings = {"engines": ["table"], "fallback": "source_language", **translation}
        return write_config(tmp_path / folder, db_url, translation=settings)

    return make


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to download (a sentence splitter, a package index...)."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args[:1]}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(urllib.request, "urlretrieve", refuse)
    connect = socket.socket.connect

    def local_only(sock: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if sock.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"network access attempted: {host}")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", local_only)
