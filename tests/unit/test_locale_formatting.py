"""Dates and numbers in a family's locale — and, where CLDR has no month or weekday names for
the language (only its "M12" / "Mon" placeholders), in English, never half-formatted; and
language tags looked up through the script they are most likely written in."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from babel import localedata

from gateway.domain.languages import LanguageError, babel_locale, fallback_chain, is_rtl, normalize_language
from gateway.rendering.formatting import locale_filters
from gateway.resources import SHIPPED_LOCALES
from gateway.translation.catalogs import CatalogSet

WHEN = datetime(2026, 12, 14, 17, 30, tzinfo=ZoneInfo("America/Chicago"))
PLACEHOLDERS = ("M12", "Mon")


@pytest.mark.parametrize(
    ("language", "december"),
    [
        ("es", "diciembre"),
        ("so", "Diseembar"),
        ("rw", "Ukuboza"),
        ("uk", "грудня"),
        ("ti", "ታሕሳስ"),
        ("zh-Hant", "12月"),
        ("prs", "دسمبر"),  # Dari through Babel's Persian of Afghanistan
        ("pt-BR", "dezembro"),
        ("ne", "डिसेम्बर"),
    ],
)
def test_dates_read_in_the_familys_language(language: str, december: str) -> None:
    date = locale_filters(language)["date"](WHEN)
    assert december in date, date


@pytest.mark.parametrize("language", ["ht", "ht-HT", "rhg", "dv", "az-Arab", "mww", "hmn", "xx-unknown"])
def test_without_cldr_date_names_dates_read_in_english(language: str) -> None:
    filters = locale_filters(language)
    assert filters["date"](WHEN) == "Monday, December 14, 2026"
    assert filters["time"](WHEN) == "5:30 PM"
    assert not any(p in filters["datetime"](WHEN).split() for p in PLACEHOLDERS)


def test_no_babel_locale_formats_a_placeholder_month() -> None:
    # Every locale Babel ships, not only the languages above: none gives a family "M12".
    for identifier in localedata.locale_identifiers():
        tag = identifier.replace("_", "-")
        locale = babel_locale(tag)
        assert locale.months["format"]["wide"][12] != "M12", (tag, locale)
        assert locale.days["format"]["wide"][0] != "Mon" or locale.language == "en", (tag, locale)


def test_direction_does_not_follow_the_date_fallback() -> None:
    # English dates, but the language is still written right to left.
    assert is_rtl("dv") and is_rtl("rhg") and is_rtl("prs") and is_rtl("ar")
    assert not is_rtl("ht") and not is_rtl("mww")


@pytest.mark.parametrize(
    ("tag", "chain"),
    [
        ("zh-CN", ("zh-CN", "zh-Hans-CN", "zh-Hans", "zh")),
        ("zh-SG", ("zh-SG", "zh-Hans-SG", "zh-Hans", "zh")),
        ("zh-TW", ("zh-TW", "zh-Hant-TW", "zh-Hant", "zh")),
        ("zh-HK", ("zh-HK", "zh-Hant-HK", "zh-Hant", "zh")),
        ("zh", ("zh", "zh-Hans")),
        ("zh-Hant-TW", ("zh-Hant-TW", "zh-Hant", "zh")),  # names its script: nothing added
        ("pa-PK", ("pa-PK", "pa-Arab-PK", "pa-Arab", "pa")),
        ("sr", ("sr", "sr-Cyrl")),
        ("prs", ("prs",)),  # CLDR knows no likely script for it: as before
    ],
)
def test_lookups_go_through_the_likely_script(tag: str, chain: tuple[str, ...]) -> None:
    assert fallback_chain(tag) == chain


def test_region_tags_find_the_catalog_of_their_script() -> None:
    catalogs = CatalogSet(SHIPPED_LOCALES)
    for tag in ("zh", "zh-CN", "zh-SG", "zh-Hans", "zh-Hans-CN"):
        assert catalogs.catalog_language(tag) == "zh-Hans", tag
    for tag in ("zh-TW", "zh-HK", "zh-MO", "zh-Hant"):
        assert catalogs.catalog_language(tag) is None, tag  # never the Simplified catalog
    assert catalogs.catalog_language("es-MX") == "es" and catalogs.catalog_language("so-SO") == "so"


def test_region_tags_are_valid_language_codes() -> None:
    assert normalize_language("zh-cn") == "zh-CN" and normalize_language("zh-TW") == "zh-TW"
    with pytest.raises(LanguageError, match="did you mean 'zh-Hans'"):
        normalize_language("cn")
