"""`gateway staff add|list|disable` through the CLI, and what the accounts can then do."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from gateway.staff import authenticate_password, authenticate_token, hash_token
from gateway.storage.models import AuditEntry, StaffMember
from gateway.testing.harness import open_gateway


def test_staff_add_list_disable(cli: Any, sqlite_config: Path) -> None:
    result = cli(
        [
            "staff",
            "add",
            "Liaison@District.example",
            "--role",
            "liaison",
            "--school",
            "Lincoln",
            "--school",
            "Roosevelt",
            "--password",
            "long enough pw",
            "--token",
            "--json",
        ],
        sqlite_config,
    )
    assert result.exit_code == 0, result.output
    made = json.loads(result.output)
    assert set(made) == {"email", "role", "schools", "token"}
    assert made["email"] == "liaison@district.example"
    assert made["role"] == "liaison" and made["schools"] == ["Lincoln", "Roosevelt"]
    token = made["token"]
    # without --token there is no token in the answer
    admin = cli(
        [
            "staff",
            "add",
            "boss@district.example",
            "--role",
            "admin",
            "--password",
            "another long pw",
            "--json",
        ],
        sqlite_config,
    )
    assert admin.exit_code == 0, admin.output
    assert "token" not in json.loads(admin.output)
    listed = json.loads(cli(["staff", "list", "--json"], sqlite_config).output)
    assert [(s["email"], s["role"], s["disabled"]) for s in listed] == [
        ("boss@district.example", "admin", False),
        ("liaison@district.example", "liaison", False),
    ]
    assert "hash" not in json.dumps(listed)
    table = cli(["staff", "list"], sqlite_config)
    assert table.exit_code == 0 and "Lincoln" in table.output and "disabled" not in table.output

    async def check(disabled: bool) -> None:
        async with open_gateway(sqlite_config, start=False) as gw:
            async with gw.db.session() as session:
                row = await session.scalar(select(StaffMember).where(StaffMember.email == made["email"]))
                # stored hashed: the token and the password never appear as such
                assert row.token_hash == hash_token(token) and token not in row.token_hash
                assert row.password_hash.startswith("$argon2id$")
                actions = list(await session.scalars(select(AuditEntry.action)))
            identity = await authenticate_token(gw, token)
            login = await authenticate_password(gw, made["email"], "long enough pw")
            if disabled:
                assert identity is None and login is None
                assert "staff.disable" in actions
            else:
                assert identity is not None and identity.scope == ["Lincoln", "Roosevelt"]
                assert login is not None and login.email == made["email"]
                assert await authenticate_password(gw, made["email"], "wrong password") is None
                assert await authenticate_token(gw, token + "x") is None

    asyncio.run(check(disabled=False))
    disabled = cli(["staff", "disable", "liaison@district.example"], sqlite_config)
    assert disabled.exit_code == 0, disabled.output
    asyncio.run(check(disabled=True))
    listed = json.loads(cli(["staff", "list", "--json"], sqlite_config).output)
    assert [s["disabled"] for s in listed] == [False, True]


def test_staff_add_rejects_bad_input(cli: Any, sqlite_config: Path) -> None:
    no_school = cli(["staff", "add", "x@district.example", "--role", "liaison"], sqlite_config)
    assert no_school.exit_code == 2 and "needs at least one school" in no_school.output
    bad_role = cli(["staff", "add", "x@district.example", "--role", "owner"], sqlite_config)
    assert bad_role.exit_code == 2 and "admin or liaison" in bad_role.output
    short = cli(
        ["staff", "add", "x@district.example", "--role", "admin", "--password", "short"],
        sqlite_config,
    )
    assert short.exit_code == 2 and "8 characters" in short.output
    unknown = cli(["staff", "disable", "nobody@district.example"], sqlite_config)
    assert unknown.exit_code == 2 and "no staff account" in unknown.output
