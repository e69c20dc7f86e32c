"""Quiet hours, said before and after sending: the compose preview, the broadcast page, the API
status and the reach page tell a liaison which messages wait for the morning — and never call
a waiting message failed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from test_web_pages import compose_form
from web_helpers import WebEnv, seeded_web


def _window_around_now(zone: str) -> dict[str, str]:
    """Quiet hours from two hours ago to two hours from now, where the families live."""
    now = datetime.now(ZoneInfo(zone))
    return {
        "start": (now - timedelta(hours=2)).strftime("%H:%M"),
        "end": (now + timedelta(hours=2)).strftime("%H:%M"),
    }


@pytest.fixture
async def night(tmp_path: Path, seeded_sqlite: tuple[Path, dict[str, str]]) -> AsyncIterator[WebEnv]:
    """The web app on the seeded families (America/Chicago) while quiet hours are on there."""
    quiet = {"enabled": True, **_window_around_now("America/Chicago")}
    async with seeded_web(tmp_path, seeded_sqlite, quiet_hours=quiet) as env:
        yield env


def _waiting(html: str) -> int:
    said = r'id="quiet-hours">(\d+) messages wait for the end of quiet hours: the first goes at'
    match = re.search(said, html)
    assert match, html
    return int(match.group(1))


async def test_messages_held_for_quiet_hours_are_said_and_never_called_failed(night: Any) -> None:
    await night.login("lincoln@district.example")
    token = await night.csrf("/compose")
    preview = await night.client.post("/compose", data=compose_form(token, action="preview"))
    html = await preview.text()
    assert preview.status == 200, html
    expected = _waiting(html)  # the SMS and Telegram messages; e-mail is not held
    assert expected > 0

    sent = await night.client.post("/compose", data=compose_form(token, action="send"), allow_redirects=False)
    assert sent.status == 303, await sent.text()
    location = sent.headers["Location"]
    broadcast_id = int(location.rsplit("/", 1)[1])
    assert _waiting(await (await night.client.get(location)).text()) == expected
    for who in ("lincoln", "admin"):  # the liaison's own families, and the whole district
        answer = await night.client.get(f"/api/broadcasts/{broadcast_id}", headers=night.auth(who))
        status = await answer.json()
        assert status["deferred_quiet_hours"] == expected, who
        assert datetime.fromisoformat(status["deferred_until"]) > datetime.now(ZoneInfo("UTC"))

    await night.gw.dispatcher.run_until_idle()  # the e-mails go; the rest wait for the morning
    answer = await night.client.get(f"/api/broadcasts/{broadcast_id}", headers=night.auth("admin"))
    status = await answer.json()
    assert status["deferred_quiet_hours"] == expected and status["by_status"]["queued"] == expected
    reach = await (await night.client.get("/api/reach", headers=night.auth("lincoln"))).json()
    reasons = {u["family_id"]: u for u in reach["unreached"]}
    waiting = [u for u in reasons.values() if u["why"] == "not reached yet"]
    assert waiting and all(u["statuses"] == ["queued"] for u in waiting)
    assert not [u for u in reasons.values() if u["why"] == "failed"]
    page = await (await night.client.get("/reach")).text()
    assert "not reached yet: queued" in page and "failed" not in page

    # In the Spanish interface the reasons are Spanish too.
    await night.client.post("/me/language", data={"csrf_token": await night.csrf(), "language": "es"})
    page = await (await night.client.get("/reach")).text()
    assert "todavía en espera: en cola" in page
    assert "not reached yet" not in page


async def test_a_liaison_previewing_another_schools_event_is_told_beside_the_school(night: Any) -> None:
    await night.login("lincoln@district.example")
    token = await night.csrf("/compose")
    form = compose_form(token, action="preview", school="Jefferson")
    preview = await night.client.post("/compose", data=form)
    html = await preview.text()
    assert preview.status == 400
    assert re.search(r'id="school-error"[^>]*>School: Jefferson is not one of your schools \(Lincoln\)', html)
