"""Event files (YAML): a workshop or school event, its audience, RSVP and reminder offsets."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.config import format_validation_error
from gateway.errors import ConfigError

__all__ = ["Contact", "EventSpec", "load_event", "parse_duration", "upcoming_event_file"]

_DURATION = re.compile(r"^\s*(\d+)\s*(w|d|h|m)\s*$", re.IGNORECASE)
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}


def parse_duration(value: str) -> timedelta:
    """``7d``, ``2h``, ``30m``, ``1w`` → timedelta."""
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration like 7d, 2h or 30m")
    return timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})


class Contact(BaseModel):
    """Who families can ask about the event."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    phone: str | None = None
    email: str | None = None


class EventSpec(BaseModel):
    """An event as written in an event file."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    title: str = Field(min_length=1, max_length=150)
    description: str = Field(default="", max_length=2000)
    school: str | None = None
    place: str = Field(min_length=1, max_length=200)
    """Where families go (required: every invitation, reminder and confirmation says it)."""
    address: str | None = Field(default=None, max_length=200)
    start: datetime
    end: datetime | None = None
    timezone: str = "America/Chicago"
    audience: str = ""
    rsvp: bool = False
    reminders: list[str] = Field(default_factory=list)
    contact: Contact = Field(default_factory=Contact)
    url: str | None = None

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2027-03-04T17:30:00-06:00")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("reminders")
    @classmethod
    def _offsets(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_duration(item)
        return value

    @model_validator(mode="after")
    def _order(self) -> EventSpec:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def moved_to(self, day: date) -> EventSpec:
        """The same event on ``day``, at the same local time of day in its time zone (the end
        keeps the event's length). The demo and the tests use it to keep an example upcoming."""
        zone = ZoneInfo(self.timezone)
        local = self.start.astimezone(zone)
        start = datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=zone)
        end = start + (self.end - self.start) if self.end is not None else None
        return self.model_copy(update={"start": start, "end": end})

    def template_context(self) -> dict[str, Any]:
        """The untranslated event as templates see it."""
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "place": self.place,
            "address": self.address,
            "start": self.start,
            "end": self.end,
            "url": self.url,
            "contact": self.contact.model_dump(),
            "rsvp": self.rsvp,
            "school": self.school,
        }


def load_event(path: Path) -> EventSpec:
    """Read and validate an event file; errors name the file and the field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such event file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: an event file is a mapping (id, title, start...)")
    try:
        return EventSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None


def upcoming_event_file(
    source: Path, target: Path, days_ahead: int = 14, now: datetime | None = None
) -> Path:
    """Copy the event file ``source`` to ``target`` moved ``days_ahead`` days after today (in the
    event's time zone), so an example never turns into an event in the past."""
    spec = load_event(source)
    today = (now or datetime.now(ZoneInfo(spec.timezone))).astimezone(ZoneInfo(spec.timezone)).date()
    moved = spec.moved_to(today + timedelta(days=days_ahead))
    data = moved.model_dump(mode="json", exclude_none=True)
    target.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target
