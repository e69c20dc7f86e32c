"""Dates, times and numbers in the family's locale (Babel), as Jinja filters.

The filters read the language from the render context (``lang``), so one compiled template
serves every language."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from babel import dates, numbers
from babel.lists import format_list
from jinja2 import pass_context
from jinja2.runtime import Context

from gateway.domain.languages import babel_locale

__all__ = ["CONTEXT_FILTERS", "format_names", "locale_filters"]

#: CLDR puts (narrow) no-break spaces in times and numbers (``5:30\u202fPM``); neither is in
#: GSM-7, so one of them turns a whole English SMS into UCS-2 (twice the segments).
_PLAIN_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " "})


@lru_cache(maxsize=512)
def locale_filters(language: str) -> dict[str, Callable[..., str]]:
    """``date``, ``time``, ``datetime``, ``number`` filters bound to ``language``'s locale.

    Values are expected already in the family's time zone (aware datetimes keep their zone).
    """
    locale = babel_locale(language)

    def format_date(value: date | datetime, format: str = "full") -> str:
        if isinstance(value, datetime):
            value = value.date() if value.tzinfo is None else value
        return dates.format_date(value, format=format, locale=locale).translate(_PLAIN_SPACES)

    def format_time(value: datetime, format: str = "short") -> str:
        return dates.format_time(value, format=format, tzinfo=value.tzinfo, locale=locale).translate(
            _PLAIN_SPACES
        )

    def format_datetime(value: datetime, format: str = "medium") -> str:
        return dates.format_datetime(
            value, format=format, tzinfo=value.tzinfo, locale=locale
        ).translate(_PLAIN_SPACES)

    def format_number(value: Any) -> str:
        return numbers.format_decimal(value, locale=locale).translate(_PLAIN_SPACES)

    return {
        "date": format_date,
        "time": format_time,
        "datetime": format_datetime,
        "number": format_number,
    }


def format_names(names: Iterable[str], language: str) -> str:
    """``Ana, Luis y Sofía``: a list of names joined the way the language does it."""
    items = [n for n in names if n]
    if not items:
        return ""
    return format_list(items, locale=babel_locale(language))


def _language(ctx: Context) -> str:
    return str(ctx.get("lang") or "en")


@pass_context
def _date(ctx: Context, value: date | datetime, format: str = "full") -> str:
    return locale_filters(_language(ctx))["date"](value, format)


@pass_context
def _time(ctx: Context, value: datetime, format: str = "short") -> str:
    return locale_filters(_language(ctx))["time"](value, format)


@pass_context
def _datetime(ctx: Context, value: datetime, format: str = "medium") -> str:
    return locale_filters(_language(ctx))["datetime"](value, format)


@pass_context
def _number(ctx: Context, value: Any) -> str:
    return locale_filters(_language(ctx))["number"](value)


#: ``date``, ``time``, ``datetime`` and ``number`` in the language of the render context.
CONTEXT_FILTERS: dict[str, Callable[..., str]] = {
    "date": _date,
    "time": _time,
    "datetime": _datetime,
    "number": _number,
}
