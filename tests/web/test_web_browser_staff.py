"""Staff management and the phone layout in a real browser (Playwright driving Debian's
Chromium against `gateway serve`): an admin adds a liaison, who signs in with the one-time
password and changes it; every page of the app, at 390 px wide, is no wider than the screen."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect
from test_web_browser import PASSWORD, Server, browser, server, shot, sign_in  # noqa: F401 (fixtures)

PHONE = {"width": 390, "height": 844}
#: A word longer than a phone is wide, in data a page shows (a family's reply, a survey title).
LONG_WORD = "Supercalifragilisticexpialidocious" * 3


def _post(srv: Server, path: str, token: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        srv.base + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"POST {path}: {exc.code} {exc.read().decode()}") from None


async def _width(page: Page) -> int:
    return int(await page.evaluate("document.documentElement.scrollWidth"))


async def test_admin_adds_a_liaison_who_signs_in(server: Server, browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    shots = tmp_path / "shots"
    shots.mkdir()
    admin_context = await browser.new_context(viewport={"width": 1280, "height": 900})
    admin = await admin_context.new_page()
    await sign_in(admin, server.base, "admin@district.example")
    await admin.get_by_role("link", name="Staff", exact=True).click()
    await expect(admin).to_have_url(re.compile(r"/staff$"))
    await admin.locator("#add-staff").click()
    await admin.get_by_label("E-mail (their sign-in name)").fill("new.liaison@district.example")
    await admin.locator("#role-liaison").check()
    await admin.get_by_label("Lincoln", exact=True).check()
    await admin.locator("#language").select_option("en")
    await shot(admin, shots, "staff-add")
    await admin.locator("#save-staff").click()
    await expect(admin.locator("#created")).to_be_visible()
    one_time = (await admin.locator("code.password").inner_text()).strip()
    assert len(one_time) >= 16
    await shot(admin, shots, "staff-added")
    await admin.goto(server.base + "/staff")
    row = admin.locator("#staff tbody tr").filter(has_text="new.liaison@district.example")
    await expect(row).to_contain_text("Lincoln")
    await shot(admin, shots, "staff")

    liaison_context = await browser.new_context(viewport=PHONE, is_mobile=True)
    liaison = await liaison_context.new_page()
    await liaison.goto(server.base + "/families")
    await liaison.get_by_label("E-mail").fill("new.liaison@district.example")
    await liaison.get_by_label("Password").fill(one_time)
    await liaison.get_by_role("button", name="Sign in").click()
    await expect(liaison).to_have_url(re.compile(r"/families$"))
    rows = liaison.locator("#families tbody tr")
    await expect(rows.first).to_be_visible()
    assert "F011" not in await liaison.locator("#families").inner_text()  # a Roosevelt family
    assert await liaison.get_by_role("link", name="Staff", exact=True).count() == 0
    # the liaison makes the password their own
    await liaison.goto(server.base + "/account")
    await liaison.get_by_label("Current password").fill(one_time)
    await liaison.get_by_label("New password (at least 8 characters)").fill("my own password 1")
    await liaison.get_by_label("New password again").fill("my own password 1")
    await liaison.locator("#change-password").click()
    await expect(liaison.locator("#saved")).to_be_visible()
    assert await _width(liaison) <= PHONE["width"]
    await shot(liaison, shots, "account-phone")
    await liaison_context.close()
    await admin_context.close()


async def test_no_page_is_wider_than_a_phone(server: Server, browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    made = json.loads(
        await server.agateway(
            "staff",
            "add",
            "it@district.example",
            "--role",
            "admin",
            "--password",
            PASSWORD,
            "--token",
            "--json",
        )
    )
    token = made["token"]
    broadcast = _post(
        server,
        "/api/broadcasts",
        token,
        {
            "template": "announcement",
            "audience": "school:Lincoln",
            "context": {"title": f"Title {LONG_WORD}", "body": f"Body {LONG_WORD}"},
        },
    )
    survey = {
        "id": "phone-check",
        "title": f"Survey {LONG_WORD}",
        "audience": "school:Lincoln",
        "questions": [
            {
                "id": "ride",
                "type": "choice",
                "text": f"How? {LONG_WORD}",
                "choices": [{"value": "bus", "label": "Bus"}, {"value": "car", "label": LONG_WORD}],
            }
        ],
    }
    _post(server, "/api/surveys", token, {"survey": survey})
    await server.agateway(
        "sandbox", "reply", "--from", "+19135550102", f"Question {LONG_WORD} https://example.org/{LONG_WORD}"
    )
    staff_id = next(
        s["id"]
        for s in json.loads(await server.agateway("staff", "list", "--json"))
        if s["email"] == "it@district.example"
    )

    context = await browser.new_context(viewport=PHONE, is_mobile=True)
    page = await context.new_page()
    await page.goto(server.base + "/login")
    assert await _width(page) <= PHONE["width"], "/login"
    await sign_in(page, server.base, "admin@district.example")
    paths = [
        "/compose",
        "/compose?template=announcement",
        "/broadcasts",
        f"/broadcasts/{broadcast['broadcast_id']}",
        "/surveys",
        "/surveys/new",
        "/surveys/phone-check",
        "/reach",
        "/inbox",
        "/families",
        "/families?q=hernandez",
        "/families/F002",
        "/staff",
        "/staff/new",
        f"/staff/{staff_id}",
        "/account",
    ]
    too_wide = {}
    for path in paths:
        await page.goto(server.base + path)
        await page.wait_for_load_state("load")
        width = await _width(page)
        if width > PHONE["width"]:
            too_wide[path] = width
    # the compose preview and the survey builder's preview, with their cards
    await page.goto(server.base + "/compose?template=announcement")
    await page.get_by_label("Title", exact=True).fill(f"Title {LONG_WORD}")
    await page.locator("#body").fill(f"Body {LONG_WORD}")
    await page.get_by_role("button", name="Preview").click()
    await expect(page.locator("article.language").first).to_be_visible()
    if await _width(page) > PHONE["width"]:
        too_wide["compose preview"] = await _width(page)
    await page.goto(server.base + "/surveys/new")
    await page.get_by_label("Title", exact=True).fill(f"Survey {LONG_WORD}")
    await page.locator("#q1_text").fill(f"How? {LONG_WORD}")
    await page.locator("#q1_choices").fill(f"bus: Bus\ncar: {LONG_WORD}")
    await page.get_by_role("button", name="Preview").click()
    await expect(page.locator("article.language").first).to_be_visible()
    if await _width(page) > PHONE["width"]:
        too_wide["survey builder preview"] = await _width(page)
    await page.goto(server.base + "/families?q=hernandez")
    await expect(page.locator("#families tbody tr")).to_have_count(1)
    await shot(page, shots_dir(tmp_path), "families-phone")
    await page.goto(server.base + "/reach")
    await shot(page, shots_dir(tmp_path), "reach-phone")
    await page.goto(server.base + "/staff")
    await shot(page, shots_dir(tmp_path), "staff-phone")
    await context.close()
    assert not too_wide, f"pages wider than 390 px (scrollWidth): {too_wide}"


def shots_dir(tmp_path: Path) -> Path:
    """The test's screenshot folder."""
    folder = tmp_path / "shots"
    folder.mkdir(exist_ok=True)
    return folder
