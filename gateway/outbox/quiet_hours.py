"""Quiet hours: SMS and Telegram messages due inside the window wait for its end, in the
family's own time zone (``zoneinfo``, so daylight-saving changes are handled)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "QUIET_KINDS",
    "defer_for_quiet_hours",
    "defer_for_quiet_hours_everywhere",
    "in_quiet_hours",
    "quiet_hours_apply",
]

#: Built-in endpoint kinds quiet hours apply to (e-mail waits in the inbox anyway).
QUIET_KINDS = frozenset({"phone", "telegram"})


def quiet_hours_apply(channel: Any) -> bool:
    """Whether quiet hours hold back ``channel``'s messages: every channel that rings a phone
    (SMS, Telegram, WhatsApp, app push), not e-mail."""
    return channel.kind in QUIET_KINDS or channel.variant != "email"


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def in_quiet_hours(moment: datetime, timezone: str, start: time, end: time) -> bool:
    """Whether ``moment`` falls in the window in ``timezone`` (the window may cross midnight)."""
    local = moment.astimezone(_zone(timezone)).time()
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def defer_for_quiet_hours(moment: datetime, timezone: str, start: time, end: time) -> datetime:
    """``moment`` itself when allowed, else the window's end (local wall time), in UTC."""
    if not in_quiet_hours(moment, timezone, start, end):
        return moment
    zone = _zone(timezone)
    local = moment.astimezone(zone)
    day = local.date()
    if start > end and local.time() >= start:
        day = day + timedelta(days=1)
    resume = datetime.combine(day, end, tzinfo=zone)
    # A wall time inside a spring-forward gap does not exist: normalising through UTC moves
    # it forward by the gap, which is what a person would expect.
    return resume.astimezone(UTC)


def defer_for_quiet_hours_everywhere(
    moment: datetime, timezones: Iterable[str], start: time, end: time
) -> datetime:
    """The first moment at or after ``moment`` that is outside the window in *every* zone of
    ``timezones``: the most restrictive window, for a guardian whose time zone is unknown."""
    zones = sorted(set(timezones))
    for _ in range(4 * len(zones) + 4):
        later = moment
        for zone in zones:
            later = max(later, defer_for_quiet_hours(later, zone, start, end))
        if later == moment:
            return moment
        moment = later
    return moment
