"""Database engines and sessions: async SQLAlchemy over aiosqlite (WAL) or asyncpg."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

__all__ = ["Database", "async_url", "database_unavailable", "sync_url"]

log = logging.getLogger("gateway.storage")


def async_url(url: str) -> str:
    """The async-driver form of a database URL (``sqlite`` → aiosqlite, ``postgresql`` → asyncpg)."""
    parsed = make_url(url)
    driver = parsed.drivername
    if driver in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif driver in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    """The blocking-driver form (Alembic offline use, APScheduler's job store)."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        parsed = parsed.set(drivername="sqlite")
    elif parsed.drivername.startswith("postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached or used right now (locked,
    connection refused or lost, pool exhausted), as opposed to a problem with the data: the
    same work may succeed when tried again later."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.DisconnectionError):
        return True
    if isinstance(exc, OSError | ConnectionError | TimeoutError):
        return True
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - a dependency
        return False
    return isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.InterfaceError) or (
        isinstance(exc, asyncpg.PostgresError)
        and getattr(exc, "sqlstate", "") in ("57P01", "57P02", "57P03", "53300", "08006", "08003")
    )


#: Rows written at once from which :meth:`Database.refresh_statistics` is worth its ~0.1 s.
BULK_WRITE_ROWS = 1000
#: What a families import writes, and what a broadcast writes.
FAMILY_TABLES = ("families", "guardians", "students", "endpoints")
BROADCAST_TABLES = ("outbox_messages", "survey_sessions")


class Database:
    """One async engine and its session factory."""

    def __init__(
        self, url: str, *, echo: bool = False, pool_size: int = 5, busy_timeout: float = 30.0
    ) -> None:
        self.url = async_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        # Parameters are personal data (numbers, addresses, message text): never in a log
        # line or an exception message, whatever ``database.echo`` says.
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.dialect == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": busy_timeout}
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            kwargs["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            milliseconds = int(busy_timeout * 1000)

            def pragmas(dbapi_connection: Any, _record: Any) -> None:
                sqlite_pragmas(dbapi_connection, milliseconds)

            event.listen(self.engine.sync_engine, "connect", pragmas)
        self.session = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        """Whether this is the embedded default."""
        return self.dialect == "sqlite"

    async def refresh_statistics(self, tables: Sequence[str], rows_written: int) -> None:
        """After a bulk write (a families import, a broadcast's outbox rows) of at least
        :data:`BULK_WRITE_ROWS` rows: on PostgreSQL, ``ANALYZE`` the tables it changed, so the
        query planner sees them as they now are.
        Autovacuum may be off, or not have come round yet; with statistics from when a table
        was nearly empty PostgreSQL chose bitmap scans that read every queued row for each
        claim (0.1–0.4 s a claim at 1,000,000 rows). SQLite: nothing to do (its planner works
        from the indexes). ``tables`` are the core's own table names, never user input. Best
        effort: the write before it is committed, so a failure here is logged, not raised."""
        if self.is_sqlite or rows_written < BULK_WRITE_ROWS:
            return
        try:
            async with self.engine.connect() as conn:
                for table in tables:
                    await conn.exec_driver_sql(f"ANALYZE {table}")
                await conn.commit()
        except Exception as exc:  # the write it follows is committed: never report it failed
            log.warning("could not refresh statistics of %s: %s", ", ".join(tables), type(exc).__name__)

    async def close(self) -> None:
        """Dispose of the connection pool."""
        await self.engine.dispose()


def sqlite_pragmas(dbapi_connection: Any, busy_timeout_ms: int, *, foreign_keys: bool = True) -> None:
    """Per-connection settings. The busy timeout comes first so that everything after it
    waits for another connection's lock instead of failing; the journal mode is switched only
    when it is not WAL yet (switching takes an exclusive lock that a busy database refuses
    without waiting, so it is retried until the busy timeout). Migrations leave foreign keys
    off: Alembic's batch mode rebuilds tables that others refer to."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode")
        mode = str(cursor.fetchone()[0]).lower()
        if mode not in ("wal", "memory"):
            _switch_to_wal(cursor, busy_timeout_ms / 1000)
        cursor.execute("PRAGMA synchronous=NORMAL")
        if foreign_keys:
            cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.fetchall()
            return
        except Exception as exc:  # the DB-API's OperationalError, wrapped by the adapter
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
