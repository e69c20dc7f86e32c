"""Sign-in throttling: per account and per client address, kept in the database (another
`serve` process sees the same count), a 429 page that says when to try again, in the reader's
language; X-Forwarded-For believed only from a trusted proxy."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError
from sqlalchemy import select
from web_helpers import PASSWORD, csrf_from

from gateway.config import HttpConfig
from gateway.sign_in import client_address, locked_out
from gateway.staff import add_staff
from gateway.storage.models import AuditEntry, SignInFailure
from gateway.testing.harness import open_gateway
from gateway.web.app import create_app


async def _attempt(
    client: TestClient, email: str, password: str, headers: dict[str, str] | None = None
) -> Any:
    token = csrf_from(await (await client.get("/login", headers=headers)).text())
    return await client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token, "next": "/families"},
        headers=headers,
        allow_redirects=False,
    )


async def test_five_wrong_passwords_lock_the_account(web: Any, tmp_path: Path) -> None:
    email = "lincoln@district.example"
    for _ in range(4):
        assert (await _attempt(web.client, email, "wrong password")).status == 401
    locked = await _attempt(web.client, email, "wrong password")
    assert locked.status == 429
    page = await locked.text()
    assert 'id="locked"' in page and "try again at" in page
    assert re.search(r"try again at \d{1,2}:\d{2}\s?[AP]M C[SD]T", page), page
    assert 14 * 60 < int(locked.headers["Retry-After"]) <= 15 * 60
    # locked: even the right password is refused, and not checked
    assert (await _attempt(web.client, "Lincoln@District.example", PASSWORD)).status == 429
    # another account from the same address is not locked by this account's failures
    assert (await _attempt(web.client, "roosevelt@district.example", PASSWORD)).status == 303
    # nothing readable is stored
    async with web.gw.db.session() as session:
        keys = list(await session.scalars(select(SignInFailure.key)))
    assert keys and not any("@" in k or "127.0.0.1" in k for k in keys)

    # a second gateway process on the same database sees the lock
    async with open_gateway(tmp_path / "gw" / "config.yaml", start=False) as other:
        assert await locked_out(other, email, "203.0.113.9") is not None
        async with TestClient(TestServer(create_app(other))) as second:
            assert (await _attempt(second, email, PASSWORD)).status == 429

    # fifteen minutes after the last failure, the account signs in again (and its count is cleared)
    async with web.gw.db.session() as session:
        for row in await session.scalars(select(SignInFailure)):
            row.at -= timedelta(minutes=16)
        await session.commit()
    assert (await _attempt(web.client, email, PASSWORD)).status == 303
    assert await locked_out(web.gw, email, "127.0.0.1") is None


async def test_the_lockout_message_is_in_the_browsers_language(web: Any) -> None:
    spanish = {"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"}
    login = await (await web.client.get("/login", headers=spanish)).text()
    assert '<html lang="es"' in login and "Iniciar sesión" in login
    for _ in range(4):
        await _attempt(web.client, "admin@district.example", "wrong password", spanish)
    locked = await _attempt(web.client, "admin@district.example", "wrong password", spanish)
    assert locked.status == 429
    assert "vuelva a intentarlo a las" in await locked.text()


async def test_many_accounts_from_one_address_lock_the_address(web_db: Any) -> None:
    web = web_db  # SQLite and PostgreSQL
    web.gw.config.http.sign_in.max_failures_per_address = 6
    for n in range(6):
        assert (await _attempt(web.client, f"guess{n}@district.example", "x" * 8)).status in (401, 429)
    refused = await _attempt(web.client, "admin@district.example", PASSWORD)
    assert refused.status == 429


async def test_forwarded_for_only_from_trusted_proxies(web: Any) -> None:
    web.gw.config.http.sign_in.max_failures_per_address = 3
    web.gw.config.http.trusted_proxies = ["127.0.0.1/32"]
    for n in range(3):
        header = {"X-Forwarded-For": "198.51.100.7"}
        await _attempt(web.client, f"guess{n}@district.example", "x" * 8, header)
    # 198.51.100.7 is locked; the proxy's other clients are not
    blocked = await _attempt(
        web.client, "admin@district.example", PASSWORD, {"X-Forwarded-For": "198.51.100.7"}
    )
    assert blocked.status == 429
    other = await _attempt(
        web.client, "admin@district.example", PASSWORD, {"X-Forwarded-For": "198.51.100.8"}
    )
    assert other.status == 303


def test_client_address() -> None:
    trusted = ["10.0.0.0/8", "192.0.2.1"]
    assert client_address("203.0.113.5", ["198.51.100.1"], trusted) == "203.0.113.5"  # untrusted peer
    assert client_address("10.0.0.2", ["198.51.100.1"], trusted) == "198.51.100.1"
    # what the client wrote itself (left of the proxy's entry) is never believed
    assert client_address("10.0.0.2", ["1.2.3.4, 198.51.100.1, 10.0.0.9"], trusted) == "198.51.100.1"
    assert client_address("192.0.2.1", ["198.51.100.1", "10.1.1.1"], trusted) == "198.51.100.1"
    assert client_address("10.0.0.2", ["garbage"], trusted) == "10.0.0.2"
    assert client_address("10.0.0.2", [], trusted) == "10.0.0.2"
    assert client_address("10.0.0.2", ["198.51.100.1"], []) == "10.0.0.2"
    assert client_address(None, [], []) == "unknown"


def test_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="not an IP address or network"):
        HttpConfig(trusted_proxies=["proxy.local"])
    with pytest.raises(ValidationError):
        HttpConfig(sign_in={"max_failures_per_account": 0})
    with pytest.raises(ValidationError):
        HttpConfig(sign_in={"lockout_minutes": -1})
    with pytest.raises(ValidationError):
        HttpConfig(sign_in={"max_failures": 3})
    assert HttpConfig().sign_in.max_failures_per_account == 5


async def test_an_admin_sees_the_lock_and_a_reset_lifts_it(web: Any) -> None:
    for _ in range(5):
        await _attempt(web.client, "roosevelt@district.example", "wrong password")
    async with web.gw.db.session() as session:
        entries = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "sign_in.locked")))
    assert [(e.actor, e.target, e.detail["scope"]) for e in entries] == [
        ("sign-in", "roosevelt@district.example", "account")
    ]
    await web.login("admin@district.example")
    listed = await (await web.client.get("/api/staff", headers=web.auth("admin"))).json()
    roosevelt = next(a["id"] for a in listed if a["email"] == "roosevelt@district.example")
    page = await (await web.client.get(f"/staff/{roosevelt}")).text()
    assert 'id="locked-note"' in page
    token = csrf_from(page)
    await web.client.post(
        f"/staff/{roosevelt}",
        data={"csrf_token": token, "action": "password", "new_password": "a fresh password"},
    )
    assert 'id="locked-note"' not in await (await web.client.get(f"/staff/{roosevelt}")).text()
    await web.client.post("/logout", data={"csrf_token": token})
    assert (await _attempt(web.client, "roosevelt@district.example", "a fresh password")).status == 303


async def test_a_new_password_from_the_command_line_lifts_the_lock(web: Any) -> None:
    for _ in range(5):
        await _attempt(web.client, "admin@district.example", "wrong password")
    assert await locked_out(web.gw, "admin@district.example", "198.51.100.1") is not None
    await add_staff(web.gw, "admin@district.example", "admin", password="a brand new password")
    assert await locked_out(web.gw, "admin@district.example", "198.51.100.1") is None
    assert (await _attempt(web.client, "admin@district.example", "a brand new password")).status == 303
