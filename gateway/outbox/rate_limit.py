"""Send-rate limits: overall per channel and per recipient.

:class:`LocalRateLimiter` paces one process with token buckets. :class:`DatabaseRateLimiter`
shares one budget among every worker process through the database (a row per key and
one-second slot, incremented atomically), so N workers never add up to N times the limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LocalRateLimiter", "RateLimiter", "TokenBucket"]


@dataclass
class TokenBucket:
    """A bucket of ``rate`` tokens per second holding at most ``burst`` tokens."""

    rate: float
    burst: float
    tokens: float = 0.0
    updated: float = 0.0

    def __post_init__(self) -> None:
        self.tokens = self.burst
        self.updated = time.monotonic()

    def reserve(self, units: float, now: float) -> float:
        """Take ``units`` (possibly going negative); return how long to wait before using them."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= units
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class RateLimiter:
    """Interface: wait until ``units`` may be used under ``key`` at ``rate`` per second."""

    async def acquire(self, key: str, rate: float | None, units: float = 1.0) -> None:
        """Block (asynchronously) until allowed."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release resources."""


class LocalRateLimiter(RateLimiter):
    """Token buckets in this process, with a burst of one: sends are spaced ``1/rate`` apart,
    so no 1-second window ever holds more than ``rate`` of them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[tuple[str, float], TokenBucket] = {}
        self._clock = clock

    async def acquire(self, key: str, rate: float | None, units: float = 1.0) -> None:
        """Wait for the bucket of ``key``."""
        if not rate:
            return
        bucket = self._buckets.get((key, rate))
        if bucket is None:
            bucket = TokenBucket(rate=rate, burst=1.0)
            self._buckets[(key, rate)] = bucket
        wait = bucket.reserve(units, self._clock())
        if wait > 0:
            await asyncio.sleep(wait)
