"""Fixtures shared by every test: databases on SQLite and PostgreSQL, configs, gateways, CLI."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway import event_loop
from gateway.resources import SHIPPED_EXAMPLES
from gateway.testing.harness import (
    clone_pg_database,
    create_pg_template,
    drop_pg_database,
    open_gateway,
    pg_url,
    write_config,
)

if "argostranslate" not in sys.modules:
    os.environ.setdefault("ARGOS_INTRA_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = SHIPPED_EXAMPLES


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """Async tests run on the loop every command runs on (:mod:`gateway.event_loop`: uvloop;
    ``GATEWAY_EVENT_LOOP=asyncio`` for the standard library's)."""
    return {"gateway": event_loop.loop_factory() or asyncio.new_event_loop}


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL template database for this test run."""
    name = asyncio.run(create_pg_template())
    yield name
    asyncio.run(drop_pg_database(pg_url(name)))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database: an SQLite file, then a PostgreSQL database (both run)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'db' / 'gateway.db'}"
        return
    template = request.getfixturevalue("pg_template")
    url = asyncio.run(clone_pg_database(template))
    yield url
    asyncio.run(drop_pg_database(url))


@pytest.fixture
def config_path(tmp_path: Path, db_url: str) -> Path:
    """A test config on the parametrised database."""
    return write_config(tmp_path / "gw", db_url)


@pytest.fixture
def sqlite_config(tmp_path: Path) -> Path:
    """A test config on SQLite only (for tests that are not about storage)."""
    return write_config(tmp_path / "gw")


@pytest.fixture
async def gateway(config_path: Path) -> AsyncIterator[Any]:
    """A migrated gateway with sandbox channels, on both databases."""
    async with open_gateway(config_path) as gw:
        yield gw


@pytest.fixture
def cli() -> Any:
    """Run ``gateway`` commands in-process: ``cli(["families", "list", "--json"], config)``."""
    from gateway.cli import app

    runner = CliRunner()

    def invoke(args: list[str], config: Path | None = None, **kwargs: Any) -> Any:
        full = [*args, "--config", str(config)] if config else list(args)
        result = runner.invoke(app, full, catch_exceptions=False, **kwargs)
        return result

    return invoke


@pytest.fixture
def families_csv() -> Path:
    """The example families file."""
    return EXAMPLES / "families.csv"
