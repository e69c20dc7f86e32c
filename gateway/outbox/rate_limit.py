"""Send-rate limits: overall per channel and per recipient.

Two rules hold for every channel limit, measured where the provider sees the sends:

1. **Spacing (GCRA).** A send worth ``units`` occupies ``units / rate`` seconds, times a small
   safety ``margin``; the next send of the key may start when it ends (its *theoretical arrival
   time*, TAT). One-unit channels (Telegram) are thereby exact: no 1-second window ever holds
   more than ``rate`` sends.
2. **The window (multi-unit sends).** The provider sees all ``k`` segments of an SMS at once,
   so spacing alone lets a window hold up to ``rate + k - 1`` segments: nine one-segment SMS in
   0.9 s, then a five-segment one, put 14 segments in one second at 10/s. So each key also
   keeps the send times of its last ``R = floor(rate)`` units (at least one), and a send of
   ``k`` units is *admitted only when it fits*: it waits until the unit ``R`` places before
   its last one left the window (is more than ``1 + margin`` seconds old). Then any 1-second
   window holds at most ``R`` units. A send of more units than ``R`` (a 3-segment SMS at
   1 segment/s) cannot fit in any window: it goes alone, with the window before it empty.

Spacing keeps sends smooth; the window rule only ever delays a send, so the long-run rate is
unchanged (at most ``floor(R / k) * k`` units a second for uniform ``k``-unit sends).

* :class:`LocalRateLimiter`: both rules in this process (SQLite, single worker).
* :class:`DatabaseRateLimiter`: ``dispatch_counters`` rows shared by every worker on one
  database: ``(key, slot 0)`` holds the TAT in epoch seconds of the database clock; the window
  lives under ``key#window``: slot -1 counts the units logged, slots 1, 2, ... hold each unit's
  send time. A reservation takes the TAT row's lock first (``INSERT ... ON CONFLICT DO UPDATE``),
  so N worker processes share one budget instead of adding up to N times the limit.
* :class:`RedisRateLimiter`: the same in a Lua script on Redis's clock (the window is a list).

``acquire`` reserves the next free slot and sleeps until it; ``try_acquire`` takes the slot
only when it is free now (per-recipient limits, always one unit: a message to a busy recipient
waits without blocking the channel's other sends); ``peek`` says how long until a key is free,
taking nothing (the dispatcher waits for a busy recipient before it takes a channel slot).
:func:`make_rate_limiter` picks one from ``dispatch.rate_limiter`` (``auto`` = database on
PostgreSQL, local on SQLite).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable
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
    "make_rate_limiter",
    "window_units",
]

log = logging.getLogger("gateway.outbox.rate_limit")

#: Sends are spaced ``(1 + DEFAULT_MARGIN) / rate`` apart: 3 % of throughput buys ~30 ms of
#: tolerance (at 30/s) for scheduling and network jitter between workers and the provider.
DEFAULT_MARGIN = 0.03
#: ``dispatch_counters`` rows older than this (seconds) are deleted now and then.
STALE_SECONDS = 600.0


def window_units(rate: float) -> int:
    """How many units one 1-second window may hold at ``rate`` per second (at least one)."""
    return max(1, int(rate + 1e-9))


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

    async def peek(self, key: str, rate: float) -> float:
        """Seconds until ``key``'s next slot at ``rate`` is free (0.0 when free now), taking
        nothing: lets a sender wait for a busy recipient without holding anything meanwhile."""
        raise NotImplementedError

    def interval(self, rate: float, units: float) -> float:
        """Seconds ``units`` occupy at ``rate`` per second, margin included."""
        return units * (1.0 + self.margin) / rate

    @property
    def window(self) -> float:
        """How old a unit must be to have left the provider's 1-second window, margin included."""
        return 1.0 + self.margin

    async def close(self) -> None:
        """Release resources."""


class LocalRateLimiter(RateLimiter):
    """Both rules (spacing and window) in this process: a TAT and the last units' send times
    per key."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, margin: float = DEFAULT_MARGIN) -> None:
        self._tat: dict[tuple[str, float], float] = {}
        self._units: dict[tuple[str, float], deque[float]] = {}
        self._clock = clock
        self.margin = margin

    async def reserve(self, key: str, rate: float, units: float = 1.0) -> float:
        """Reserve the next slot of ``key`` that both spacing and the window allow."""
        now = self._clock()
        slot = (key, rate)
        start = max(now, self._tat.get(slot, now))
        limit = window_units(rate)
        log = self._units.get(slot)
        if log is None:
            log = self._units[slot] = deque(maxlen=limit)
        count = max(1, int(units))
        back = max(limit - count, 0)  # the unit `limit` places before this send's last one
        if len(log) > back:
            start = max(start, log[-1 - back] + self.window)
        log.extend([start] * min(count, limit))
        self._tat[slot] = start + self.interval(rate, units)
        return start - now

    async def try_acquire(self, key: str, rate: float | None, units: float = 1.0) -> float:
        """Take the slot of ``key`` only when it is free now."""
        if not rate:
            return 0.0
        now = self._clock()
        slot = (key, rate)
        tat = self._tat.get(slot, now)
        if tat > now + 1e-9:
            return tat - now
        self._tat[slot] = now + self.interval(rate, units)
        return 0.0

    async def peek(self, key: str, rate: float) -> float:
        """Seconds until the theoretical arrival time of ``key`` at ``rate`` passes."""
        now = self._clock()
        return max(0.0, self._tat.get((key, rate), now) - now)


class DatabaseRateLimiter(RateLimiter):
    """Spacing and window in ``dispatch_counters``, shared by every worker on one database.

    On PostgreSQL the database clock (``clock_timestamp()``, read after the row lock is taken)
    is the single time source; on SQLite (one writer at a time) this process's wall clock is.
    """

    def __init__(self, db: Database, margin: float = DEFAULT_MARGIN) -> None:
        self.db = db
        self.margin = margin
        self._last_purge = 0.0
        pg = not db.is_sqlite
        now = "extract(epoch from clock_timestamp())::float8" if pg else ":now"
        # Takes (and from here on holds) the key's row lock -- SQLite: the database's write
        # lock -- then reads the clock (on SQLite this process's, right after the statement).
        self._lock_sql = text(
            "INSERT INTO dispatch_counters (key, slot, used) VALUES (:key, 0, 0) "
            "ON CONFLICT (key, slot) DO UPDATE SET used = dispatch_counters.used "
            f"RETURNING used, {now if pg else '0.0'}"
        )
        self._read_sql = text("SELECT used FROM dispatch_counters WHERE key = :key AND slot = :slot")
        self._tat_sql = text("UPDATE dispatch_counters SET used = :used WHERE key = :key AND slot = 0")
        self._count_sql = text(
            "INSERT INTO dispatch_counters (key, slot, used) VALUES (:key, -1, :used) "
            "ON CONFLICT (key, slot) DO UPDATE SET used = :used"
        )
        self._unit_sql = text(
            "INSERT INTO dispatch_counters (key, slot, used) VALUES (:key, :slot, :used) "
            "ON CONFLICT (key, slot) DO UPDATE SET used = :used"
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
        # TATs (slot 0) long past, and window units (slots >= 1) long out of any window.
        self._purge_sql = text(
            f"DELETE FROM dispatch_counters WHERE (slot = 0 AND used < {now} - :age) "
            f"OR (slot > 0 AND used < {now} - 60)"
        )

    def _params(self, **values: Any) -> dict[str, Any]:
        if self.db.is_sqlite:
            values["now"] = time.time()
        return values

    async def reserve(self, key: str, rate: float, units: float = 1.0) -> float:
        """One transaction under the key's row lock: read the TAT and the unit the window rule
        looks at, take the later of the two (or now), write the new TAT and this send's units.
        The wait is the slot's start minus the database's now."""
        cost = self.interval(rate, units)
        limit = window_units(rate)
        count = max(1, int(units))
        log_key = f"{key}#window"
        async with self.db.engine.begin() as conn:
            tat, now = (await conn.execute(self._lock_sql, {"key": key})).one()
            if self.db.is_sqlite:
                now = time.time()
            start = max(float(now), float(tat))
            logged = (await conn.execute(self._read_sql, {"key": log_key, "slot": -1})).scalar()
            logged = int(logged or 0)
            unit = logged - max(limit - count, 0)
            if unit >= 1:
                sent = (await conn.execute(self._read_sql, {"key": log_key, "slot": unit})).scalar()
                if sent is not None:
                    start = max(start, float(sent) + self.window)
            await conn.execute(self._tat_sql, {"key": key, "used": start + cost})
            added = min(count, limit)
            await conn.execute(
                self._unit_sql,
                [{"key": log_key, "slot": logged + n, "used": start} for n in range(1, added + 1)],
            )
            await conn.execute(self._count_sql, {"key": log_key, "used": logged + added})
        await self._maybe_purge()
        return max(0.0, start - float(now))

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

    async def peek(self, key: str, rate: float) -> float:
        """Seconds until ``key``'s theoretical arrival time at the database's now (a read)."""
        async with self.db.engine.connect() as conn:
            wait = (await conn.execute(self._wait_sql, self._params(key=key))).scalar()
        return max(0.0, float(wait or 0.0))

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
if mode == 'peek' or (mode == 'try' and tat > now) then
  return tostring(tat - now)
end
local start = math.max(tat, now)
if mode == 'reserve' then
  local count = tonumber(ARGV[3])
  local limit = tonumber(ARGV[4])
  local window = tonumber(ARGV[5])
  local sent = redis.call('LINDEX', KEYS[2], math.max(limit - count, 0))
  if sent then start = math.max(start, tonumber(sent) + window) end
  local stamp = string.format('%.6f', start)
  for _ = 1, math.min(count, limit) do redis.call('LPUSH', KEYS[2], stamp) end
  redis.call('LTRIM', KEYS[2], 0, limit - 1)
  redis.call('PEXPIRE', KEYS[2], math.ceil((start - now + window) * 1000) + 60000)
end
tat = start + interval
redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', math.ceil((tat - now) * 1000) + 60000)
return tostring(start - now)
"""


class RedisRateLimiter(RateLimiter):
    """Spacing and window in Redis: a TAT key and a list of the last units' send times (newest
    first) per limit, updated by one Lua script on Redis's clock."""

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
        args = [
            repr(self.interval(rate, units)),
            "reserve",
            str(max(1, int(units))),
            str(window_units(rate)),
            repr(self.window),
        ]
        wait = await self._script(keys=[self._key(key), self._key(key) + "#window"], args=args)
        return max(0.0, float(wait))

    async def try_acquire(self, key: str, rate: float | None, units: float = 1.0) -> float:
        """Take the slot only if free now; 'try' mode returns the wait without reserving."""
        if not rate:
            return 0.0
        wait = await self._script(
            keys=[self._key(key), self._key(key) + "#window"], args=[repr(self.interval(rate, units)), "try"]
        )
        return 0.0 if float(wait) <= 0 else max(float(wait), 1e-3)

    async def peek(self, key: str, rate: float) -> float:
        """Seconds until the key's theoretical arrival time on Redis's clock; nothing taken."""
        wait = await self._script(keys=[self._key(key), self._key(key) + "#window"], args=["0", "peek"])
        return max(0.0, float(wait))

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
