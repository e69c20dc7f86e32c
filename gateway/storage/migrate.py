"""Alembic migrations, run from code (``gateway init`` / ``gateway db upgrade``)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from sqlalchemy import text

from gateway.storage.db import async_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Any:
    """An Alembic config pointing at the shipped migrations and ``url``."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (blocking; call from a thread inside a loop)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    from alembic import command

    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Apply migrations without blocking the running event loop."""
    await asyncio.to_thread(upgrade, url, revision)


_REVISION_LINE = re.compile(r"^(down_revision|revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)
_REVISION_VALUE = re.compile(r"""^(?:None|(['"])([\w.-]+)\1)$""")


def _revision_value(found: dict[str, str], name: str) -> str | None:
    """``revision = '0006'`` → ``0006``; ``None`` → ``""``; anything else (a tuple, a
    computed value, no such line) → None."""
    match = _REVISION_VALUE.match(found.get(name, "?"))
    return None if match is None else (match.group(2) or "")


def shipped_head() -> str | None:
    """The single head revision of the shipped migrations, read from their
    ``revision``/``down_revision`` lines without loading Alembic; None when that cannot be told
    for sure (a merge, a branch, a line it does not read), and Alembic must decide."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        revision, parent = _revision_value(found, "revision"), _revision_value(found, "down_revision")
        if not revision or parent is None:
            return None
        revisions.add(revision)
        parents.add(parent)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


async def schema_is_current(engine: Any) -> bool:
    """Whether the database (an async engine) is at the shipped head already: the cheap check
    that lets a worker start without loading Alembic."""
    head = shipped_head()
    if head is None:
        return False
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    except Exception:  # no table yet, or unreadable: Alembic decides
        return False
    return list(rows) == [head]


def current(url: str) -> str | None:
    """The database's current revision."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    from gateway.storage.db import sync_url

    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
