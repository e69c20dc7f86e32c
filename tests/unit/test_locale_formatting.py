"""Dates and numbers in a family's locale — and, where CLDR has no month or weekday names for
the language (only its "M12" / "Mon" placeholders), in English, never half-formatted."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from babel import localedata

from gateway.domain.languages import babel_locale, is_rtl
from gateway.rendering.formatting import locale_filters

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
