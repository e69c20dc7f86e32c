"""Fixtures for the web app and the admin API: a seeded gateway, staff accounts with tokens and
passwords, and an aiohttp test client on the real application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from web_helpers import PASSWORD, WebEnv, seeded_web

from gateway.families import import_families
from gateway.resources import SHIPPED_EXAMPLES
from gateway.staff import add_staff
from gateway.testing.harness import open_gateway, write_config
from gateway.web.app import create_app

FAMILIES = SHIPPED_EXAMPLES / "families.csv"
#: Extra families: one more at Roosevelt, one at Washington (nobody's liaison scope in the tests).
EXTRA_CSV = (
    "family_id,guardian_name,language,phone,email,telegram_chat_id,preferred_channel,school,grade,"
    "student_name,timezone,tags\n"
    "R100,Hodan Ali,so,+19135550171,,,sms,Roosevelt,3,Ayaan Ali,America/Chicago,\n"
    "W200,Pham Thu,vi,,thu.pham@example.net,,email,Washington,4,Bao Pham,America/Chicago,\n"
)


async def seed(gw: Any, folder: Path) -> dict[str, str]:
    """Families at Lincoln, Roosevelt and Washington; an admin and two liaisons."""
    await import_families(gw, FAMILIES, progress=False)
    extra = folder / "extra.csv"
    extra.write_text(EXTRA_CSV, encoding="utf-8")
    await import_families(gw, extra, progress=False)
    tokens = {}
    for who, role, schools in (
        ("admin", "admin", []),
        ("roosevelt", "liaison", ["Roosevelt"]),
        ("lincoln", "liaison", ["Lincoln"]),
    ):
        made = await add_staff(gw, f"{who}@district.example", role, schools, password=PASSWORD, token=True)
        tokens[who] = made["token"]
    return tokens


@pytest.fixture(scope="session")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """One seeded SQLite database for the session; each test gets a copy (fast set-up)."""
    folder = tmp_path_factory.mktemp("seeded")
    config = write_config(folder / "gw")

    async def build() -> dict[str, str]:
        async with open_gateway(config, start=False) as gw:
            return await seed(gw, folder)

    tokens = asyncio.run(build())
    return folder / "gw" / "data" / "gateway.db", tokens


@pytest.fixture
async def web(tmp_path: Path, seeded_sqlite: tuple[Path, dict[str, str]]) -> AsyncIterator[WebEnv]:
    """The web app on a copy of the seeded SQLite database."""
    async with seeded_web(tmp_path, seeded_sqlite) as env:
        yield env


@pytest.fixture
async def web_db(tmp_path: Path, db_url: str) -> AsyncIterator[WebEnv]:
    """The web app on both SQLite and PostgreSQL, seeded."""
    config = write_config(tmp_path / "gw", db_url)
    async with open_gateway(config) as gw:
        tokens = await seed(gw, tmp_path)
        async with TestClient(TestServer(create_app(gw))) as client:
            yield WebEnv(gw, client, tokens)
