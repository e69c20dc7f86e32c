"""Scheduling a liaison can trust, announcements with a file, and following up family by family:
a scheduled broadcast says when (in the district's time zone) and can be cancelled or edited;
the broadcast page lists every family with its outcome and RSVP, and the call list."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from sqlalchemy import func, select
from test_web_pages import compose_form

from gateway.sandbox_tools import inject_reply
from gateway.storage.models import OutboxMessage

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def multipart(fields: dict[str, str], filename: str, content: bytes, content_type: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for key, value in fields.items():  # the CSRF token first, as the form sends it
        data.add_field(key, value)
    data.add_field("attachment", content, filename=filename, content_type=content_type)
    return data


async def test_schedule_then_cancel_an_announcement_with_a_file(web: Any) -> None:
    await web.login("lincoln@district.example")
    token = await web.csrf("/compose?template=announcement")
    at = (datetime.now(UTC) + timedelta(days=2)).astimezone(ZoneInfo("America/Chicago"))
    fields = compose_form(
        token,
        action="send",
        template="announcement",
        title="No school on Friday",
        body="Teachers have a training day.",
        link="https://district.example/calendar",
        when="later",
        at=at.strftime("%Y-%m-%dT%H:%M"),
        timezone="America/Chicago",
        idempotency_key="ann-1",
    )
    for key in ("start", "end", "place", "description"):
        fields.pop(key, None)
    # A file that is not a PDF or an image is refused next to its field; nothing is written.
    refused = await web.client.post(
        "/compose", data=multipart(fields, "run.exe", b"MZ\x90\x00", "application/pdf")
    )
    assert refused.status == 400 and "not a PDF or an image" in await refused.text()
    async with web.gw.db.session() as session:
        assert await session.scalar(select(func.count(OutboxMessage.id))) == 0

    at = (datetime.now(UTC) + timedelta(days=2)).astimezone(tz=ZoneInfo("America/Chicago"))
    fields["at"] = at.strftime("%Y-%m-%dT%H:%M")
    sent = await web.client.post(
        "/compose", data=multipart(fields, "flyer.pdf", PDF, "application/pdf"), allow_redirects=False
    )
    assert sent.status == 303, await sent.text()
    page = await web.client.get(sent.headers["Location"])
    html = await page.text()
    assert "Scheduled for" in html and ("CST" in html or "CDT" in html)
    broadcast_id = int(sent.headers["Location"].rsplit("/", 1)[-1])
    async with web.gw.db.session() as session:
        rows = list(
            await session.scalars(select(OutboxMessage).where(OutboxMessage.broadcast_id == broadcast_id))
        )
    assert rows and all(r.status == "queued" for r in rows)
    email = next(r for r in rows if r.channel == "email")
    sms = next(r for r in rows if r.channel == "sms")
    assert email.payload["attachments"][0]["name"] == "flyer.pdf"
    link = re.search(r"https://\S+/files/[A-Za-z0-9_-]{32}/flyer\.pdf", sms.body)
    assert link, sms.body
    served = await web.client.get(link.group(0).split("gateway.test", 1)[1])
    assert served.status == 200 and await served.read() == PDF
    assert served.headers["Content-Type"] == "application/pdf"
    assert (await web.client.get("/files/" + "x" * 32 + "/flyer.pdf")).status == 404

    token = await web.csrf(f"/broadcasts/{broadcast_id}")
    cancelled = await web.client.post(
        f"/broadcasts/{broadcast_id}/cancel", data={"csrf_token": token}, allow_redirects=False
    )
    assert cancelled.status == 303
    async with web.gw.db.session() as session:
        statuses = set(
            await session.scalars(
                select(OutboxMessage.status).where(OutboxMessage.broadcast_id == broadcast_id)
            )
        )
    assert statuses == {"cancelled"}
    await web.gw.dispatcher.run_until_idle()
    assert (
        "Cancelled: nothing was sent." in await (await web.client.get(f"/broadcasts/{broadcast_id}")).text()
    )


async def test_family_by_family_and_the_call_list(web: Any) -> None:
    await web.login("lincoln@district.example")
    token = await web.csrf("/compose")
    start = datetime.now(UTC).astimezone(ZoneInfo("America/Chicago")) + timedelta(days=5)
    sent = await web.client.post(
        "/compose",
        data=compose_form(
            token,
            action="send",
            idempotency_key="inv-1",
            start=start.strftime("%Y-%m-%dT%H:%M"),
            end=(start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        ),
        allow_redirects=False,
    )
    assert sent.status == 303, await sent.text()
    broadcast_id = int(sent.headers["Location"].rsplit("/", 1)[-1])
    await web.gw.start_channels()
    await web.gw.dispatcher.run_until_idle()
    await inject_reply(web.gw, "+19135550101", "Sí")  # Maria: yes
    page = await (await web.client.get(f"/broadcasts/{broadcast_id}?rsvp=yes")).text()
    assert "Maria Hernández" in page and 'data-outcome="delivered"' in page
    everyone = await (await web.client.get(f"/broadcasts/{broadcast_id}")).text()
    assert "no answer" in everyone
    call_list = await web.client.get(f"/broadcasts/{broadcast_id}/call-list.csv")
    assert call_list.status == 200
    text = await call_list.text()
    assert text.startswith("\ufeff")  # marked UTF-8 for spreadsheets
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows and set(rows[0]) == {"guardian", "language", "phone", "reason", "family_id"}
    assert "Maria Hernández" not in {r["guardian"] for r in rows}  # she answered
    assert any(r["reason"] == "has not answered the RSVP" and r["phone"] for r in rows)
    assert all(r["family_id"].startswith("F") for r in rows)  # Lincoln's families only
