"""``channels.<name>`` keys of a ``whatsapp`` channel, validated at start like every channel's:
an unknown key or a malformed value fails with its key path (``channels.whatsapp.templates.
default.es.content_sid``)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from gateway import ChannelSettings

from .addresses import PREFIX

__all__ = [
    "CONTENT_SID",
    "MAX_QUICK_REPLY_BUTTONS",
    "VARIABLE_SOURCES",
    "TemplateRef",
    "WhatsAppSettings",
]

CONTENT_SID = r"^HX[0-9a-fA-F]{32}$"
"""A Content Template's SID."""

#: Buttons an in-session ``twilio/quick-reply`` may carry without WhatsApp's approval.
MAX_QUICK_REPLY_BUTTONS = 3

#: Where a template variable's value comes from (``metadata.<key>`` is also accepted).
VARIABLE_SOURCES = ("body", "first_line", "subject")

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class TemplateRef(BaseModel):
    """One approved WhatsApp template in one language: its Content SID and how each of its
    variables is filled."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    content_sid: str = Field(pattern=CONTENT_SID, description="HX… SID of the approved template.")
    variables: dict[str, str] = Field(
        default_factory=dict,
        description="Template variable ('1', '2'…) → body, first_line, subject or "
        "metadata.<key> of the message.",
    )

    @field_validator("variables")
    @classmethod
    def _check_variables(cls, value: dict[str, str]) -> dict[str, str]:
        for name, source in value.items():
            if not re.fullmatch(r"[A-Za-z0-9_]{1,32}", name):
                raise ValueError(f"variable name {name!r}: letters, digits or _ (e.g. '1')")
            if source not in VARIABLE_SOURCES and not re.fullmatch(
                r"metadata\.[A-Za-z0-9_]{1,64}", source
            ):
                raise ValueError(
                    f"variable {name!r}: unknown source {source!r} (one of "
                    f"{', '.join(VARIABLE_SOURCES)} or metadata.<key>)"
                )
        return value


QuickReplySid = Annotated[str, Field(pattern=CONTENT_SID)]


class WhatsAppSettings(ChannelSettings):
    """``channels.<name>`` keys of a ``whatsapp`` channel (Twilio's WhatsApp sender)."""

    plugin: str = "whatsapp"
    account_sid: str = Field(pattern=r"^AC[0-9A-Za-z]+$", description="Twilio Account SID.")
    auth_token: SecretStr = Field(description="Twilio Auth Token (also signs webhooks).")
    from_number: str | None = Field(
        default=None,
        description="The WhatsApp sender: its E.164 number, with or without 'whatsapp:'.",
    )
    messaging_service_sid: str | None = Field(
        default=None, pattern=r"^MG[0-9A-Za-z]+$",
        description="Send through this Messaging Service (holding the WhatsApp sender).",
    )
    api_base_url: str = Field(
        default="https://api.twilio.com", description="Twilio REST API base URL."
    )
    max_queue_hours: float | None = Field(
        default=4, gt=0,
        description="Refuse broadcasts that would take longer than this at rate_per_second "
        "(Twilio fails WhatsApp messages queued longer than 4 hours).",
    )
    status_callback: bool = Field(
        default=True, description="Ask Twilio for delivery and read reports at "
        "/webhooks/<name>/status."
    )
    timeout: float = Field(default=15.0, gt=0, le=300, description="Seconds per API request.")
    window_hours: float = Field(
        default=24.0, gt=0, le=24,
        description="WhatsApp's customer-service window after a family's last message.",
    )
    window_margin_minutes: float = Field(
        default=10.0, ge=0, le=120,
        description="Treat the window as closed this long before it really closes, so a "
        "free-form message never arrives just after it did.",
    )
    templates: dict[str, dict[str, TemplateRef]] = Field(
        default_factory=dict,
        description="Approved templates for outside the window: gateway template name (or "
        "'default') → language → {content_sid, variables}.",
    )
    quick_replies: dict[int, QuickReplySid] = Field(
        default_factory=dict,
        description="In-session twilio/quick-reply Content SIDs by number of buttons (1-3); "
        "variables: 1 = text, then title and id of each button (2, 3; 4, 5; 6, 7).",
    )

    @field_validator("from_number")
    @classmethod
    def _check_sender(cls, value: str | None) -> str | None:
        if value is None:
            return None
        number = value.strip()
        if number.lower().startswith(PREFIX):
            number = number[len(PREFIX):].strip()
        if not _E164.match(number):
            raise ValueError("must be the WhatsApp sender's E.164 number, e.g. "
                             "whatsapp:+18165550100")
        return PREFIX + number

    @field_validator("api_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as https://api.twilio.com")
        return value.rstrip("/")

    @field_validator("templates")
    @classmethod
    def _check_languages(
        cls, value: dict[str, dict[str, TemplateRef]]
    ) -> dict[str, dict[str, TemplateRef]]:
        for name, languages in value.items():
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", name):
                raise ValueError(f"template name {name!r}: a gateway template name or 'default'")
            for language in languages:
                if not _LANGUAGE.match(language):
                    raise ValueError(f"{name}: {language!r} is not a language code (es, zh-Hans)")
        return value

    @field_validator("quick_replies")
    @classmethod
    def _check_button_counts(cls, value: dict[int, str]) -> dict[int, str]:
        for count in value:
            if not 1 <= count <= MAX_QUICK_REPLY_BUTTONS:
                raise ValueError(
                    f"{count} buttons: an in-session quick reply has 1 to "
                    f"{MAX_QUICK_REPLY_BUTTONS} buttons"
                )
        return value

    @model_validator(mode="after")
    def _exactly_one_sender(self) -> WhatsAppSettings:
        if (self.from_number is None) == (self.messaging_service_sid is None):
            raise ValueError("set exactly one of from_number or messaging_service_sid")
        if self.window_margin_minutes >= self.window_hours * 60:
            raise ValueError("window_margin_minutes must be shorter than the window")
        return self
