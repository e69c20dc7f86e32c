"""The compose form: its fields → an event and a broadcast, and the preview shown before sending
(every audience language side by side, text sources, SMS segments, estimated cost and duration)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from gateway.broadcasts import preview_survey, preview_template
from gateway.domain.events import EventSpec
from gateway.domain.languages import display_name, is_rtl
from gateway.domain.surveys import SurveySpec
from gateway.rendering.composer import RECEIVED_LABELS, RECEIVED_SEVERITY, what_families_got
from gateway.web.queries import audience_breakdown

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["LIMITS", "ComposeForm", "build_preview", "parse_compose", "parse_local_time"]

EVENT_TEMPLATES = ("workshop_invitation", "event_reminder")
MESSAGE_TEMPLATES = ("announcement",)
#: Longest text each field takes (a title or an SMS body beyond these helps no family).
LIMITS = {
    "title": 150,
    "description": 2000,
    "place": 200,
    "address": 200,
    "body": 1600,
    "link": 500,
    "reminders": 100,
}


@dataclass
class ComposeForm:
    """What the liaison typed, kept to refill the form, and what is wrong with it, per field."""

    values: dict[str, Any]
    channels: list[str]
    errors: dict[str, str] = field(default_factory=dict)
    event: EventSpec | None = None
    message: dict[str, Any] | None = None
    """An announcement's context: title, body, link (free text; attachment added later)."""
    send_at: datetime | None = None
    gettext: Callable[..., str] = field(
        default=lambda message, **params: message % params if params else message
    )

    """Translates a problem into the staff member's interface language."""

    @property
    def error_list(self) -> list[str]:
        """The errors as sentences (for the summary at the top of the form)."""
        return list(self.errors.values())

    def fail(self, name: str, message: str, **params: Any) -> None:
        """Record the first problem of a field (``message`` is a msgid of the interface catalog,
        with ``%(name)s`` params)."""
        if name not in self.errors:
            self.errors[name] = self.gettext(message, **params)


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


def N_(message: str) -> str:  # the gettext convention, for extraction
    """Mark an interface string for extraction (translated where it is shown)."""
    return message


#: Field names as the form labels them (interface catalog msgids).
FIELD_LABELS = {
    "title": N_("Title"),
    "description": N_("Description"),
    "place": N_("Place"),
    "address": N_("Address"),
    "body": N_("Message"),
    "link": N_("Link"),
    "reminders": N_("Reminders"),
    "start": N_("Starts"),
    "end": N_("Ends"),
    "timezone": N_("Time zone"),
    "school": N_("School"),
    "url": N_("Link"),
}


def parse_compose(
    form: dict[str, Any],
    channel_names: list[str],
    now: datetime | None = None,
    gettext: Callable[..., str] | None = None,
) -> ComposeForm:
    """Validate the compose form before anything is written: every problem is reported next to
    its field, in plain words (in the staff member's language with ``gettext``). Empty optional
    fields are left out of the message."""
    values = {k: (v.strip() if isinstance(v, str) else v) for k, v in form.items()}
    chosen = [c for c in channel_names if values.get(f"channel_{c}")]
    result = ComposeForm(values=values, channels=chosen)
    if gettext is not None:
        result.gettext = gettext
    _ = result.gettext
    now = now or datetime.now(UTC)
    template = values.get("template") or "workshop_invitation"
    if template not in (*EVENT_TEMPLATES, *MESSAGE_TEMPLATES):
        names = ", ".join((*EVENT_TEMPLATES, *MESSAGE_TEMPLATES))
        result.fail("template", N_("Template: choose one of %(names)s"), names=names)
    if not chosen:
        result.fail("channels", N_("Channels: choose at least one channel"))
    for name, limit in LIMITS.items():
        text = values.get(name) or ""
        if len(text) > limit:
            result.fail(
                name,
                N_("%(field)s: at most %(limit)s characters (now %(count)s)"),
                field=_(FIELD_LABELS[name]),
                limit=limit,
                count=len(text),
            )
    zone = values.get("timezone") or "America/Chicago"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        result.fail("timezone", N_("Time zone: unknown time zone %(zone)s"), zone=repr(zone))
        return result
    when_later = values.get("when") == "later"
    try:
        result.send_at = parse_local_time(values.get("at", ""), zone) if when_later else None
    except ValueError:
        result.fail("at", N_("Send at: not a date and time"))
    if when_later and result.send_at is None and "at" not in result.errors:
        result.fail("at", N_("Send at: choose a date and time, or send now"))
    if result.send_at is not None and result.send_at <= now:
        result.fail("at", N_("Send at: this time has passed"))
    if values.get("policy", "preferred") not in ("preferred", "all"):
        result.fail("policy", N_("Channel policy: preferred or all"))
    if template in MESSAGE_TEMPLATES:
        _parse_message(values, result)
    else:
        _parse_event(values, result, zone, now)
    return result


def _parse_message(values: dict[str, Any], result: ComposeForm) -> None:
    title, body, link = values.get("title") or "", values.get("body") or "", values.get("link") or ""
    if not title:
        result.fail("title", N_("Title: required"))
    if not body:
        result.fail("body", N_("Message: required"))
    if link and not re.match(r"^https?://[^\s/$.?#].[^\s]*$", link, re.IGNORECASE):
        result.fail("link", N_("Link: a web address starting with http:// or https://"))
    result.message = {"title": title, "body": body, "link": link or None}


def _parse_event(values: dict[str, Any], result: ComposeForm, zone: str, now: datetime) -> None:
    try:
        start = parse_local_time(values.get("start", ""), zone)
    except ValueError:
        result.fail("start", N_("Starts: not a date and time"))
        return
    try:
        end = parse_local_time(values.get("end", ""), zone)
    except ValueError:
        result.fail("end", N_("Ends: not a date and time"))
        end = None
    title = values.get("title") or ""
    if not title:
        result.fail("title", N_("Event title: required"))
    if not values.get("place"):
        result.fail("place", N_("Place: required (families need to know where to go)"))
    if start is None:
        result.fail("start", N_("Starts: required"))
        return
    if start <= now:
        result.fail("start", N_("Starts: this date is in the past; invitations go only to future events"))
    if end is not None and end <= start:
        result.fail("end", N_("Ends: must be after the start"))
    if result.send_at is not None and result.send_at >= start:
        result.fail("at", N_("Send at: after the event starts; families would be invited too late"))
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
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "form"
            label = result.gettext(FIELD_LABELS.get(name, name.capitalize()))
            if error["type"] == "string_too_short":
                result.fail(name, N_("%(field)s: required"), field=label)
            elif error["type"] == "string_too_long":
                limit = error["ctx"]["max_length"]
                result.fail(name, N_("%(field)s: at most %(limit)s characters"), field=label, limit=limit)
            else:
                reason = error["msg"].removeprefix("Value error, ")
                result.fail(name, N_("%(field)s: %(reason)s"), field=label, reason=reason)


async def build_preview(
    gw: Gateway,
    template: str,
    event: EventSpec | None,
    audience: str,
    channels: list[str],
    policy: str,
    scope: list[str] | None,
    context: dict[str, Any] | None = None,
    survey: SurveySpec | None = None,
    send_at: datetime | None = None,
    urgent: bool = False,
) -> dict[str, Any]:
    """Who it reaches and how each audience language reads, before anything is written (a
    survey: its first question), and how many messages quiet hours hold back if it goes at
    ``send_at`` (now when None)."""
    breakdown = await audience_breakdown(gw, audience, channels, policy, scope, send_at, urgent)
    languages = list(breakdown["by_language"]) or ["en"]
    if survey is not None:
        renders = await preview_survey(gw, survey, languages, channels, audience, scope)
    else:
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
            context=context,
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


def _worst(a: str, b: str) -> str:
    """Of two ``received`` words, the one that says less translation happened."""
    return max(a, b, key=RECEIVED_SEVERITY.index)


def text_source(entry: dict[str, Any], gettext: Callable[..., str] | None = None) -> str:
    """What the families of one language read, in plain words: the template's wording and the
    liaison's own text (title, description) each (in the interface language with ``gettext``)."""
    _ = gettext or (lambda message: message)
    parts = []
    for kind, label in (("template", "wording"), ("text", "your text")):
        origins = entry["sources"].get(kind) or {}
        if origins:
            received = what_families_got(origins)
            if received == "english" and entry["received"] == "english_only":
                received = "english_only"  # the note these families read is English too
            parts.append(f"{_(label)}: {_(RECEIVED_LABELS[received])}")
    return "; ".join(parts) or _(RECEIVED_LABELS[entry["received"]])
