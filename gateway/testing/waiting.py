"""Waiting for a condition, with a deadline: the one way tests and benchmarks synchronise.

A fixed ``sleep`` is a guess about how fast the machine is today; these poll the condition
itself and fail with a message that says what never happened. The deadline only bounds a
test that is already failing, so it is generous.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["DEFAULT_DEADLINE", "wait_for", "wait_for_sync"]

T = TypeVar("T")
DEFAULT_DEADLINE = 60.0


async def wait_for(
    condition: Callable[[], T | Awaitable[T]],
    *,
    deadline: float = DEFAULT_DEADLINE,
    interval: float = 0.02,
    what: str = "the condition",
) -> T:
    """Poll ``condition`` (sync or async) until it returns a truthy value, and return that value.

    Raises :class:`AssertionError` naming ``what`` when ``deadline`` seconds pass first. The
    interval grows from ``interval`` to at most 0.5 s, so a quick condition is seen quickly and
    a slow one does not spin.
    """
    end = time.monotonic() + deadline
    pause = interval
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= end:
            raise AssertionError(f"{what} did not happen within {deadline:g} s (last value: {value!r})")
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, 0.5)


def wait_for_sync(
    condition: Callable[[], T],
    *,
    deadline: float = DEFAULT_DEADLINE,
    interval: float = 0.02,
    what: str = "the condition",
) -> T:
    """:func:`wait_for` for code that is not running an event loop."""
    end = time.monotonic() + deadline
    pause = interval
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= end:
            raise AssertionError(f"{what} did not happen within {deadline:g} s (last value: {value!r})")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.5)
