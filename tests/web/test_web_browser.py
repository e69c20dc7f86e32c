"""The liaison web app in a real browser (Playwright driving Debian's Chromium) against a
`gateway serve` process started by the test: sign in, compose and preview in several languages,
schedule, watch the delivery chart fill as the sandbox channel sends, answers injected through
`gateway sandbox reply`, read and answer an inbox item, and a liaison of one school unable to see
a family of another by page, search, export or API.

Screenshots go to the test's folder; with ``UPDATE_SCREENSHOTS=1`` they are also copied to
``docs/screenshots/`` (listed in ``docs/web.md``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from typer.testing import CliRunner

from gateway.cli import app
from gateway.resources import SHIPPED_EXAMPLES
from gateway.testing.harness import write_config

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = SHIPPED_EXAMPLES / "families.csv"
GATEWAY = [sys.executable, "-m", "gateway.cli"]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
PASSWORD = "correct horse battery"
SHOTS = ROOT / "docs" / "screenshots"


@dataclass
class Server:
    """A running `gateway serve`."""

    base: str
    config: Path
    folder: Path

    def gateway(self, *args: str) -> str:
        """Run a `gateway` command on the same config (in-process, like the `cli` fixture); its output."""
        result = CliRunner().invoke(app, [*args, "--config", str(self.config)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    async def agateway(self, *args: str) -> str:
        """:meth:`gateway` from async code (in a thread: the command runs its own event loop)."""
        return await asyncio.to_thread(self.gateway, *args)

    def api(self, path: str, token: str) -> tuple[int, Any]:
        """GET an API path with a bearer token."""
        request = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Families and staff set up through the CLI, then `gateway serve` (a subprocess) on a free port."""
    tmp_path = tmp_path_factory.mktemp("serve")
    port = _free_port()
    config = write_config(
        tmp_path / "gw",
        http={"host": "127.0.0.1", "port": port, "public_base_url": f"http://127.0.0.1:{port}"},
        logging={"level": "WARNING"},
    )
    srv = Server(f"http://127.0.0.1:{port}", config, tmp_path)
    srv.gateway("families", "import", str(FAMILIES), "--json")
    srv.gateway("staff", "add", "admin@district.example", "--role", "admin", "--password", PASSWORD)
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [*GATEWAY, "serve", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
    )
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(srv.base + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None:
                raise AssertionError("gateway serve exited:\n" + (tmp_path / "serve.log").read_text())
            time.sleep(0.1)
        else:
            raise AssertionError("gateway serve did not answer /healthz")
        yield srv
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless (never a downloaded browser)."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def shot(page: Page, folder: Path, name: str) -> None:
    """A screenshot of the viewport, kept with the test (and in docs/ when asked)."""
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path))
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SHOTS / path.name)


async def sign_in(page: Page, base: str, email: str) -> None:
    await page.goto(base + "/compose")
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/compose$"))


async def test_liaison_journey_in_a_browser(server: Server, browser: Browser, tmp_path: Path) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(server.base + "/login")
    await shot(page, shots, "login")
    await sign_in(page, server.base, "admin@district.example")

    # compose: event fields, audience builder with a live count, preview in every language
    await page.get_by_label("Event title").fill("Family Math Night")
    await page.get_by_label("Description").fill("Games and snacks for the whole family.")
    await page.get_by_label("Place").fill("Lincoln library")
    await page.locator("#school").fill("Lincoln")
    await page.locator("#aud_school").select_option("Lincoln")
    count = page.locator("#audience-count")
    await expect(count).to_have_attribute("data-families", "10")
    await expect(count).to_contain_text("10 families")
    await page.locator("#aud_grade").fill("3")
    await expect(count).to_have_attribute("data-families", "1")
    await page.locator("#aud_grade").fill("")
    await expect(count).to_have_attribute("data-families", "10")
    await page.get_by_role("button", name="Preview").click()
    cards = page.locator("article.language")
    await expect(cards.first).to_be_visible()
    languages = set(await cards.evaluate_all("els => els.map(e => e.dataset.language)"))
    assert {"es", "so", "vi", "ar", "fr", "en"} <= languages
    spanish = page.locator('article.language[data-language="es"]')
    await expect(spanish.locator(".text-source")).to_contain_text("reviewed translation")
    await expect(spanish.locator(".sms").first).to_contain_text("segments")
    arabic = page.locator('article.language[data-language="ar"] .message').first
    assert await arabic.get_attribute("dir") == "rtl"
    await expect(page.locator("#preview-summary")).to_contain_text("estimated cost")
    await page.evaluate("document.getElementById('preview-title').scrollIntoView()")
    await shot(page, shots, "compose-preview")
    await page.evaluate("window.scrollTo(0, 0)")
    await shot(page, shots, "compose")

    # schedule a few seconds ahead, then watch the chart fill as the server's dispatcher sends
    at = datetime.now(ZoneInfo("America/Chicago")) + timedelta(seconds=6)
    await page.locator("#when-later").check()
    await page.locator("#at").fill(at.strftime("%Y-%m-%dT%H:%M:%S"))
    await page.locator("#send").click()
    await expect(page).to_have_url(re.compile(r"/broadcasts/\d+$"))
    broadcast_id = page.url.rsplit("/", 1)[1]
    queued = page.locator('tr[data-stage="queued"] td.num')
    delivered = page.locator('tr[data-stage="delivered"] td.num')
    messages = int(await queued.get_attribute("data-value") or 0)
    assert messages >= 10
    assert await delivered.get_attribute("data-value") == "0"
    await shot(page, shots, "broadcast-queued")
    await expect(delivered).to_have_attribute("data-value", str(messages), timeout=30_000)
    await expect(queued).to_have_attribute("data-value", "0")
    await expect(page.locator("#broadcast-status")).to_have_text("done")
    await shot(page, shots, "broadcast")

    # families answer through the real inbound pipeline
    await server.agateway("sandbox", "reply", "--from", "+19135550102", "1")  # Somali: yes
    await server.agateway("sandbox", "reply", "--from", "+19135550101", "2")  # Spanish: no
    await server.agateway("sandbox", "reply", "--from", "+19135550109", "1")  # English: yes
    await server.agateway("sandbox", "reply", "--from", "+19135550111", "¿Hay bus?")  # Roosevelt
    await page.goto(server.base + "/surveys")
    await page.get_by_role("link", name=re.compile("Family Math Night")).click()
    await expect(page.locator('tr[data-answer="yes"] td.num')).to_have_text("2")
    await expect(page.locator('tr[data-answer="no"] td.num')).to_have_text("1")
    await shot(page, shots, "survey")
    await page.locator("#language").select_option("so")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator('tr[data-answer="yes"] td.num')).to_have_text("1")
    await expect(page.locator('tr[data-answer="no"]')).to_have_count(0)

    await page.goto(server.base + "/reach")
    await expect(page.locator("#by-language")).to_contain_text("Somali")
    await expect(page.locator("#unreached")).to_be_visible()
    await shot(page, shots, "reach")

    # the inbox: original and translation, answer in English
    await page.goto(server.base + "/inbox")
    item = page.locator("article.inbox-item").filter(has_text="F011")
    await expect(item.locator(".original")).to_have_text("¿Hay bus?")
    await item.get_by_label(re.compile("Reply")).fill("Yes, a school bus leaves at 5 pm.")
    await item.get_by_role("button", name="Send reply").click()
    # no engine is installed here: the banner says the reply goes in English, as it does
    await expect(page.locator("#flash")).to_contain_text("could not be translated into Spanish")
    await expect(page.locator("#flash")).to_contain_text("in English, with a note")
    await shot(page, shots, "inbox")
    for _ in range(100):
        sent = json.loads(await server.agateway("sandbox", "outbox", "--json"))
        replies = [m for m in sent if m["address"] == "+19135550111" and "5 pm" in m["body"]]
        if replies:
            break
        await asyncio.sleep(0.2)
    assert replies, "the staff reply was not sent by the server's dispatcher"

    await page.goto(server.base + "/families?q=Hern")
    await expect(page.locator("#families tbody tr")).to_have_count(1)
    await shot(page, shots, "families")
    await page.goto(server.base + "/families/F002")
    await expect(page.locator("#history")).to_contain_text("sms")
    await shot(page, shots, "family")

    phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    mobile = await phone.new_page()
    await sign_in(mobile, server.base, "admin@district.example")
    await shot(mobile, shots, "compose-phone")
    await mobile.goto(server.base + f"/broadcasts/{broadcast_id}")
    await shot(mobile, shots, "broadcast-phone")
    await phone.close()
    await context.close()


async def test_liaison_of_one_school_cannot_see_another(server: Server, browser: Browser) -> None:
    made = json.loads(
        await server.agateway(
            "staff",
            "add",
            "roosevelt@district.example",
            "--role",
            "liaison",
            "--school",
            "Roosevelt",
            "--password",
            PASSWORD,
            "--token",
            "--json",
        )
    )
    context = await browser.new_context()
    page = await context.new_page()
    await sign_in(page, server.base, "roosevelt@district.example")
    await page.goto(server.base + "/families")
    rows = page.locator("#families tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("F011")
    response = await page.goto(server.base + "/families/F002")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    await page.goto(server.base + "/families?q=Warsame")
    await expect(rows).to_have_count(0)
    export = await context.request.get(server.base + "/families/export.csv")
    assert export.status == 200
    text = await export.text()
    assert "F011" in text and "F002" not in text
    status, _ = server.api("/api/families/F002", made["token"])
    assert status == 404
    status, families = server.api("/api/families", made["token"])
    assert status == 200 and [f["family_id"] for f in families] == ["F011"]
    await context.close()
