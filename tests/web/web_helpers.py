"""Helpers the web tests share (importable, unlike conftest)."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from gateway.families import import_families
from gateway.testing.harness import open_gateway, write_config
from gateway.web.app import create_app

PASSWORD = "correct horse battery"
#: The header of a families CSV (PRODUCT.md's columns).
FAMILIES_HEADER = (
    "family_id,guardian_name,language,phone,email,telegram_chat_id,preferred_channel,school,grade,"
    "student_name,timezone,tags\n"
)


def csrf_from(html: str) -> str:
    """The CSRF token in a page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def import_rows(gw: Any, folder: Path, rows: str, name: str = "families.csv") -> dict[str, Any]:
    """Import families CSV ``rows`` (without the header) through the real import; its report."""
    path = folder / name
    path.write_text(FAMILIES_HEADER + rows, encoding="utf-8")
    return await import_families(gw, path, progress=False)


@dataclass
class WebEnv:
    """A seeded gateway and a client on its HTTP application."""

    gw: Any
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, who: str) -> dict[str, str]:
        """Bearer header of ``admin``, ``roosevelt`` or ``lincoln``."""
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def login(self, email: str, password: str = PASSWORD) -> TestClient:
        """Sign the client in through the login form (with its CSRF token)."""
        page = await self.client.get("/login")
        token = csrf_from(await page.text())
        response = await self.client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": token, "next": "/families"},
            allow_redirects=False,
        )
        assert response.status == 303, await response.text()
        return self.client

    async def csrf(self, path: str = "/families") -> str:
        """The CSRF token of the signed-in session."""
        return csrf_from(await (await self.client.get(path)).text())


@asynccontextmanager
async def seeded_web(
    folder: Path, seeded: tuple[Path, dict[str, str]], **sections: Any
) -> AsyncIterator[WebEnv]:
    """The web app on a copy of the seeded SQLite database ``seeded`` (``(database, tokens)``),
    with config ``sections`` (as :func:`write_config` takes them) on top of the harness's."""
    source, tokens = seeded
    (folder / "gw" / "data").mkdir(parents=True)
    for path in source.parent.glob("gateway.db*"):
        shutil.copy(path, folder / "gw" / "data" / path.name)
    config = write_config(folder / "gw", **sections)
    async with open_gateway(config) as gw:
        async with TestClient(TestServer(create_app(gw))) as client:
            yield WebEnv(gw, client, dict(tokens))
