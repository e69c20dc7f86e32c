"""The event loop every command runs on: libuv's (``uvloop``) where it is installed — it is a
dependency on Linux and macOS — and the standard library's otherwise.

A worker sending over a fast network spends most of its time in the event loop's socket
callbacks (docs/benchmarks.md, "Fourth session"); uvloop does that work in C. Set
``GATEWAY_EVENT_LOOP=asyncio`` to run on the standard library's loop (to compare, or to debug
with asyncio's debug mode).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from gateway.errors import ConfigError

__all__ = ["loop_factory", "run"]

T = TypeVar("T")

#: The environment variable that picks the loop: ``uvloop`` (the default) or ``asyncio``.
EVENT_LOOP_VARIABLE = "GATEWAY_EVENT_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What creates the loop: uvloop's ``new_event_loop`` unless ``GATEWAY_EVENT_LOOP=asyncio``
    or uvloop is not installed; None means the standard library's default."""
    choice = os.environ.get(EVENT_LOOP_VARIABLE, "uvloop").strip().lower()
    if choice == "asyncio":
        return None
    if choice != "uvloop":
        raise ConfigError(f"{EVENT_LOOP_VARIABLE}={choice!r}: expected 'uvloop' or 'asyncio'")
    try:
        import uvloop
    except ImportError:  # Windows, or an install without it
        return None
    return uvloop.new_event_loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a new loop from :func:`loop_factory` (as ``asyncio.run``)."""
    try:
        factory = loop_factory()
    except ConfigError:
        coro.close()  # never started: no "was never awaited" warning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)
