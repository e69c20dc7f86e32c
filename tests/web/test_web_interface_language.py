"""The staff interface in another language: a liaison who reads Spanish switches the interface
from the header and every page — compose with its errors, broadcasts and the family-by-family
view, surveys and the builder, the inbox, families, reach — reads in Spanish, with no English
string left over (neither a message the catalog lacks nor a text the code forgot to mark)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from babel.messages.pofile import read_po
from test_web_pages import UPCOMING_DAY, compose_form

from gateway.resources import SHIPPED_LOCALES
from gateway.sandbox_tools import inject_reply

#: Words an English page uses that a Spanish page may keep as they are (names of things).
WORD = re.compile(r"\b[^\W\d_]{4,}\b")
SHARED = {"sms", "e-mail", "email", "telegram", "whatsapp", "csv", "yaml", "pdf", "total", "id", "url"}


class _VisibleText(HTMLParser):
    """Text a reader sees in the page's language, and the text of labels and placeholders.

    Left out: what is marked as another language (``lang``, a message a family received), as not
    to be translated (``translate="no"``: the audience syntax), code, and the choices of a list.
    """

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
    SKIP = {"script", "style", "textarea", "option", "code", "pre"}

    def __init__(self, language: str) -> None:
        super().__init__()
        self.language = language
        self.open: list[tuple[str, bool]] = []
        self.texts: list[str] = []

    def _foreign(self, tag: str, found: dict[str, str | None]) -> bool:
        lang = found.get("lang")
        return (
            tag in self.SKIP
            or found.get("translate") == "no"
            or "family-text" in (found.get("class") or "").split()  # what a family got or wrote
            or (lang is not None and lang.split("-")[0] not in (self.language, ""))
        )

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        foreign = self._foreign(tag, found)
        if not foreign and not any(skip for _, skip in self.open):
            for name in ("placeholder", "aria-label", "title", "alt"):
                if found.get(name):
                    self.texts.append(str(found[name]))
            if tag == "input" and found.get("type") in ("submit", "button") and found.get("value"):
                self.texts.append(str(found["value"]))
        if tag not in self.VOID:
            self.open.append((tag, foreign))

    def handle_endtag(self, tag: str) -> None:
        while self.open:
            opened, _ = self.open.pop()
            if opened == tag:
                break

    def handle_data(self, data: str) -> None:
        if data.strip() and not any(skip for _, skip in self.open):
            self.texts.append(data.strip())


def _english_words() -> set[str]:
    """Words of the interface's English strings that its Spanish catalog never uses."""
    with (SHIPPED_LOCALES / "web.pot").open("rb") as handle:
        english = {w.lower() for m in read_po(handle) if m.id for w in WORD.findall(str(m.id))}
    with (SHIPPED_LOCALES / "es" / "LC_MESSAGES" / "web.po").open("rb") as handle:
        spanish = {w.lower() for m in read_po(handle) if m.string for w in re.findall(r"\w+", str(m.string))}
    return english - spanish - SHARED


async def test_every_page_reads_in_spanish(web: Any, monkeypatch: Any) -> None:
    gw = web.gw
    missed: list[str] = []
    original = gw.ui_catalogs.gettext

    def recording(language: str, message: str, **params: Any) -> str:
        if language != "en" and not gw.ui_catalogs.is_reviewed(language, message):
            missed.append(message)
        return original(language, message, **params)

    monkeypatch.setattr(gw.ui_catalogs, "gettext", recording)

    # Data the pages show, in Spanish so that it cannot pass for an unwrapped English string.
    survey = {
        "id": "transporte",
        "title": "Rutas de autobús",
        "questions": [{"id": "autobus", "type": "yesno", "text": "¿Usa el autobús?"}],
    }
    assert (await web.client.post("/api/surveys", json=survey, headers=web.auth("admin"))).status == 201
    await web.login("admin@district.example")
    token = await web.csrf("/compose")
    # The switch in the header brings the liaison back to the page it was made on.
    switched = await web.client.post(
        "/me/language",
        data={"csrf_token": token, "language": "es"},
        headers={"Referer": str(web.client.make_url("/compose?template=announcement"))},
        allow_redirects=False,
    )
    assert switched.status == 303 and switched.headers["Location"] == "/compose?template=announcement"
    elsewhere = await web.client.post(
        "/me/language",
        data={"csrf_token": token, "language": "es"},
        headers={"Referer": "https://evil.example/phish"},
        allow_redirects=False,
    )
    assert elsewhere.headers["Location"] == "/compose"
    unknown = await web.client.post("/me/language", data={"csrf_token": token, "language": "xx"})
    assert unknown.status == 400
    page = await (await web.client.get("/compose")).text()
    assert '<html lang="es"' in page and ">español</option>" in page

    event = compose_form(
        token,
        title="Noche de matemáticas",
        description="Juegos para toda la familia.",
        place="Biblioteca Lincoln",
        action="send",
    )
    sent = await web.client.post("/compose", data=event, allow_redirects=False)
    assert sent.status == 303, await sent.text()
    broadcast = sent.headers["Location"]
    await gw.dispatcher.run_until_idle()
    await inject_reply(gw, "+19135550109", "yes, but is there a bus that evening?", "sms")
    await inject_reply(gw, "+19135550102", "Waan imaan doonaa, laakiin goorma ayuu dhammaanayaa?", "sms")

    # An invalid form answers in Spanish too, next to each field.
    refused = await web.client.post(
        "/compose", data=compose_form(token, action="preview", title="", end=f"{UPCOMING_DAY}T16:00")
    )
    assert refused.status == 400
    refused_html = await refused.text()
    assert "Title" not in refused_html and "obligatorio" in refused_html.lower()

    # So does the survey builder: every problem of a built survey, next to its field.
    builder = await web.client.post(
        "/surveys/new",
        data={
            "csrf_token": token,
            "action": "preview",
            "questions": "2",
            "title": "",
            "remind": "pronto",
            "q1_id": "a",
            "q1_type": "choice",
            "q1_text": "¿Qué día?",
            "q1_choices": "lunes\nlunes",
            "q1_next": "lunes -> fin",
            "q2_id": "a",
            "q2_type": "text",
            "q2_text": "",
            "channel_sms": "1",
        },
    )
    assert builder.status == 400
    builder_html = await builder.text()
    for field in ("title", "remind_unanswered_after", "q1_choices", "q1_next", "q2_text"):
        assert f'id="{field}-error"' in builder_html, field
    pages = {"compose (invalid)": refused_html, "survey builder (invalid)": builder_html}
    # Staff management: a form refused field by field, an account with a one-time password.
    staff_form = await web.client.post(
        "/staff/new",
        data={"csrf_token": token, "email": "nueva@district.example", "role": "liaison", "language": "es"},
    )
    assert staff_form.status == 400 and 'id="schools-error"' in (staff_html := await staff_form.text())
    pages["staff add (invalid)"] = staff_html
    added = await web.client.post(
        "/staff/new",
        data={
            "csrf_token": token,
            "email": "nueva@district.example",
            "role": "liaison",
            "schools": "Lincoln",
            "language": "es",
        },
    )
    assert added.status == 200 and 'id="one-time-password"' in (added_html := await added.text())
    pages["staff added"] = added_html
    account = await (await web.client.get("/api/staff", headers={"X-CSRF-Token": token})).json()
    new_id = next(a["id"] for a in account if a["email"] == "nueva@district.example")
    wrong_password = await web.client.post(
        "/account",
        data={
            "csrf_token": token,
            "action": "password",
            "current_password": "no es esta",
            "new_password": "otra contraseña",
            "repeat_password": "otra contraseña",
        },
    )
    assert wrong_password.status == 400
    pages["account (invalid)"] = await wrong_password.text()
    for path in (
        "/compose",
        "/compose?template=announcement",
        "/broadcasts",
        broadcast,
        "/surveys",
        "/surveys/new",
        "/surveys/transporte",
        "/inbox",
        "/families",
        "/families/F001",
        "/reach",
        "/staff",
        "/staff/new",
        f"/staff/{new_id}",
        "/account",
    ):
        response = await web.client.get(path)
        assert response.status == 200, path
        pages[path] = await response.text()

    # The notes the gateway leaves on replies read in Spanish too.
    inbox = pages["/inbox"]
    assert "la respuesta dice algo más" in inbox, inbox
    assert "Ninguna traducción automática cubre somalí → inglés" in inbox
    assert not sorted(set(missed)), f"strings without a Spanish translation: {sorted(set(missed))}"
    english = _english_words()
    leftovers = {}
    for path, html in pages.items():
        parser = _VisibleText("es")
        parser.feed(html)
        words = {text for text in parser.texts if any(w.lower() in english for w in WORD.findall(text))}
        if words:
            leftovers[path] = sorted(words)
    assert not leftovers, f"English left on Spanish pages: {leftovers}"
