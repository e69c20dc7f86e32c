"""The shipped templates, their reviewed gettext catalogs and the answer / keyword lists.

Templates are rendered here through a minimal environment built exactly as the rendering
contract says (sandbox, StrictUndefined, i18n with newstyle gettext and trimmed trans blocks,
trim_blocks / lstrip_blocks, autoescape only for ``email_html`` and ``telegram``, Babel
filters bound to the family's locale and time zone), so a template or catalog that breaks the
contract fails here before the renderer ever sees it.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from babel import Locale, dates, numbers
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import FileSystemLoader, StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

from gateway.rendering import messages
from gateway.resources import SHIPPED_LOCALES, SHIPPED_TEMPLATES

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = SHIPPED_TEMPLATES
LOCALES = SHIPPED_LOCALES

REQUIRED_LANGUAGES = ["es", "vi", "ar", "so", "sw", "my", "ne", "fr"]
SHIPPED_LANGUAGES = sorted(p.parent.parent.name for p in LOCALES.glob("*/LC_MESSAGES/gateway.po"))
RENDER_LANGUAGES = ["en", *SHIPPED_LANGUAGES]
RTL_LANGUAGES = {"ar", "prs", "fa", "ur", "ps", "he"}

REQUIRED_TEMPLATES = [
    "workshop_invitation",
    "event_reminder",
    "survey_question",
    "rsvp_confirmation",
    "opt_out_confirmation",
    "opt_in_confirmation",
    "help_reply",
    "survey_reprompt",
    "survey_closing",
    "staff_reply",
    "crisis_reply",
    "announcement",
]
BLOCKS = ["sms", "email_subject", "email_text", "email_html", "telegram"]
FALLBACK = {"telegram": "sms", "email_text": "sms"}
AUTOESCAPED_BLOCKS = {"email_html", "telegram"}
TELEGRAM_TAGS = {"b", "i", "u", "a", "code"}
EMAIL_HTML_TAGS = {"p", "strong", "em", "ul", "ol", "li", "a", "br", "small", "blockquote"}
COMPLIANCE_KEYWORDS = ("START", "STOP", "HELP")

PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]")
FAMILY_TZ = ZoneInfo("America/Chicago")
EVENT_START = dt.datetime(2027, 3, 4, 17, 30, tzinfo=FAMILY_TZ)
EVENT_END = dt.datetime(2027, 3, 4, 19, 0, tzinfo=FAMILY_TZ)


# --------------------------------------------------------------------------- helpers


def babel_locale(language: str) -> str:
    """BCP 47 code of a family language → the Babel / folder name (``zh-Hans`` → ``zh_Hans``)."""
    return language.replace("-", "_")


def _plural_index(expression: str, n: int) -> int:
    """Evaluate a gettext ``plural=`` expression for ``n`` (as gettext's own parser would)."""
    from gettext import c2py

    return c2py(expression)(n)


@cache
def load_catalog(language: str) -> Catalog:
    """The reviewed catalog of ``language``, parsed."""
    path = LOCALES / babel_locale(language) / "LC_MESSAGES" / "gateway.po"
    with path.open("rb") as handle:
        return read_po(handle, locale=babel_locale(language))


def load_template_catalog() -> Catalog:
    """``locales/gateway.pot``, parsed."""
    with (LOCALES / "gateway.pot").open("rb") as handle:
        return read_po(handle)


def message_ids(catalog: Catalog) -> set[str | tuple[str, ...]]:
    """Every msgid of ``catalog`` (plural ones as tuples), header excluded."""
    return {
        message.id if isinstance(message.id, str) else tuple(message.id)
        for message in catalog
        if message.id
    }


def placeholders(text: str) -> Counter[str]:
    """How often each ``%(name)s`` placeholder occurs in ``text``."""
    return Counter(PLACEHOLDER.findall(text))


def translations_for(language: str) -> NullTranslations:
    """Gettext translations of ``language``, compiled in memory from the .po file."""
    if language == "en":
        return NullTranslations()
    buffer = io.BytesIO()
    write_mo(buffer, load_catalog(language))
    buffer.seek(0)
    return Translations(buffer, domain="gateway")


@cache
def environment(language: str, autoescape: bool) -> SandboxedEnvironment:
    """A Jinja environment configured exactly as the rendering contract says."""
    env = SandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=autoescape,
    )
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(translations_for(language), newstyle=True)  # type: ignore[attr-defined]
    locale = babel_locale(language)

    def date(value: dt.datetime, format: str = "full") -> str:
        return dates.format_date(value, format, locale=locale)

    def time(value: dt.datetime, format: str = "short") -> str:
        return dates.format_time(value, format, tzinfo=FAMILY_TZ, locale=locale)

    def datetime(value: dt.datetime, format: str = "medium") -> str:
        return dates.format_datetime(value, format, tzinfo=FAMILY_TZ, locale=locale)

    def number(value: float) -> str:
        return numbers.format_decimal(value, locale=locale)

    env.filters.update(date=date, time=time, datetime=datetime, number=number)
    return env


def sample_context(
    language: str,
    channel_variant: str,
    *,
    question_type: str = "choice",
    buttons: bool = False,
    answer: str = "yes",
    guardian_name: str = "Amina",
    event_title: str = "Family Math Night",
) -> dict[str, Any]:
    """Everything the renderer passes to a template, with plausible sample values."""
    choices: dict[str, list[dict[str, Any]]] = {
        "choice": [
            {"number": 1, "value": "bus", "label": "School bus"},
            {"number": 2, "value": "car", "label": "Car"},
            {"number": 3, "value": "walk", "label": "Walking"},
        ],
        "yesno": [
            {"number": 1, "value": "yes", "label": "Yes"},
            {"number": 2, "value": "no", "label": "No"},
        ],
        "rating": [{"number": n, "value": str(n), "label": str(n)} for n in range(1, 6)],
        "text": [],
    }
    return {
        "district": {
            "name": "Lincoln Schools",
            "phone": "+1 816-555-0100",
            "email": "families@lincoln.example",
            "website": "https://lincoln.example",
        },
        "guardian": {"name": guardian_name, "language": language},
        "family": {"family_id": "F-001"},
        "student_names": "Ana",
        "lang": language,
        "dir": "rtl" if language in RTL_LANGUAGES else "ltr",
        "unsubscribe_url": (
            "https://gw.example/unsubscribe/t0k3n" if channel_variant == "email" else None
        ),
        "channel_variant": channel_variant,
        "event": {
            "id": "math-night",
            "title": event_title,
            "description": "Games and snacks for the whole family.",
            "place": "Roosevelt Elementary gym",
            "address": "12 Oak St",
            "start": EVENT_START,
            "end": EVENT_END,
            "url": "https://lincoln.example/events/math-night",
            "contact": {"name": "Mr. Okafor", "phone": "+1 816-555-0199", "email": None},
            "rsvp": True,
        },
        "question": {
            "id": "how",
            "type": question_type,
            "text": "How does your child get to school?",
            "number": 1,
            "total": 3,
            "choices": choices[question_type],
        },
        "survey": {"id": "transport", "title": "Getting to school"},
        "buttons": buttons,
        "answer": answer,
        "resources": [
            {"name": "Food bank", "phone": "+1 816-555-0111", "url": "https://food.example"},
            {"name": "Bus office", "phone": "+1 816-555-0122", "url": None},
        ],
        "text": "The bus comes at 7:15 every morning.",
        "emergency_number": "911",
        "title": "No school on Friday",
        "body": "Teachers have a training day. The cafeteria is closed.",
        "link": "https://lincoln.example/calendar",
        "attachment": {"name": "calendar.pdf", "url": "https://gw.example/files/abc/calendar.pdf"},
    }


def render(template_name: str, block: str, language: str, **context_options: Any) -> str | None:
    """Render one channel variant the way the renderer does (None: no such variant)."""
    template: Template = environment(language, block in AUTOESCAPED_BLOCKS).get_template(
        f"{template_name}.j2"
    )
    source_block = block
    if source_block not in template.blocks:
        source_block = FALLBACK.get(block, "")
        if source_block not in template.blocks:
            return None
    variant = "email" if block.startswith("email") else block
    context = template.new_context(sample_context(language, variant, **context_options))
    return "".join(template.blocks[source_block](context)).strip()


def normalise(text: str) -> str:
    """Roughly what the reply matcher does: NFKC, case-fold, Latin accents off, trim."""
    text = unicodedata.normalize("NFKC", text).casefold().strip(" .!?¡¿,;:")
    kept: list[str] = []
    for char in unicodedata.normalize("NFD", text):
        if unicodedata.combining(char) and kept and kept[-1].isascii():
            continue
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept))


class TagCollector(HTMLParser):
    """Collects tag names and checks that every opened tag is closed in order."""

    VOID = {"br"}

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"unexpected </{tag}>")


def html_tags(markup: str) -> set[str]:
    """The tags used in ``markup``; fails the test when tags are not properly nested."""
    parser = TagCollector()
    parser.feed(markup)
    parser.close()
    assert not parser.errors and not parser.stack, (parser.errors, parser.stack, markup)
    return parser.tags


# --------------------------------------------------------------------------- catalogs


def test_the_eight_reviewed_languages_are_shipped() -> None:
    assert set(REQUIRED_LANGUAGES) <= set(SHIPPED_LANGUAGES)


@pytest.mark.parametrize("language", SHIPPED_LANGUAGES)
def test_catalog_is_complete_and_keeps_placeholders(language: str) -> None:
    catalog = load_catalog(language)
    assert not catalog.fuzzy, "the header is still marked fuzzy"
    assert not catalog.obsolete, f"obsolete entries: {list(catalog.obsolete)}"
    cldr = get_plural(babel_locale(language))
    assert catalog.num_plurals == cldr.num_plurals
    # The same rule as the pinned Babel's CLDR data, not merely the same count of forms.
    counts = [*range(0, 1200), 1_000_000, 2_000_000, 3_000_001]
    assert [_plural_index(catalog.plural_expr, n) for n in counts] == [
        _plural_index(cldr.plural_expr, n) for n in counts
    ], f"Plural-Forms should be {cldr.plural_forms!r}"
    problems: list[str] = []
    for message in catalog:
        if not message.id:
            continue
        if message.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")
        if message.pluralizable:
            singular, plural = message.id
            forms = list(message.string)
            if len(forms) != catalog.num_plurals or not all(forms):
                problems.append(f"plural forms missing: {message.id!r}")
            expected = placeholders(plural)
            if placeholders(singular) != expected:
                problems.append(f"msgid singular and plural differ: {message.id!r}")
            for form in forms:
                if placeholders(form) != expected:
                    problems.append(f"placeholders of {form!r} != {dict(expected)}")
            continue
        if not message.string:
            problems.append(f"untranslated: {message.id!r}")
        elif placeholders(message.string) != placeholders(message.id):
            problems.append(f"placeholders of {message.string!r} != those of {message.id!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("language", SHIPPED_LANGUAGES)
def test_catalog_strings_are_safe_in_html_and_keep_keywords(language: str) -> None:
    """Translations are inserted unescaped into HTML / Telegram HTML and sent by SMS."""
    for message in load_catalog(language):
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        for text in strings:
            # Markup-significant characters would break Telegram's HTML parse mode.
            assert not set(text) & set("<>&"), text
            # "%%" is the only escaped percent the new-style gettext formatting allows.
            assert "%" not in PLACEHOLDER.sub("", text).replace("%%", ""), text
            for keyword in COMPLIANCE_KEYWORDS:
                # Latin letters only around it: "回复STOP可" keeps the keyword intact.
                pattern = rf"(?<![A-Za-z]){keyword}(?![A-Za-z])"
                if any(re.search(pattern, msgid) for msgid in ids):
                    assert re.search(pattern, text), (keyword, text)


@pytest.mark.parametrize("language", SHIPPED_LANGUAGES)
def test_catalog_matches_the_template_catalog(language: str) -> None:
    assert message_ids(load_catalog(language)) == message_ids(load_template_catalog())


def test_template_catalog_is_up_to_date(tmp_path: Path) -> None:
    extracted = tmp_path / "gateway.pot"
    CommandLineInterface().run(
        ["pybabel", "-q", "extract", "-F", str(ROOT / "babel.cfg"), "-o", str(extracted), str(ROOT)]
    )
    with extracted.open("rb") as handle:
        fresh = read_po(handle)
    assert message_ids(fresh) == message_ids(load_template_catalog()), (
        "gateway/resources/locales/gateway.pot is stale: run `make catalogs`"
    )


INTERFACE_LANGUAGES = sorted(p.parent.parent.name for p in LOCALES.glob("*/LC_MESSAGES/web.po"))


def _read(path: Path, language: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=babel_locale(language) if language else None)


def test_interface_catalog_is_up_to_date(tmp_path: Path) -> None:
    """web.pot holds every string of the staff interface (pages, marked words, staff notes)."""
    extracted = tmp_path / "web.pot"
    CommandLineInterface().run(
        [
            "pybabel",
            "-q",
            "extract",
            "--no-default-keywords",
            "-k",
            "S_",
            "-F",
            str(ROOT / "babel-web.cfg"),
            "-o",
            str(extracted),
            str(ROOT),
        ]
    )
    assert message_ids(_read(extracted)) == message_ids(_read(LOCALES / "web.pot")), (
        "gateway/resources/locales/web.pot is stale: run `make catalogs`"
    )
    # The two catalogs do not share strings: families' messages and the staff interface are
    # translated (and reviewed) separately.
    assert not message_ids(_read(extracted)) & message_ids(load_template_catalog())


def test_spanish_is_the_first_interface_translation() -> None:
    assert "es" in INTERFACE_LANGUAGES


@pytest.mark.parametrize("language", INTERFACE_LANGUAGES)
def test_interface_catalog_is_complete_and_keeps_placeholders(language: str) -> None:
    catalog = _read(LOCALES / babel_locale(language) / "LC_MESSAGES" / "web.po", language)
    assert message_ids(catalog) == message_ids(_read(LOCALES / "web.pot"))
    problems = []
    for message in catalog:
        if not message.id:
            continue
        if not message.string or message.fuzzy:
            problems.append(f"untranslated: {message.id!r}")
        elif placeholders(message.string) != placeholders(message.id):
            problems.append(f"placeholders of {message.string!r} != those of {message.id!r}")
    assert not problems, "\n".join(problems)


def test_code_level_messages_are_in_every_catalog() -> None:
    code_ids = {
        messages.MT_NOTE,
        messages.SOURCE_FALLBACK_NOTE,
        messages.YES,
        messages.NO,
        messages.MAYBE,
        messages.RATING_HINT,
        messages.UNSUBSCRIBE,
        # Sent by the Telegram plugin through context.gettext(language, msgid, **params).
        "Welcome, %(name)s! You will now receive school messages here.",
        "Sorry, this link is not valid any more. Please ask your school for a new one.",
        "You will receive school messages here again.",
    }
    assert messages.N_("x") == "x"
    for language in SHIPPED_LANGUAGES:
        translated = {m.id: m.string for m in load_catalog(language) if m.id}
        assert code_ids <= set(translated), language
        assert all(translated[msgid] for msgid in code_ids), language


def test_telegram_welcome_interpolates_in_spanish() -> None:
    gettext = translations_for("es").gettext
    text = gettext("Welcome, %(name)s! You will now receive school messages here.") % {
        "name": "Rosa"
    }
    assert text == "¡Hola, Rosa! Desde ahora recibirá aquí los mensajes de la escuela."


# --------------------------------------------------------------------------- templates


def test_every_required_template_is_shipped_with_its_variants() -> None:
    for name in REQUIRED_TEMPLATES:
        template = environment("en", False).get_template(f"{name}.j2")
        assert "sms" in template.blocks, name
        assert "email_subject" in template.blocks, name
        assert "telegram" in template.blocks, name
        assert set(template.blocks) <= set(BLOCKS), (name, set(template.blocks))


RENDER_CASES: list[tuple[str, dict[str, Any]]] = [
    ("workshop_invitation", {}),
    ("workshop_invitation", {"buttons": True}),
    ("event_reminder", {}),
    ("survey_question", {"question_type": "choice"}),
    ("survey_question", {"question_type": "yesno", "buttons": True}),
    ("survey_question", {"question_type": "rating"}),
    ("survey_question", {"question_type": "rating", "buttons": True}),
    ("survey_question", {"question_type": "text"}),
    ("rsvp_confirmation", {"answer": "yes"}),
    ("rsvp_confirmation", {"answer": "no"}),
    ("rsvp_confirmation", {"answer": "maybe"}),
    ("opt_out_confirmation", {}),
    ("opt_in_confirmation", {}),
    ("help_reply", {}),
    ("survey_reprompt", {"question_type": "choice"}),
    ("survey_reprompt", {"question_type": "rating", "buttons": True}),
    ("survey_reprompt", {"question_type": "text"}),
    ("survey_closing", {}),
    ("staff_reply", {}),
    ("crisis_reply", {}),
    ("announcement", {}),
]


def _case_id(case: tuple[str, dict[str, Any]]) -> str:
    name, options = case
    return "-".join([name, *(f"{k}={v}" for k, v in options.items())])


#: Blocks made only of the liaison's own text (translated by the composer, not the catalog).
FREE_TEXT_ONLY = {("announcement", "email_subject")}


@pytest.mark.parametrize("case", RENDER_CASES, ids=_case_id)
def test_every_variant_renders_in_every_language(case: tuple[str, dict[str, Any]]) -> None:
    name, options = case
    for language in RENDER_LANGUAGES:
        for block in BLOCKS:
            text = render(name, block, language, **options)
            if text is None:  # the renderer generates email_html from email_text
                assert block == "email_html", (name, block)
                continue
            assert text, (name, block, language)
            assert "%(" not in text and "{{" not in text and "{%" not in text, text
            if block == "email_subject":
                assert "\n" not in text, text
            if block == "email_html":
                assert html_tags(text) <= EMAIL_HTML_TAGS, text
            if block == "telegram":
                assert html_tags(text) <= TELEGRAM_TAGS, text
            if language != "en" and (name, block) not in FREE_TEXT_ONLY:
                english = render(name, block, "en", **options)
                assert text != english, (name, block, language, text)


def test_spanish_sms_invitation_is_spanish_with_a_spanish_date() -> None:
    text = render("workshop_invitation", "sms", "es")
    assert text is not None
    assert "Le invitamos a Family Math Night." in text
    assert "jueves, 4 de marzo de 2027 a las 17:30" in text
    assert "Responda 1 para sí, 2 para no, 3 para tal vez." in text
    assert "invited" not in text and "Reply" not in text and "Thursday" not in text


def test_telegram_invitation_says_tap_a_button_only_with_buttons() -> None:
    with_buttons = render("workshop_invitation", "telegram", "so", buttons=True)
    without = render("workshop_invitation", "telegram", "so", buttons=False)
    assert with_buttons is not None and without is not None
    assert "Riix mid ka mid ah badhamada hoose." in with_buttons
    assert "Ku jawaab 1 = haa" not in with_buttons
    assert "Ku jawaab 1 = haa, 2 = maya, 3 = laga yaabee." in without


def test_arabic_email_html_renders_arabic_text_and_date() -> None:
    html = render("workshop_invitation", "email_html", "ar")
    assert html is not None
    assert "ندعوك إلى Family Math Night." in html
    assert "الخميس، 4 مارس 2027" in html
    assert '<a href="https://gw.example/unsubscribe/t0k3n">إلغاء الاشتراك</a>' in html
    assert '<a href="https://lincoln.example/events/math-night">' in html


def test_survey_question_counts_questions_with_plural_forms() -> None:
    assert "We have 3 short questions for you." in (render("survey_question", "sms", "en") or "")
    assert "Tenemos 3 preguntas cortas" in (render("survey_question", "sms", "es") or "")
    assert "لدينا لك 3 أسئلة قصيرة." in (render("survey_question", "sms", "ar") or "")
    numbered = render("survey_question", "sms", "sw")
    assert numbered is not None
    assert "Swali 1 kati ya 3" in numbered
    assert "1 - School bus\n2 - Car\n3 - Walking" in numbered


def test_keywords_stay_in_english_capitals_in_every_language() -> None:
    for language in RENDER_LANGUAGES:
        assert "START" in (render("opt_out_confirmation", "sms", language) or ""), language
        assert "STOP" in (render("opt_in_confirmation", "sms", language) or ""), language
        assert "STOP" in (render("help_reply", "sms", language) or ""), language


def test_english_sms_templates_are_short() -> None:
    for name, options in RENDER_CASES:
        if name == "help_reply":
            continue  # its length grows with the configured resource list
        text = render(name, "sms", "en", **options)
        assert text is not None and len(text) <= 300, (name, len(text or ""), text)


@pytest.mark.parametrize("block", ["email_html", "telegram"])
def test_guardian_name_and_event_title_are_escaped_in_html_variants(block: str) -> None:
    text = render(
        "workshop_invitation",
        block,
        "fr",
        guardian_name="<script>alert(1)</script>",
        event_title="Maths & <b>jeux</b>",
    )
    assert text is not None
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script>" not in text
    assert "Maths &amp; &lt;b&gt;jeux&lt;/b&gt;" in text


def test_sms_and_email_text_are_not_escaped() -> None:
    sms = render("workshop_invitation", "sms", "fr", event_title="Maths & <b>jeux</b>")
    text = render("workshop_invitation", "email_text", "fr", guardian_name="<script>x</script>")
    assert sms is not None and "Nous vous invitons à Maths & <b>jeux</b>." in sms
    assert text is not None and text.startswith("Bonjour <script>x</script>,")


def test_babel_knows_every_shipped_locale() -> None:
    for language in SHIPPED_LANGUAGES:
        assert Locale.parse(babel_locale(language)).character_order in {
            "left-to-right",
            "right-to-left",
        }


# --------------------------------------------------------------------------- answers, keywords


def _load_yaml(name: str) -> dict[str, Any]:
    with (LOCALES / name).open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    assert isinstance(data, dict)
    return data


def _all_strings(values: object, check: Callable[[str], bool]) -> bool:
    return isinstance(values, list) and bool(values) and all(
        isinstance(v, str) and check(v) for v in values
    )


def test_answers_cover_every_language_with_distinct_lower_case_synonyms() -> None:
    answers = _load_yaml("answers.yaml")
    assert {"en", *REQUIRED_LANGUAGES} <= set(answers)
    for language, canonical in answers.items():
        assert set(canonical) == {"yes", "no", "maybe"}, language
        owner: dict[str, str] = {}
        for answer, synonyms in canonical.items():
            assert _all_strings(synonyms, lambda s: s == s.lower() and s == s.strip()), (
                language,
                answer,
            )
            for synonym in synonyms:
                key = normalise(synonym)
                assert owner.get(key, answer) == answer, (language, synonym, owner.get(key))
                owner[key] = answer
    assert "sí" in answers["es"]["yes"] and "haa" in answers["so"]["yes"]
    assert "ndiyo" in answers["sw"]["yes"] and "हो" in answers["ne"]["yes"]


def test_keywords_cover_every_language_and_never_swallow_an_answer() -> None:
    keywords = _load_yaml("keywords.yaml")
    answers = _load_yaml("answers.yaml")
    assert set(REQUIRED_LANGUAGES) <= set(keywords)
    for language, lists in keywords.items():
        assert set(lists) == {"opt_out", "opt_out_all", "opt_in", "help", "opt_out_phrases"}, language
        for kind, words in lists.items():
            assert _all_strings(words, lambda s: s == s.lower() and s == s.strip()), (
                language,
                kind,
            )
        answer_words = {
            normalise(word) for synonyms in answers.get(language, {}).values() for word in synonyms
        }
        by_kind = {k: {normalise(w) for w in lists[k]} for k in ("opt_out", "opt_out_all", "opt_in", "help")}
        whole_words = set().union(*by_kind.values())
        assert not whole_words & answer_words, (language, whole_words & answer_words)
        # One word, one meaning: the unaccented spelling may repeat a word, never cross kinds.
        assert sum(len(words) for words in by_kind.values()) == len(whole_words), language
        for phrase in lists["opt_out_phrases"]:
            assert not any(normalise(phrase) in answer for answer in answer_words), phrase
    assert "ayuda" in keywords["es"]["help"] and "caawin" in keywords["so"]["help"]
    assert "no más mensajes" in keywords["es"]["opt_out_phrases"]
