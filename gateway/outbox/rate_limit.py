"""Send-rate limits: overall per channel and per recipient.

Every limiter spaces sends ``units / rate`` seconds apart (GCRA with a burst of one), times a
small safety ``margin`` so that the jitter between "allowed" and "arrived at the provider"
cannot push two sends closer than the provider's 1-second window allows:

* :class:`LocalRateLimiter`: token buckets in this process (SQLite, single worker).
* :class:`DatabaseRateLimiter`: one ``dispatch_counters`` row per key (``slot = 0``) holds the
  key's *theoretical arrival time* in epoch seconds of the database clock; a reservation is
  one atomic ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` (the row lock serialises
  concurrent workers), so N worker processes share one budget instead of adding up to N times
  the limit.
* :class:`RedisRateLimiter`: the same algorithm in a Lua script on Redis's clock.

``acquire`` reserves the next free slot and sleeps until it; ``try_acquire`` takes the slot
only when it is free now (per-recipient limits: a message to a busy recipient waits without
blocking the channel's other sends). :func:`make_rate_limiter` picks one from
``dispatch.rate_limiter`` (``auto`` = database on PostgreSQL, local on SQLite).

A message worth several units (an SMS of 3 segments) reserves ``3 / rate`` seconds; the
provider sees its units at once, so a 1-second window may hold up to ``units - 1`` more than
the rate when multi-segment messages are mixed in (single-unit channels such as Telegram are
exact).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.storage.db import Database

__all__ = [
    "DEFAULT_MARGIN",
    "DatabaseRateLimiter",
    "LocalRateLimiter",
    "RateLimiter",
    "RedisRateLimiter",
    "TokenBucket",
    "make_rate_limiter",
]

log = logging.getLogger("gateway.outbox.rate_limit")

#: Sends are spaced ``(1 + DEFAULT_MARGIN) / rate`` apart: 3 % of throughput buys ~30 ms of
#: tolerance (at 30/s) for scheduling and network jitter between workers and the provider.
DEFAULT_MARGIN = 0.03
#: ``dispatch_counters`` rows older than this (seconds) are deleted now and then.
STALE_SECONDS = 600.0


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

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def reserve(self, units: float, now: float) -> float:
        """Take ``units`` (possibly going negative); return how long to wait before using them."""
        self._refill(now)
        self.tokens -= units
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def try_take(self, units: float, now: float) -> float:
        """Take ``units`` when available now (returns 0), else return the wait and take nothing."""
        self._refill(now)
        if self.tokens >= units - 1e-9:
            self.tokens -= units
            return 0.0
        return (units - self.tokens) / self.rate


class RateLimiter:
    """Interface: wait until ``units`` may be used under ``key`` at ``rate`` per second."""

    margin: float = DEFAULT_MARGIN

    async def acquire(self, key: str, rate: float | None, units: float = 1.0) -> None:
        """Reserve the next slot of ``key`` and sleep (asynchronously) until it."""
        if not rate:
            return
        wait = await self.reserve(key, rate, units)
        if wait > 0:
            await asyncio.sleep(wait)

    async def reserve(self, key: str, rate: float, units: float = 1.0) -> float:
        """Reserve the next slot; return the seconds to wait before using it."""
        raise NotImplementedError

    async def try_acquire(self, key: str, rate: float | None, units: float = 1.0) -> float:
        """Take a slot only if free now: 0.0 when taken, else seconds until one is free."""
        raise NotImplementedError

    def interval(self, rate: float, units: float) -> float:
        """Seconds ``units`` occupy at ``rate`` per second, margin included."""
        return units * (1.0 + self.margin) / rate

    async def close(self) -> None:
        """Release resources."""


class LocalRateLimiter(RateLimiter):
    """Token buckets in this process, with a burst of one: sends are spaced ``1/rate`` apart
    (plus the margin), so no 1-second window ever holds more than ``rate`` of them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, margin: float = DEFAULT_MARGIN) -> None:
        self._buckets: dict[tuple[str, float], TokenBucket] = {}
        self._clock = clock
        self.margin = margin

    def _bucket(self, key: str, rate: float) -> TokenBucket:
        bucket = self._buckets.get((key, rate))
        if bucket is None:
            bucket = TokenBucket(rate=rate / (1.0 + self.margin), burst=1.0)
            bucket.updated = self._clock()
            self._buckets[(key, rate)] = bucket
        return bucket

    async def reserve(self, key: str, rate: float, units: float = 1.0) -> float:
        """Reserve from the bucket of ``key``."""
        return self._bucket(key, rate).reserve(units, self._clock())

    async def try_acquire(self, key: str, rate: float | None, units: float = 1.0) -> float:
        """Take from the bucket of ``key`` only when it holds enough now."""
        if not rate:
            return 0.0
        return self._bucket(key, rate).try_take(units, self._clock())


class DatabaseRateLimiter(RateLimiter):
    """GCRA in ``dispatch_counters``, shared by every worker on one database.

    On PostgreSQL the database clock (``clock_timestamp()``, read after the row lock is taken)
    is the single time source; on SQLite (one writer at a time) this process's wall clock is.
    """

    def __init__(self, db: Database, margin: float = DEFAULT_MARGIN) -> None:
        self.db = db
        self.margin = margin
        self._last_purge = 0.0
        pg = not db.is_sqlite
        now = "extract(epoch from clock_timestamp())::float8" if pg else ":now"
        greatest = "GREATEST" if pg else "MAX"
        self._reserve_sql = text(
            "INSERT INTO dispatch_counters (key, slot, used) "
            f"VALUES (:key, 0, {now} + :cost) "
            "ON CONFLICT (key, slot) DO UPDATE "
            f"SET used = {greatest}(dispatch_counters.used, {now}) + :cost "
            f"RETURNING used - :cost - {now}"
        )
        # Take the slot only when its theoretical arrival time has passed: no row comes back
        # when the conditional update did nothing (then _wait_sql says for how long).
        self._try_sql = text(
            "INSERT INTO dispatch_counters (key, slot, used) "
            f"VALUES (:key, 0, {now} + :cost) "
            "ON CONFLICT (key, slot) DO UPDATE "
            f"SET used = {now} + :cost WHERE dispatch_counters.used <= {now} "
            "RETURNING used"
        )
        self._wait_sql = text(f"SELECT used - {now} FROM dispatch_counters WHERE key = :key AND slot = 0")
        self._purge_sql = text(f"DELETE FROM dispatch_counters WHERE slot = 0 AND used < {now} - :age")

    def _params(self, **values: Any) -> dict[str, Any]:
        if self.db.is_sqlite:
            values["now"] = time.time()
        return values

    async def reserve(self, key: str, rate: float, units: float = 1.0) -> float:
        """One atomic reservation; the wait is the slot's start minus the database's now."""
        cost = self.interval(rate, units)
        async with self.db.engine.begin() as conn:
            wait = (await conn.execute(self._reserve_sql, self._params(key=key, cost=cost))).scalar_one()
        await self._maybe_purge()
        return max(0.0, float(wait))

    async def try_acquire(self, key: str, rate: float | None, units: float = 1.0) -> float:
        """Take the slot of ``key`` if it is free at the database's now."""
        if not rate:
            return 0.0
        cost = self.interval(rate, units)
        async with self.db.engine.begin() as conn:
            taken = (await conn.execute(self._try_sql, self._params(key=key, cost=cost))).first()
            if taken is not None:
                return 0.0
            wait = (await conn.execute(self._wait_sql, self._params(key=key))).scalar()
        return max(float(wait or 0.0), 1e-3)

    async def _maybe_purge(self) -> None:
        mono = time.monotonic()
        if mono - self._last_purge < 60:
            return
        self._last_purge = mono
        try:
            async with self.db.engine.begin() as conn:
                await conn.execute(self._purge_sql, self._params(age=STALE_SECONDS))
        except Exception:  # pragma: no cover - housekeeping must never stop sends
            log.exception("purging old rate-limit rows failed")


_REDIS_SCRIPT = """
local interval = tonumber(ARGV[1])
local mode = ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if mode == 'try' and tat > now then
  return tostring(tat - now)
end
if tat < now then tat = now end
local start = tat
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', math.ceil((tat - now) * 1000) + 60000)
return tostring(start - now)
"""


class RedisRateLimiter(RateLimiter):
    """GCRA in Redis: one key per limit, updated by a Lua script on Redis's clock."""

    def __init__(self, url: str, namespace: str, margin: float = DEFAULT_MARGIN) -> None:
        import redis.asyncio as redis

        self.client = redis.Redis.from_url(url)
        self.namespace = namespace
        self.margin = margin
        self._script = self.client.register_script(_REDIS_SCRIPT)

    def _key(self, key: str) -> str:
        return f"gateway:rate:{self.namespace}:{key}"

    async def reserve(self, key: str, rate: float, units: float = 1.0) -> float:
        """Reserve the next slot in Redis."""
        wait = await self._script(keys=[self._key(key)], args=[repr(self.interval(rate, units)), "reserve"])
        return max(0.0, float(wait))

    async def try_acquire(self, key: str, rate: float | None, units: float = 1.0) -> float:
        """Take the slot only if free now; 'try' mode returns the wait without reserving."""
        if not rate:
            return 0.0
        wait = await self._script(keys=[self._key(key)], args=[repr(self.interval(rate, units)), "try"])
        return 0.0 if float(wait) <= 0 else max(float(wait), 1e-3)

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


def make_rate_limiter(gateway: Gateway) -> RateLimiter:
    """The limiter ``dispatch.rate_limiter`` asks for (``auto``: database on PostgreSQL)."""
    config = gateway.config.dispatch
    choice = config.rate_limiter
    if choice == "auto":
        choice = "local" if gateway.db.is_sqlite else "database"
    if choice == "local":
        return LocalRateLimiter()
    if choice == "database":
        return DatabaseRateLimiter(gateway.db)
    url = config.redis_url or "redis://127.0.0.1:6379/0"
    # Keys are namespaced by the outbox database, so two gateways never share a budget.
    namespace = hashlib.sha256(gateway.db.url.encode()).hexdigest()[:12]
    try:
        return RedisRateLimiter(url, namespace)
    except Exception as exc:  # pragma: no cover - bad URL
        raise ConfigError(f"{gateway.config.where()}: dispatch.redis_url: {exc}") from exc
