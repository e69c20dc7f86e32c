"""The liaison does the whole job in the browser (Playwright driving Debian's Chromium against
`gateway serve`): builds and sends a survey, schedules and cancels an announcement with a PDF,
follows an invitation family by family and downloads the call list, answers a family from the
conversation view. Screenshots as in test_web_browser.py."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, expect
from test_web_browser import PASSWORD, Server, browser, server, shot, sign_in  # noqa: F401 (fixtures)

from gateway.testing.waiting import wait_for

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def test_a_liaison_does_the_whole_job(server: Server, browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    shots = tmp_path / "shots"
    shots.mkdir()
    await server.agateway(
        "staff",
        "add",
        "lincoln@district.example",
        "--role",
        "liaison",
        "--school",
        "Lincoln",
        "--password",
        PASSWORD,
    )
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = await context.new_page()
    await sign_in(page, server.base, "lincoln@district.example")

    # 1. Build and send a survey.
    await page.goto(server.base + "/surveys/new")
    await page.get_by_label("Title", exact=True).fill("Getting to school")
    await page.locator("#q1_text").fill("How does your child get to school?")
    await page.locator("#q1_choices").fill("bus: School bus | bus\ncar: Car\nwalk: Walking")
    await page.get_by_role("button", name="Add a question").click()
    await page.locator("#q2_type").select_option("text")
    await page.locator("#q2_text").fill("Anything else?")
    await page.get_by_role("button", name="Preview").click()
    await expect(page.locator('article.language[data-language="es"]')).to_be_visible()
    await shot(page, shots, "survey-builder")
    await page.locator("#send-survey").click()
    await expect(page).to_have_url(re.compile(r"/surveys/getting-to-school$"))

    # 2. Schedule an announcement with a PDF, then cancel it.
    flyer = tmp_path / "flyer.pdf"
    flyer.write_bytes(PDF)
    await page.goto(server.base + "/compose?template=announcement")
    await page.get_by_label("Title", exact=True).fill("No school on Friday")
    await page.locator("#body").fill("Teachers have a training day.")
    await page.locator("#attachment").set_input_files(str(flyer))
    await page.locator("#aud_school").select_option("Lincoln")
    at = datetime.now(ZoneInfo("America/Chicago")) + timedelta(days=2)
    await page.locator("#when-later").check()
    await page.locator("#at").fill(at.strftime("%Y-%m-%dT%H:%M"))
    await shot(page, shots, "compose-announcement")
    await page.locator("#send").click()
    await expect(page).to_have_url(re.compile(r"/broadcasts/\d+$"))
    await expect(page.locator("#scheduled-for")).to_contain_text("Scheduled for")
    await shot(page, shots, "broadcast-scheduled")
    await page.locator("#cancel-broadcast").click()
    await expect(page.locator("#cancelled")).to_be_visible()

    # 3. An invitation, family by family, and the call list.
    start = datetime.now(ZoneInfo("America/Chicago")) + timedelta(days=5)
    await page.goto(server.base + "/compose")
    await page.get_by_label("Event title").fill("Family Math Night")
    await page.get_by_label("Place").fill("Lincoln library")
    await page.locator("#start").fill(start.strftime("%Y-%m-%dT%H:%M"))
    await page.locator("#end").fill((start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    await page.locator("#aud_school").select_option("Lincoln")
    await page.locator("#send").click()
    await expect(page).to_have_url(re.compile(r"/broadcasts/\d+$"))
    await expect(page.locator("#broadcast-status")).to_have_text("done", timeout=30_000)
    await server.agateway("sandbox", "reply", "--from", "+19135550101", "Sí")
    await page.reload()
    await expect(page.locator("#family-outcomes")).to_contain_text("Maria Hernández")
    await shot(page, shots, "broadcast-families")
    async with page.expect_download() as download_info:
        await page.locator("#call-list").click()
    download = await download_info.value
    saved = tmp_path / "call-list.csv"
    await download.save_as(str(saved))
    data = await asyncio.to_thread(saved.read_bytes)
    assert data.startswith("\ufeff".encode())  # marked UTF-8: Excel shows the names as written
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows and {"guardian", "language", "phone", "reason"} <= set(rows[0])
    assert "Maria Hernández" not in {r["guardian"] for r in rows}

    # 4. Answer a family from the conversation.
    await server.agateway("sandbox", "reply", "--from", "+19135550102", "Bas ma jiraa? Gaari ma haysanno")
    await page.goto(server.base + "/inbox")
    item = page.locator("article.inbox-item").filter(has_text="Amina Warsame")
    await expect(item.locator(".prompt")).to_contain_text("Family Math Night")
    await item.locator("details.thread summary").click()
    await item.get_by_label(re.compile("Reply")).fill("Yes, a school bus leaves at 5 pm.")
    await item.get_by_role("button", name="Send reply").click()
    await expect(page.locator("#flash")).to_be_visible()

    async def answered() -> bool:
        sent = json.loads(await server.agateway("sandbox", "outbox", "--json"))
        return any(m["address"] == "+19135550102" and "5 pm" in m["body"] for m in sent)

    await wait_for(answered, deadline=30, what="the staff answer leaving")
    await page.reload()
    item = page.locator("article.inbox-item").filter(has_text="Amina Warsame")
    await item.locator("details.thread summary").click()
    await expect(item.locator("li.staff")).to_contain_text("5 pm")
    await shot(page, shots, "inbox-conversation")

    # The same liaison switches the interface to Spanish from the header: the page comes back
    # in Spanish, the family's words stay as they were written.
    await page.locator("#ui-language").select_option("es")
    await page.locator("form.ui-language button").click()
    await expect(page.locator("html")).to_have_attribute("lang", "es")
    await expect(page.locator("h1")).to_contain_text("Bandeja")
    item = page.locator("article.inbox-item").filter(has_text="Amina Warsame")
    await expect(item.locator(".original").first).to_be_visible()
    await shot(page, shots, "inbox-es")
    await page.goto(server.base + "/surveys/new")
    # the live count is written by the page's script from the API's figures, in Spanish too
    await expect(page.locator("#audience-count")).to_contain_text("familias")
    await expect(page.locator("#audience-count")).to_contain_text("mensajes")
    await shot(page, shots, "survey-builder-es")
    await context.close()
