"""The event loop commands run on: uvloop by default, the standard library's on request, and a
clear error for anything else."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
import uvloop

from gateway import event_loop
from gateway.cli import run
from gateway.errors import ConfigError


async def _running_loop() -> type:
    return type(asyncio.get_running_loop())


def test_commands_run_on_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(event_loop.EVENT_LOOP_VARIABLE, raising=False)
    assert run(_running_loop()) is uvloop.Loop


def test_the_standard_library_loop_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.EVENT_LOOP_VARIABLE, "asyncio")
    loop_type = run(_running_loop())
    assert loop_type is not uvloop.Loop
    assert issubclass(loop_type, asyncio.BaseEventLoop)


def test_a_missing_uvloop_falls_back_to_the_standard_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(event_loop.EVENT_LOOP_VARIABLE, raising=False)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop -> ImportError
    assert event_loop.loop_factory() is None


def test_an_unknown_loop_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.EVENT_LOOP_VARIABLE, "tokio")
    with pytest.raises(ConfigError, match="GATEWAY_EVENT_LOOP='tokio'"):
        event_loop.loop_factory()


def test_the_cli_names_the_variable_of_an_unknown_loop(
    cli: Any, config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(event_loop.EVENT_LOOP_VARIABLE, "tokio")
    result = cli(["families", "list", "--json"], config_path)
    assert result.exit_code == 2
    assert "GATEWAY_EVENT_LOOP='tokio'" in result.output
    assert "expected 'uvloop' or 'asyncio'" in result.output

