"""Staff accounts in the web app and the API: an admin adds, edits, disables and enables
accounts and resets passwords; other roles get 403; everyone changes their own password and
interface language; every change is audited and no password is ever logged or returned twice."""

from __future__ import annotations

import logging
import re
from typing import Any

import aiohttp
from sqlalchemy import select
from web_helpers import PASSWORD, csrf_from

from gateway.storage.models import AuditEntry, StaffMember


async def _audit(web: Any) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    async with web.gw.db.session() as session:
        rows = await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(r.actor, r.action, r.target, r.detail) for r in rows]


async def _staff_id(web: Any, email: str) -> int:
    async with web.gw.db.session() as session:
        return int(await session.scalar(select(StaffMember.id).where(StaffMember.email == email)))


async def test_staff_pages_are_for_admins_only(web: Any) -> None:
    await web.login("lincoln@district.example")
    token = await web.csrf()
    for path in ("/staff", "/staff/new", f"/staff/{await _staff_id(web, 'admin@district.example')}"):
        response = await web.client.get(path)
        assert response.status == 403, path
        assert "Only an admin can manage staff accounts" in await response.text()
    refused = await web.client.post(
        "/staff/new", data={"csrf_token": token, "email": "x@district.example", "role": "admin"}
    )
    assert refused.status == 403
    families = await (await web.client.get("/families")).text()
    assert 'href="/staff"' not in families  # no Staff link in a liaison's navigation
    assert (await web.client.get("/api/staff")).status == 403
    assert (await web.client.get("/api/staff", headers=web.auth("lincoln"))).status == 403
    created = await web.client.post(
        "/api/staff", json={"email": "x@district.example", "role": "admin"}, headers=web.auth("roosevelt")
    )
    assert created.status == 403


async def test_admin_adds_a_liaison_who_signs_in(web: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    await web.login("admin@district.example")
    listing = await web.client.get("/staff")
    assert listing.status == 200
    html = await listing.text()
    assert "lincoln@district.example" in html and 'href="/staff"' in html
    form = await web.client.get("/staff/new")
    token = csrf_from(await form.text())
    # mistakes are shown next to their field, nothing is created
    for data, field in (
        ({"email": "not-an-address", "role": "liaison", "schools": "Lincoln"}, "email"),
        ({"email": "new@district.example", "role": "liaison"}, "schools"),
        ({"email": "new@district.example", "role": "liaison", "schools": "Lincon"}, "schools"),
        (
            {"email": "new@district.example", "role": "liaison", "schools": "Lincoln", "password": "short"},
            "password",
        ),
        ({"email": "lincoln@district.example", "role": "liaison", "schools": "Lincoln"}, "email"),
        (
            {"email": "new@district.example", "role": "liaison", "schools": "Lincoln", "language": "xx"},
            "language",
        ),
    ):
        answer = await web.client.post("/staff/new", data={"csrf_token": token, "language": "en", **data})
        assert answer.status == 400, data
        assert f'id="{field}-error"' in await answer.text(), data
    assert await _audit(web) and not any(a[2] == "new@district.example" for a in await _audit(web))

    typed = "a typed password 1"
    made = await web.client.post(
        "/staff/new",
        data={
            "csrf_token": token,
            "email": "New.Liaison@District.example",
            "role": "liaison",
            "schools": "lincoln",  # spelled as the families' school is
            "language": "es",
            "password": typed,
        },
    )
    assert made.status == 200
    page = await made.text()
    assert 'id="created"' in page and typed not in page and 'id="one-time-password"' not in page
    staff_id = await _staff_id(web, "new.liaison@district.example")
    async with web.gw.db.session() as session:
        row = await session.get(StaffMember, staff_id)
        assert (row.role, row.schools, row.language) == ("liaison", ["Lincoln"], "es")
        assert row.password_hash.startswith("$argon2id$")

    # a generated password is shown once
    generated = await web.client.post(
        "/staff/new",
        data={"csrf_token": token, "email": "gen@district.example", "role": "admin", "language": "en"},
    )
    match = re.search(r'<code class="password" translate="no">([^<]+)</code>', await generated.text())
    assert match, "no one-time password"
    one_time = match.group(1)
    again = await (await web.client.get(f"/staff/{await _staff_id(web, 'gen@district.example')}")).text()
    assert one_time not in again

    # the new liaison signs in with the typed password, reads Spanish, sees Lincoln only
    await web.client.post("/logout", data={"csrf_token": await web.csrf()})
    await web.login("new.liaison@district.example", typed)
    families = await (await web.client.get("/families")).text()
    assert '<html lang="es"' in families and "F011" not in families and "F001" in families
    await web.client.post("/logout", data={"csrf_token": await web.csrf()})
    await web.login("gen@district.example", one_time)

    entries = await _audit(web)
    assert ("admin@district.example", "staff.add", "new.liaison@district.example") in [e[:3] for e in entries]
    logged = caplog.text + repr(entries)
    assert typed not in logged and one_time not in logged


async def test_admin_edits_disables_enables_and_resets(web: Any) -> None:
    await web.login("admin@district.example")
    lincoln = await _staff_id(web, "lincoln@district.example")
    page = await web.client.get(f"/staff/{lincoln}")
    assert page.status == 200
    token = csrf_from(await page.text())
    saved = await web.client.post(
        f"/staff/{lincoln}",
        data={
            "csrf_token": token,
            "action": "save",
            "role": "liaison",
            "schools": ["Lincoln", "Roosevelt"],
            "language": "es",
        },
        allow_redirects=False,
    )
    assert saved.status == 303 and saved.headers["Location"] == f"/staff/{lincoln}?saved=save"
    async with web.gw.db.session() as session:
        row = await session.get(StaffMember, lincoln)
        assert row.schools == ["Lincoln", "Roosevelt"] and row.language == "es"

    # disabling ends the liaison's API access at once; enabling brings it back
    disabled = await web.client.post(
        f"/staff/{lincoln}", data={"csrf_token": token, "action": "disable"}, allow_redirects=False
    )
    assert disabled.status == 303
    assert (await web.client.get("/api/me", headers=web.auth("lincoln"))).status == 401
    assert "disabled-note" in await (await web.client.get(f"/staff/{lincoln}")).text()
    await web.client.post(f"/staff/{lincoln}", data={"csrf_token": token, "action": "enable"})
    assert (await web.client.get("/api/me", headers=web.auth("lincoln"))).status == 200

    # reset: generated (shown once) or typed
    reset = await web.client.post(f"/staff/{lincoln}", data={"csrf_token": token, "action": "password"})
    match = re.search(r'<code class="password" translate="no">([^<]+)</code>', await reset.text())
    assert reset.status == 200 and match
    typed = await web.client.post(
        f"/staff/{lincoln}", data={"csrf_token": token, "action": "password", "new_password": "short"}
    )
    assert typed.status == 400 and 'id="password-error"' in await typed.text()

    # an admin cannot disable themselves, nor make the only admin a liaison
    me = await _staff_id(web, "admin@district.example")
    own = await web.client.post(f"/staff/{me}", data={"csrf_token": token, "action": "disable"})
    assert own.status == 400 and "You cannot disable your own account" in await own.text()
    demote = await web.client.post(
        f"/staff/{me}",
        data={
            "csrf_token": token,
            "action": "save",
            "role": "liaison",
            "schools": "Lincoln",
            "language": "en",
        },
    )
    assert demote.status == 400 and "only admin" in await demote.text()
    assert (await web.client.get("/staff/999999")).status == 404

    await web.client.post("/logout", data={"csrf_token": token})
    await web.login("lincoln@district.example", match.group(1))
    actions = [e[1] for e in await _audit(web)]
    for action in ("staff.update", "staff.disable", "staff.enable", "staff.password_reset"):
        assert action in actions


async def test_own_account_password_and_language(web: Any) -> None:
    await web.login("roosevelt@district.example")
    page = await web.client.get("/account")
    assert page.status == 200
    token = csrf_from(await page.text())
    wrong = await web.client.post(
        "/account",
        data={
            "csrf_token": token,
            "action": "password",
            "current_password": "nope",
            "new_password": "new password 1",
            "repeat_password": "new password 1",
        },
    )
    assert wrong.status == 400 and 'id="current_password-error"' in await wrong.text()
    mismatch = await web.client.post(
        "/account",
        data={
            "csrf_token": token,
            "action": "password",
            "current_password": PASSWORD,
            "new_password": "new password 1",
            "repeat_password": "new password 2",
        },
    )
    assert mismatch.status == 400 and 'id="repeat_password-error"' in await mismatch.text()
    old_cookie = web.client.session.cookie_jar.filter_cookies(web.client.make_url("/"))["gw_session"].value
    changed = await web.client.post(
        "/account",
        data={
            "csrf_token": token,
            "action": "password",
            "current_password": PASSWORD,
            "new_password": "new password 1",
            "repeat_password": "new password 1",
        },
        allow_redirects=False,
    )
    assert changed.status == 303
    # this session goes on; another one begun under the old password has ended
    kept = await web.client.get("/account", allow_redirects=False)
    assert kept.status == 200
    token = csrf_from(await kept.text())  # a new session: a new CSRF token
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as other:
        stale = await other.get(
            web.client.make_url("/account"),
            headers={"Cookie": f"gw_session={old_cookie}"},
            allow_redirects=False,
        )
        assert stale.status == 303 and stale.headers["Location"].startswith("/login")
    language = await web.client.post(
        "/account", data={"csrf_token": token, "action": "language", "language": "es"}, allow_redirects=False
    )
    assert language.status == 303
    assert '<html lang="es"' in await (await web.client.get("/account")).text()
    await web.client.post("/logout", data={"csrf_token": token})
    await web.login("roosevelt@district.example", "new password 1")


async def test_staff_api(web: Any) -> None:
    admin = web.auth("admin")
    listed = await (await web.client.get("/api/staff", headers=admin)).json()
    assert {s["email"] for s in listed} >= {"admin@district.example", "lincoln@district.example"}
    assert "hash" not in repr(listed)
    bad = await web.client.post(
        "/api/staff", json={"email": "api@district.example", "role": "liaison"}, headers=admin
    )
    assert bad.status == 400 and (await bad.json())["field"] == "schools"
    unknown = await web.client.post(
        "/api/staff",
        json={"email": "api@district.example", "role": "liaison", "schools": ["Nowhere"]},
        headers=admin,
    )
    assert unknown.status == 400 and "Nowhere" in (await unknown.json())["error"]
    created = await web.client.post(
        "/api/staff",
        json={"email": "api@district.example", "role": "liaison", "schools": ["Roosevelt"]},
        headers=admin,
    )
    assert created.status == 201
    account = await created.json()
    assert account["schools"] == ["Roosevelt"] and len(account["generated_password"]) >= 16
    duplicate = await web.client.post(
        "/api/staff", json={"email": "API@district.example", "role": "admin"}, headers=admin
    )
    assert duplicate.status == 400 and (await duplicate.json())["field"] == "email"
    patched = await web.client.patch(
        f"/api/staff/{account['id']}",
        json={"schools": ["Lincoln"], "language": "es", "disabled": True},
        headers=admin,
    )
    assert patched.status == 200
    body = await patched.json()
    assert body["schools"] == ["Lincoln"] and body["language"] == "es" and body["disabled"] is True
    assert "generated_password" not in body
    reset = await (
        await web.client.patch(f"/api/staff/{account['id']}", json={"reset_password": True}, headers=admin)
    ).json()
    assert reset["generated_password"] != account["generated_password"]
    assert (await web.client.patch("/api/staff/999999", json={}, headers=admin)).status == 404
    assert (
        await web.client.patch(f"/api/staff/{account['id']}", json={"colour": 1}, headers=admin)
    ).status == 400
    # from a page session, a change needs the CSRF header like every other API call
    await web.login("admin@district.example")
    no_csrf = await web.client.patch(f"/api/staff/{account['id']}", json={"disabled": False})
    assert no_csrf.status == 403
    ok = await web.client.patch(
        f"/api/staff/{account['id']}", json={"disabled": False}, headers={"X-CSRF-Token": await web.csrf()}
    )
    assert ok.status == 200 and (await ok.json())["disabled"] is False
