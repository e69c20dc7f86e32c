"""The compose form: its fields → an event and a broadcast, and the preview shown before sending
(every audience language side by side, text sources, SMS segments, estimated cost and duration)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from gateway.broadcasts import preview_template
from gateway.config import format_validation_error
from gateway.domain.events import EventSpec
from gateway.domain.languages import display_name, is_rtl
from gateway.rendering.composer import RECEIVED_LABELS, what_families_got
from gateway.web.queries import audience_breakdown

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["ComposeForm", "build_preview", "parse_compose", "parse_local_time"]

EVENT_TEMPLATES = ("workshop_invitation", "event_reminder")


@dataclass
class ComposeForm:
    """What the liaison typed, kept to refill the form."""

    values: dict[str, Any]
    channels: list[str]
    errors: list[str] = field(default_factory=list)
    event: EventSpec | None = None
    send_at: datetime | None = None


def parse_local_time(value: str, zone: str) -> datetime | None:
    """A ``datetime-local`` value (``2027-03-04T17:30``) read in time zone ``zone``."""
    value = (value or "").strip()
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-").lower()
    return slug[:60] or "event"


def parse_compose(form: dict[str, Any], channel_names: list[str]) -> ComposeForm:
    """Validate the compose form into an :class:`EventSpec` and a send time."""
    values = {k: (v.strip() if isinstance(v, str) else v) for k, v in form.items()}
    chosen = [c for c in channel_names if values.get(f"channel_{c}")]
    result = ComposeForm(values=values, channels=chosen or list(channel_names))
    zone = values.get("timezone") or "America/Chicago"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        result.errors.append(f"Time zone: unknown time zone {zone!r}")
        return result
    try:
        start = parse_local_time(values.get("start", ""), zone)
        end = parse_local_time(values.get("end", ""), zone)
        result.send_at = (
            parse_local_time(values.get("at", ""), zone) if values.get("when") == "later" else None
        )
    except ValueError as exc:
        result.errors.append(f"Date and time: {exc}")
        return result
    if values.get("when") == "later" and result.send_at is None:
        result.errors.append("Schedule: choose a date and time, or send now")
    if start is None:
        result.errors.append("Start: required")
        return result
    title = values.get("title") or ""
    reminders = [r.strip() for r in (values.get("reminders") or "").split(",") if r.strip()]
    data = {
        "id": values.get("event_id") or f"{_slug(title)}-{start.date().isoformat()}",
        "title": title,
        "description": values.get("description") or "",
        "school": values.get("school") or None,
        "place": values.get("place") or None,
        "address": values.get("address") or None,
        "start": start,
        "end": end,
        "timezone": zone,
        "audience": values.get("audience") or "",
        "rsvp": bool(values.get("rsvp")),
        "reminders": reminders,
        "url": values.get("url") or None,
    }
    try:
        result.event = EventSpec.model_validate(data)
    except ValidationError as exc:
        result.errors.extend(format_validation_error(exc, "event").split("\n"))
    if values.get("policy", "preferred") not in ("preferred", "all"):
        result.errors.append("Channel policy: preferred or all")
    return result


async def build_preview(
    gw: Gateway,
    template: str,
    event: EventSpec,
    audience: str,
    channels: list[str],
    policy: str,
    scope: list[str] | None,
) -> dict[str, Any]:
    """Who it reaches and how each audience language reads, before anything is written."""
    breakdown = await audience_breakdown(gw, audience, channels, policy, scope)
    languages = list(breakdown["by_language"]) or ["en"]
    renders = await preview_template(
        gw,
        template,
        None,
        languages,
        channels,
        event_spec=event,
        audience=audience,
        policy=policy,
        school_scope=scope,
    )
    used = {(c["language"], c["channel"]): c["messages"] for c in breakdown["cells"]}
    by_language: dict[str, dict[str, Any]] = {}
    cost = 0.0
    segments = 0
    units: dict[str, float] = {}
    for item in renders:
        language, channel = item["language"], item["channel"]
        count = used.get((language, channel), 0)
        if breakdown["cells"] and not count:
            continue
        entry = by_language.setdefault(
            language,
            {
                "language": language,
                "name": display_name(language),
                "rtl": is_rtl(language),
                "received": item["received"],
                "sources": {"template": {}, "text": {}},
                "messages": breakdown["by_language"].get(language, 0),
                "cards": [],
            },
        )
        entry["received"] = _worst(entry["received"], item["received"])
        for kind, counts in item["sources"].items():
            for origin, n in counts.items():
                entry["sources"][kind][origin] = entry["sources"][kind].get(origin, 0) + n
        details = item.get("details") or {}
        entry["cards"].append(
            {
                "channel": channel,
                "variant": item["variant"],
                "messages": count,
                "subject": item.get("subject"),
                "body": item["body"],
                "details": details,
                "received": item["received"],
            }
        )
        cost += count * float(details.get("estimated_cost") or 0)
        segments += count * int(details.get("segments") or 0)
        units[channel] = units.get(channel, 0) + count * int(details.get("segments") or 1)
    duration = 0.0
    for channel, amount in units.items():
        rate = gw.channel(channel).rate_per_second
        if rate:
            duration = max(duration, amount / rate)
    return {
        "breakdown": breakdown,
        "languages": list(by_language.values()),
        "estimated_cost": round(cost, 4),
        "sms_segments": segments,
        "estimated_seconds": round(duration, 1),
    }


_SEVERITY = ["source", "reviewed", "machine", "english", "held"]


def _worst(a: str, b: str) -> str:
    """Of two ``received`` words, the one that says less translation happened."""
    return max(a, b, key=_SEVERITY.index)


def text_source(entry: dict[str, Any]) -> str:
    """What the families of one language read, in plain words: the template's wording and the
    liaison's own text (title, description) each."""
    parts = []
    for kind, label in (("template", "wording"), ("text", "your text")):
        origins = entry["sources"].get(kind) or {}
        if origins:
            parts.append(f"{label}: {RECEIVED_LABELS[what_families_got(origins)]}")
    return "; ".join(parts) or RECEIVED_LABELS[entry["received"]]
