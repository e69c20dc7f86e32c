"""The web preview shows each language as families read it: right-to-left text with English and
values isolated, bidi controls gone from names, Telegram's HTML as formatting (not tags)."""

from __future__ import annotations

import re
from typing import Any

from test_web_pages import compose_form

from gateway.families import import_families

RLO = "\u202e"


async def test_arabic_preview_isolates_values_and_shows_telegram_formatting(web: Any, tmp_path) -> None:
    extra = tmp_path / "rtl.csv"
    extra.write_text(
        "family_id,guardian_name,language,telegram_chat_id,preferred_channel,school,grade,student_name\n"
        f"L900,Amal {RLO}Noor,ar,990001,telegram,Lincoln,2,Sami\n",
        encoding="utf-8",
    )
    report = await import_families(web.gw, extra, progress=False)
    assert not report["errors"]
    await web.login("lincoln@district.example")
    token = await web.csrf("/compose")
    page = await web.client.post(
        "/compose", data=compose_form(token, action="preview", aud_school="Lincoln", aud_language="ar")
    )
    assert page.status == 200, await page.text()
    html = await page.text()
    assert RLO not in html
    card = re.search(r'<article class="language card" data-language="ar".*?</article>', html, re.S)
    assert card, html
    arabic = card.group(0)
    # The English title (no engine here) reads left to right inside the Arabic text.
    assert "\u2066Family Math Night\u2069" in arabic or "\u2068Family Math Night\u2069" in arabic
    # Telegram HTML shown as formatting: a real <b> element, no escaped tags.
    assert re.search(r'<div class="message telegram"[^>]*dir="rtl"', arabic)
    assert "<b>" in arabic and "&lt;b&gt;" not in arabic
