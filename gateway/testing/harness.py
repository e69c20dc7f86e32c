"""Test harness shared by the core's tests, plugin tests and benchmarks: throwaway databases
(SQLite files or PostgreSQL databases cloned from a migrated template), configs written to a
folder, and a gateway opened on them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml

from gateway.testing.services import database_url, postgres_url

__all__ = [
    "clone_pg_database",
    "create_pg_template",
    "drop_pg_database",
    "open_gateway",
    "pg_url",
    "upcoming_example",
    "write_config",
]



async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(postgres_url(), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pg_url(name: str) -> str:
    """URL of a database on the test server (:func:`gateway.testing.services.postgres_url`)."""
    return database_url(postgres_url(), name)


async def create_pg_template(prefix: str = "gwtmpl") -> str:
    """Create and migrate a template database; returns its name."""
    from gateway.storage.migrate import upgrade_async

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE DATABASE "{name}"')
    await upgrade_async(pg_url(name))
    return name


async def clone_pg_database(template: str, prefix: str = "gwtest") -> str:
    """A fresh database copied from a migrated template (fast); returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return pg_url(name)


async def drop_pg_database(url: str) -> None:
    """Drop a database created by these helpers (terminating its connections)."""
    name = url.rsplit("/", 1)[-1]
    await _admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )
    await _admin(f'DROP DATABASE IF EXISTS "{name}"')


def write_config(folder: Path, db_url: str | None = None, **sections: Any) -> Path:
    """A config.yaml in ``folder``: sandbox sms/email/telegram (not echoing), quiet hours off,
    and ``sections`` merged in (``channels=...`` replaces the channels)."""
    folder.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "district": {"name": "Test District", "phone": "+19135550100", "email": "help@district.example"},
        "paths": {"data_dir": str(folder / "data")},
        "database": {"url": db_url or f"sqlite+aiosqlite:///{folder / 'data' / 'gateway.db'}"},
        "http": {"public_base_url": "https://gateway.test"},
        "channels": {
            "sms": {"plugin": "sandbox", "endpoint": "phone", "echo": False},
            "email": {"plugin": "sandbox", "endpoint": "email", "echo": False},
            "telegram": {"plugin": "sandbox", "endpoint": "telegram", "echo": False},
        },
        "translation": {"engines": []},
        "quiet_hours": {"enabled": False},
        "scheduler": {"enabled": False},
        "dispatch": {"backoff_base_seconds": 0.01, "poll_seconds": 0.05},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict) and key != "channels":
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def upcoming_example(
    folder: Path, *, days_ahead: int = 30, reminders: list[str] | None = None, name: str = "reading-workshop"
) -> Path:
    """The shipped example event ``name`` copied to ``folder`` and moved ``days_ahead`` days
    after today, so a test never depends on the date it runs (the shipped file's own date
    passes one day). ``reminders`` replaces the event's reminder offsets when given."""
    from gateway.domain.events import upcoming_event_file
    from gateway.resources import SHIPPED_EXAMPLES

    folder.mkdir(parents=True, exist_ok=True)
    target = upcoming_event_file(SHIPPED_EXAMPLES / f"{name}.yaml", folder / f"{name}.yaml", days_ahead)
    if reminders is not None:
        data = yaml.safe_load(target.read_text(encoding="utf-8"))
        data["reminders"] = reminders
        target.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target


@asynccontextmanager
async def open_gateway(config_path: Path, *, start: bool = True, extra_plugins: tuple[Any, ...] = ()
                       ) -> AsyncIterator[Any]:
    """A migrated Gateway on ``config_path`` (channels started), closed on exit."""
    from gateway.app import Gateway
    from gateway.config import load_config
    from gateway.plugins import make_plugin_manager

    pm = make_plugin_manager(extra_plugins)
    gw = Gateway(load_config(config_path), pm)
    try:
        await gw.migrate()
        if start:
            await gw.start_channels()
        yield gw
    finally:
        await gw.close()
