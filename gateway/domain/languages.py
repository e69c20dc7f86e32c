"""Language codes: BCP 47 validation, suggestions for common mistakes, Babel locales, direction.

A family's language is stored as given (canonical case: ``es-MX``, ``zh-Hans``, ``prs``). For
catalogs, engines and word tables it is looked up from the most specific form to the least
(``es-MX`` → ``es``), through the script it is most likely written in when the tag names none
(CLDR's likely subtags: ``zh-CN`` and ``zh`` → ``zh-Hans``, ``zh-TW`` and ``zh-HK`` →
``zh-Hant``); for formatting it maps to the nearest locale Babel has (``prs`` → ``fa_AF``).
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from types import ModuleType

from babel import Locale, UnknownLocaleError
from babel.core import get_global

__all__ = [
    "LanguageError",
    "autonym",
    "babel_locale",
    "display_name",
    "fallback_chain",
    "is_rtl",
    "likely_script",
    "normalize_language",
]


def _langcodes() -> ModuleType:
    """``langcodes``, imported on first use: importing it builds its name tables (about 50 ms),
    which a worker that only sends never needs."""
    import langcodes

    return langcodes

#: Codes people write that are not languages, and what they most likely meant.
COMMON_MISTAKES: dict[str, str] = {
    "sp": "es",
    "spa": "es",
    "esp": "es",
    "vn": "vi",
    "cn": "zh-Hans",
    "ch": "zh-Hans",
    "jp": "ja",
    "kr": "ko",
    "gr": "el",
    "dk": "da",
    "se": "sv",
    "cz": "cs",
    "ua": "uk",
    "ir": "fa",
    "far": "fa",
    "dari": "prs",
    "sm": "so",
    "som": "so",
    "swa": "sw",
    "bur": "my",
    "nep": "ne",
    "fre": "fr",
    "ger": "de",
    "kh": "km",
    "hmn": "hmn",
}

#: Babel has no locale for these (or, for Hmong Daw, only one in a script few US families read:
#: CLDR writes ``mww`` in Nyiakeng Puachue, families in RPA Latin); format dates and numbers
#: with a close relative.
BABEL_ALIASES: dict[str, str] = {"prs": "fa_AF", "hmn": "en", "mww": "en", "kar": "my", "ctd": "my"}

RTL_LANGUAGES = frozenset({"ar", "fa", "prs", "ps", "ur", "he", "yi", "ckb", "dv", "sd", "ug"})


class LanguageError(ValueError):
    """An unknown language code, with a suggestion when one is likely."""


@lru_cache(maxsize=512)
def normalize_language(code: str) -> str:
    """Validate a BCP 47 tag and return it in canonical case; raise with a suggestion."""
    raw = code.strip()
    if not raw:
        raise LanguageError("language is empty")
    tag = raw.replace("_", "-")
    lowered = tag.lower()
    if lowered in COMMON_MISTAKES and COMMON_MISTAKES[lowered] != lowered:
        suggestion = COMMON_MISTAKES[lowered]
        raise LanguageError(
            f"unknown language code {raw!r}; did you mean {suggestion!r} ({display_name(suggestion)})?"
        )
    if not _langcodes().tag_is_valid(tag):
        raise LanguageError(_unknown_message(raw))
    language = _langcodes().Language.get(tag, normalize=False)
    if language.language is None:
        raise LanguageError(_unknown_message(raw))
    return str(language.to_tag())


def _unknown_message(raw: str) -> str:
    suggestion = _suggest(raw)
    hint = f"; did you mean {suggestion!r} ({display_name(suggestion)})?" if suggestion else ""
    return f"unknown language code {raw!r}{hint} (use a BCP 47 code such as es, so, zh-Hans)"


def _suggest(raw: str) -> str | None:
    try:
        found = _langcodes().find(raw)
        return str(found.to_tag())
    except LookupError:
        pass
    names = {Locale("en").languages.get(c, ""): c for c in Locale("en").languages}
    match = difflib.get_close_matches(raw.title(), [n for n in names if n], n=1, cutoff=0.8)
    return names[match[0]] if match else None


@lru_cache(maxsize=512)
def display_name(code: str, in_language: str = "en") -> str:
    """Name of a language tag, in English unless ``in_language`` says otherwise
    (``so`` → ``Somali``; in ``es``, ``somalí``)."""
    try:
        return str(_langcodes().Language.get(code, normalize=False).display_name(in_language or "en"))
    except (ValueError, LookupError):
        return code


@lru_cache(maxsize=512)
def autonym(code: str) -> str:
    """A language's name in that language (``es`` → ``español``), for choosing one's own."""
    try:
        return str(_langcodes().Language.get(code, normalize=False).autonym())
    except (ValueError, LookupError):
        return display_name(code)


@lru_cache(maxsize=512)
def likely_script(code: str) -> str | None:
    """The script a tag that names none is most likely written in (CLDR's likely subtags, by
    language and region, then by language): ``zh-CN`` → ``Hans``, ``zh-TW`` → ``Hant``,
    ``pa-PK`` → ``Arab``. None when the tag names its script or CLDR does not know it."""
    language, *subtags = code.split("-")
    if subtags and len(subtags[0]) == 4 and subtags[0].isalpha():
        return None
    region = next((s.upper() for s in subtags if len(s) == 2 or (len(s) == 3 and s.isdigit())), None)
    likely = get_global("likely_subtags")
    for key in (f"{language.lower()}_{region}", language.lower()) if region else (language.lower(),):
        found = likely.get(key)
        if found:
            subtags = found.split("_")
            return subtags[1] if len(subtags) > 1 and len(subtags[1]) == 4 else None
    return None


@lru_cache(maxsize=512)
def fallback_chain(code: str) -> tuple[str, ...]:
    """Most to least specific forms of a tag: ``zh-Hans-CN`` → (``zh-Hans-CN``, ``zh-Hans``, ``zh``).
    A tag without a script goes through its likely script before the bare language:
    ``zh-CN`` → (``zh-CN``, ``zh-Hans-CN``, ``zh-Hans``, ``zh``) — so a family recorded as
    ``zh-CN`` reads the Simplified Chinese catalog, and one recorded as ``zh-TW`` never does."""
    parts = code.split("-")
    chain = ["-".join(parts[:i]) for i in range(len(parts), 0, -1)]
    script = likely_script(code)
    if script is not None:
        scripted = [parts[0], script, *parts[1:]]
        chain[1:1] = ["-".join(scripted[:i]) for i in range(len(scripted), 1, -1)]
    return tuple(dict.fromkeys(chain))


@lru_cache(maxsize=512)
def _closest_locale(code: str) -> Locale | None:
    """The closest Babel locale for a language tag, None when Babel has nothing close."""
    for candidate in fallback_chain(code):
        alias = BABEL_ALIASES.get(candidate)
        try:
            return Locale.parse(alias or candidate, sep="_" if alias else "-")
        except (UnknownLocaleError, ValueError):
            continue
    return None


def _names_dates(locale: Locale) -> bool:
    """Whether CLDR gives ``locale`` its own month and weekday names. Some locales (Haitian
    Creole, Rohingya, Dhivehi...) have only CLDR's placeholders: "M12" for December and the
    English "Mon", which would read "2026 M12 14, Mon"."""
    months = locale.months.get("format", {}).get("wide", {})
    days = locale.days.get("format", {}).get("wide", {})
    return months.get(1) not in (None, "M01") and days.get(0) not in (None, "Mon")


@lru_cache(maxsize=512)
def babel_locale(code: str) -> Locale:
    """The Babel locale that formats dates and numbers for a language tag: the closest one
    that names months and weekdays itself, else English (the source language's dates read
    better than placeholders)."""
    found = _closest_locale(code)
    if found is not None and (found.language == "en" or _names_dates(found)):
        return found
    return Locale.parse("en")


@lru_cache(maxsize=512)
def is_rtl(code: str) -> bool:
    """Whether the language is written right to left."""
    base = code.split("-")[0].lower()
    if base in RTL_LANGUAGES:
        return True
    found = _closest_locale(code)
    return found is not None and found.character_order == "right-to-left"
