"""The liaison web app over HTTP: sign-in, sessions and CSRF, school scope on every page and
export (404 outside it), compose with preview and idempotent send, language edit and audit."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from web_helpers import PASSWORD, csrf_from, import_rows

from gateway.sandbox_tools import inject_reply
from gateway.storage.models import AuditEntry, Broadcast, Guardian

PAGES = ("/compose", "/broadcasts", "/surveys", "/reach", "/inbox", "/families", "/families/F011")


async def test_pages_need_sign_in(web: Any) -> None:
    for path in PAGES:
        response = await web.client.get(path, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"].startswith("/login?next=")
    response = await web.client.post(
        "/families/F011/language", data={"language": "es"}, allow_redirects=False
    )
    assert response.status == 403


async def test_login_cookie_flags_csrf_and_logout(web: Any) -> None:
    page = await web.client.get("/login")
    assert page.status == 200
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    token = csrf_from(await page.text())
    form = {"email": "admin@district.example", "password": PASSWORD, "next": "/inbox"}
    # no CSRF token: refused
    missing = await web.client.post("/login", data=form, allow_redirects=False)
    assert missing.status == 403
    wrong = await web.client.post(
        "/login", data={**form, "password": "nope", "csrf_token": token}, allow_redirects=False
    )
    assert wrong.status == 401
    assert "Wrong e-mail or password" in await wrong.text()
    ok = await web.client.post("/login", data={**form, "csrf_token": token}, allow_redirects=False)
    assert ok.status == 303 and ok.headers["Location"] == "/inbox"
    assert "HttpOnly" in ok.headers["Set-Cookie"]
    inbox = await web.client.get("/inbox")
    assert inbox.status == 200
    assert "default-src 'self'" in inbox.headers["Content-Security-Policy"]
    # the token of the old (anonymous) session is not valid for the signed-in one
    new_token = csrf_from(await inbox.text())
    assert new_token != token
    # an open redirect through `next` is not possible
    await web.client.post("/logout", data={"csrf_token": new_token}, allow_redirects=False)
    page = await web.client.get("/login")
    token = csrf_from(await page.text())
    evil = await web.client.post(
        "/login",
        data={**form, "next": "//evil.example/", "csrf_token": token},
        allow_redirects=False,
    )
    assert evil.headers["Location"] == "/compose"
    logout = await web.client.post(
        "/logout",
        data={"csrf_token": csrf_from(await (await web.client.get("/compose")).text())},
        allow_redirects=False,
    )
    assert logout.status == 303
    assert (await web.client.get("/compose", allow_redirects=False)).status == 303
    async with web.gw.db.session() as session:
        actions = list(await session.scalars(select(AuditEntry.action)))
    assert actions.count("login") == 2 and "logout" in actions


async def test_tampered_session_cookie_is_ignored(web: Any) -> None:
    await web.login("lincoln@district.example")
    cookie = web.client.session.cookie_jar.filter_cookies(web.client.make_url("/"))["gw_session"].value
    body, mac = cookie.split(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
    jar = web.client.session.cookie_jar
    jar.clear()
    jar.update_cookies({"gw_session": forged}, response_url=web.client.make_url("/"))
    assert (await web.client.get("/families", allow_redirects=False)).status == 303


async def test_disabled_account_session_ends(web: Any) -> None:
    from gateway.staff import disable_staff

    await web.login("lincoln@district.example")
    assert (await web.client.get("/families", allow_redirects=False)).status == 200
    await disable_staff(web.gw, "lincoln@district.example")
    assert (await web.client.get("/families", allow_redirects=False)).status == 303


async def test_liaison_cannot_reach_another_school_by_page_search_or_export(web_db: Any) -> None:
    web = web_db
    await inject_reply(web.gw, "+19135550102", "Waa maxay?", "sms")  # F002, Lincoln
    await inject_reply(web.gw, "+19135550111", "¿Hay bus?", "sms")  # F011, Roosevelt
    await web.login("roosevelt@district.example")
    listing = await (await web.client.get("/families")).text()
    assert set(re.findall(r'data-family="([^"]+)"', listing)) == {"F011", "R100"}
    other = await web.client.get("/families/F002")
    missing = await web.client.get("/families/NOPE")
    assert other.status == missing.status == 404
    assert await other.text() == await missing.text()
    search = await (await web.client.get("/families?q=Warsame")).text()
    assert re.findall(r'data-family="([^"]+)"', search) == []
    assert "/families/F002" not in search
    assert "F002" not in await (await web.client.get("/families?school=Lincoln")).text()
    export = await web.client.get("/families/export.csv")
    assert export.status == 200
    text = await export.text()
    assert "F011" in text and "F002" not in text and "+19135550102" not in text
    inbox = await (await web.client.get("/inbox")).text()
    assert "F011" in inbox and "F002" not in inbox
    token = await web.csrf()
    # changing another school's family is the same 404
    response = await web.client.post(
        "/families/F002/language", data={"csrf_token": token, "guardian_id": "1", "language": "en"}
    )
    assert response.status == 404


async def test_language_edit_writes_audit(web: Any) -> None:
    await web.login("roosevelt@district.example")
    page = await (await web.client.get("/families/F011")).text()
    guardian_id = re.search(r'name="guardian_id" value="(\d+)"', page).group(1)
    token = csrf_from(page)
    missing_csrf = await web.client.post(
        "/families/F011/language", data={"guardian_id": guardian_id, "language": "es"}
    )
    assert missing_csrf.status == 403
    bad = await web.client.post(
        "/families/F011/language",
        data={"csrf_token": token, "guardian_id": guardian_id, "language": "klingonish"},
    )
    assert bad.status == 400
    assert "unknown language code" in await bad.text()
    ok = await web.client.post(
        "/families/F011/language",
        data={"csrf_token": token, "guardian_id": guardian_id, "language": "es"},
        allow_redirects=False,
    )
    assert ok.status == 303
    async with web.gw.db.session() as session:
        guardian = await session.get(Guardian, int(guardian_id))
        assert guardian.language == "es"
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "guardian.language"))
        assert entry.actor == "roosevelt@district.example" and entry.target == "F011"
        assert entry.detail == {"guardian_id": int(guardian_id), "from": "es-MX", "to": "es"}


#: The day the test events take place: always ahead, whatever day the suite runs.
UPCOMING_DAY = (date.today() + timedelta(days=90)).isoformat()


def compose_form(token: str, **extra: str) -> dict[str, str]:
    form = {
        "csrf_token": token,
        "idempotency_key": "form-1",
        "template": "workshop_invitation",
        "title": "Family Math Night",
        "description": "Games and snacks for the whole family.",
        "place": "Lincoln library",
        "school": "Lincoln",
        "start": f"{UPCOMING_DAY}T17:30",
        "end": f"{UPCOMING_DAY}T18:30",
        "timezone": "America/Chicago",
        "rsvp": "on",
        "aud_school": "Lincoln",
        "channel_sms": "1",
        "channel_email": "1",
        "channel_telegram": "1",
        "policy": "preferred",
        "when": "now",
    }
    form.update(extra)
    return form


async def test_compose_preview_and_idempotent_send(web: Any) -> None:
    await web.login("lincoln@district.example")
    token = await web.csrf("/compose")
    preview = await web.client.post("/compose", data=compose_form(token, action="preview"))
    assert preview.status == 200, await preview.text()
    html = await preview.text()
    languages = set(re.findall(r'data-language="([^"]+)"', html))
    assert {"es", "so", "vi", "ar", "en"} <= languages
    assert "reviewed translation" in html  # what the Spanish families read (no engine: English titles)
    assert "English, with a note in their language" in html  # ... where the free text stays English
    assert re.search(r'data-segments="\d+"', html)  # SMS segments shown
    assert "estimated cost" in html and "Invitation: Family Math Night" in html
    async with web.gw.db.session() as session:
        assert await session.scalar(select(func.count(Broadcast.id))) == 0
    sent = await web.client.post("/compose", data=compose_form(token, action="send"), allow_redirects=False)
    assert sent.status == 303, await sent.text()
    location = sent.headers["Location"]
    assert re.fullmatch(r"/broadcasts/\d+", location)
    again = await web.client.post("/compose", data=compose_form(token, action="send"), allow_redirects=False)
    assert again.headers["Location"] == location  # a double submit sends once
    async with web.gw.db.session() as session:
        assert await session.scalar(select(func.count(Broadcast.id))) == 1
    page = await web.client.get(location)
    assert page.status == 200
    assert 'data-stage="queued"' in await page.text()
    chart = await (await web.client.get(location + "/chart")).text()
    assert 'data-final="false"' in chart
    await web.gw.dispatcher.run_until_idle()
    chart = await (await web.client.get(location + "/chart")).text()
    assert 'data-final="true"' in chart
    assert "broadcasts" in (await (await web.client.get("/broadcasts")).text()).lower()
    # the Roosevelt liaison cannot open a Lincoln broadcast
    other = web.gw  # same app; sign in as the other liaison
    assert other is web.gw
    await web.client.post("/logout", data={"csrf_token": await web.csrf()})
    await web.login("roosevelt@district.example")
    assert (await web.client.get(location)).status == 404


#: Lincoln families in languages no catalog or engine covers here.
UNCOVERED_LANGUAGES = (
    "U900,Olena Kovalenko,uk,+19135550901,,,sms,Lincoln,6,Ivan Kovalenko,America/Chicago,\n"
    "H901,Jean Pierre,ht,+19135550902,,,sms,Lincoln,6,Marie Pierre,America/Chicago,\n"
)
#: Lincoln families whose names are not in Latin-1.
NAMES_IN_OTHER_SCRIPTS = (
    "V900,Nguyễn Thị Đặng,vi,+19135550911,,,sms,Lincoln,6,Trần Văn Bảo,America/Chicago,\n"
    "A901,محمد أحمد,ar,+19135550912,,,sms,Lincoln,6,ليلى أحمد,America/Chicago,\n"
)


async def test_compose_preview_says_in_which_language_the_english_note_is(web: Any, tmp_path: Any) -> None:
    # Families whose language nothing translates (no catalog, no engine here) get English with an
    # English note: the preview must not tell the liaison the note is in their language.
    await import_rows(web.gw, tmp_path, UNCOVERED_LANGUAGES)
    await web.login("lincoln@district.example")
    token = await web.csrf("/compose")
    preview = await web.client.post("/compose", data=compose_form(token, action="preview"))
    assert preview.status == 200, await preview.text()
    html = await preview.text()
    sources = dict(
        re.findall(r'data-language="([^"]+)".*?<span class="text-source">(.*?)</span>', html, flags=re.S)
    )
    for language in ("uk", "ht"):
        assert "English, with a note in English" in sources[language], sources[language]
        assert "in their language" not in sources[language]
    # Spanish has a reviewed catalog, the note included: its free text alone stays English.
    assert "your text: English, with a note in their language" in sources["es"], sources["es"]


async def test_csv_downloads_open_in_a_spreadsheet_with_names_as_written(web: Any, tmp_path: Any) -> None:
    # Excel reads a CSV without a byte-order mark in the computer's legacy code page: every
    # download is marked UTF-8.
    await import_rows(web.gw, tmp_path, NAMES_IN_OTHER_SCRIPTS)
    await web.login("admin@district.example")
    export = await web.client.get("/families/export.csv")
    assert export.status == 200
    assert export.headers["Content-Disposition"] == 'attachment; filename="families.csv"'
    body = await export.read()
    assert body.startswith(b"\xef\xbb\xbf")
    text = body.decode("utf-8-sig")
    assert "Nguyễn Thị Đặng" in text and "محمد أحمد" in text and "Trần Văn Bảo" in text


async def test_compose_errors_are_shown_not_500(web: Any) -> None:
    await web.login("admin@district.example")
    token = await web.csrf("/compose")
    response = await web.client.post(
        "/compose", data=compose_form(token, action="preview", start="", title="")
    )
    assert response.status == 400
    html = await response.text()
    assert "Starts: required" in html and "Event title: required" in html
    assert 'id="start-error"' in html and 'aria-describedby="start-error"' in html  # next to its field
    response = await web.client.post(
        "/compose", data=compose_form(token, action="preview", audience="colour:red")
    )
    assert response.status == 400
    assert "colour" in await response.text()


async def test_survey_page_filters_and_csv(web: Any) -> None:
    survey = {
        "id": "bus",
        "title": "Bus routes",
        "questions": [{"id": "rides_bus", "type": "yesno", "text": "Bus?"}],
    }
    response = await web.client.post("/api/surveys", json=survey, headers=web.auth("admin"))
    assert response.status == 201
    await web.gw.dispatcher.run_until_idle()
    await inject_reply(web.gw, "+19135550111", "yes", "sms")  # Roosevelt, es-MX
    await inject_reply(web.gw, "+19135550109", "no", "sms")  # Lincoln, en
    await web.login("lincoln@district.example")
    page = await (await web.client.get("/surveys/bus")).text()
    assert 'data-answer="no"' in page and 'data-answer="yes"' not in page
    csv_text = await (await web.client.get("/surveys/bus/results.csv")).text()
    assert "rides_bus" in csv_text and "Roosevelt" not in csv_text
    assert csv_text.startswith("\ufeff")  # marked UTF-8 for spreadsheets
    await web.client.post("/logout", data={"csrf_token": await web.csrf()})
    await web.login("admin@district.example")
    page = await (await web.client.get("/surveys/bus?language=es-MX")).text()
    assert 'data-answer="yes"' in page and 'data-answer="no"' not in page
    page = await (await web.client.get("/surveys/bus?school=Lincoln")).text()
    assert 'data-answer="no"' in page and 'data-answer="yes"' not in page
    assert (await web.client.get("/surveys/nope")).status == 404


async def test_family_page_shows_and_changes_consent_per_channel(web: Any) -> None:
    # STOP by SMS: the page shows SMS opted out, on that channel only.
    await inject_reply(web.gw, "+19135550111", "STOP", "sms")
    await web.login("roosevelt@district.example")
    page = await (await web.client.get("/families/F011")).text()
    assert re.search(r'data-channel="sms" data-state="opted_out"', page)
    endpoint_id = re.search(r'data-endpoint="(\d+)"', page).group(1)
    token = csrf_from(page)
    # Staff opt the family back in on SMS for them, then out of every channel: audited.
    for channel, action in (("sms", "opt_in"), ("*", "opt_out")):
        done = await web.client.post(
            "/families/F011/consent",
            data={"csrf_token": token, "endpoint_id": endpoint_id, "channel": channel, "action": action},
            allow_redirects=False,
        )
        assert done.status == 303
        page = await (await web.client.get("/families/F011")).text()
        state = "subscribed" if action == "opt_in" else "opted_out"
        assert re.search(rf'data-channel="sms" data-state="{state}"', page)
    assert "every channel" in page
    async with web.gw.db.session() as session:
        actions = [e.action for e in await session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions[-2:] == ["endpoint.opt_in", "endpoint.opt_out"]
    # Another school's family is the same 404 as a missing one.
    other = await web.client.post(
        "/families/F002/consent",
        data={"csrf_token": token, "endpoint_id": "1", "channel": "sms", "action": "opt_out"},
    )
    assert other.status == 404

    # The API: the same change in JSON, answered with the family as the page shows it.
    headers = web.auth("roosevelt")
    response = await web.client.post(
        "/api/families/F011/consent",
        json={"endpoint_id": int(endpoint_id), "channel": "sms", "opted_out": False},
        headers=headers,
    )
    assert response.status == 200
    family = await response.json()
    [endpoint] = family["guardians"][0]["endpoints"]
    assert endpoint["channels"] == [
        {"channel": "sms", "state": "subscribed", "everywhere": False, "since": None}
    ]
    assert endpoint["masked"] == "+1******0111"
    refused = await web.client.post(
        "/api/families/F011/consent",
        json={"endpoint_id": int(endpoint_id), "channel": "fax", "opted_out": True},
        headers=headers,
    )
    assert refused.status == 400
    assert "channel 'fax' does not reach this address" in (await refused.json())["error"]


async def test_a_family_page_marks_each_message_in_the_language_it_reads_in(web: Any) -> None:
    # No engine: Fatima's (ar) invitation is the Arabic catalog around the English title; Ahmad's
    # (prs) is English from end to end. Each is marked so (lang) for readers and screen readers.
    await web.login("admin@district.example")
    token = await web.csrf("/compose")
    sent = await web.client.post("/compose", data=compose_form(token, action="send"), allow_redirects=False)
    assert sent.status == 303, await sent.text()
    await web.gw.dispatcher.run_until_idle()
    for family, language in (("F004", "ar"), ("F010", "en")):
        page = await (await web.client.get(f"/families/{family}")).text()
        sent = r'<span class="family-text" lang="([^"]*)" dir="auto">(?:(?!</span>).)*Family Math Night'
        marked = re.findall(sent, page, re.S)
        assert marked == [language], (family, marked)
