"""Survey files (YAML): questions (choice, yes/no, rating, free text), branching, reminders.

``next`` maps an answer value to the next question id (``default`` for the rest, ``end`` to
finish); without it the following question comes next. A question marked ``rsvp: true`` in a
survey tied to an event counts its yes / no / maybe answers as the event's RSVPs.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.config import format_validation_error
from gateway.domain.events import parse_duration
from gateway.errors import ConfigError

__all__ = ["Choice", "Question", "SurveySpec", "load_survey", "rsvp_survey"]

END = "end"


class Choice(BaseModel):
    """One answer of a choice question."""

    model_config = ConfigDict(extra="forbid")
    value: str
    label: str
    synonyms: list[str] = Field(default_factory=list)

    @field_validator("value", "label", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        if isinstance(value, bool):  # YAML 1.1 read an unquoted yes/no
            return "yes" if value else "no"
        return value


class Question(BaseModel):
    """A survey question."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    type: Literal["choice", "yesno", "rating", "text"] = "choice"
    text: str = Field(min_length=1)
    choices: list[Choice] = Field(default_factory=list)
    next: dict[str, str] | str | None = None
    optional: bool = False
    rsvp: bool = False

    @field_validator("next", mode="before")
    @classmethod
    def _next(cls, value: object) -> object:
        if isinstance(value, dict):
            return {
                ("yes" if k is True else "no" if k is False else str(k)): str(v) for k, v in value.items()
            }
        return value

    @model_validator(mode="after")
    def _choices(self) -> Question:
        if self.type == "yesno" and not self.choices:
            self.choices = [
                Choice(value="yes", label="Yes", synonyms=["yes", "y"]),
                Choice(value="no", label="No", synonyms=["no", "n"]),
            ]
            if self.rsvp:
                self.choices.append(Choice(value="maybe", label="Maybe", synonyms=["maybe"]))
        if self.type == "rating" and not self.choices:
            self.choices = [Choice(value=str(i), label=str(i)) for i in range(1, 6)]
        if self.type == "choice" and not self.choices:
            raise ValueError("a choice question needs choices")
        values = [c.value for c in self.choices]
        if len(values) != len(set(values)):
            raise ValueError("choice values must be unique")
        return self


class SurveySpec(BaseModel):
    """A survey as written in a survey file."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    title: str = ""
    audience: str = ""
    event: str | None = None
    questions: list[Question] = Field(min_length=1)
    remind_unanswered_after: str | None = None
    close_at: datetime | None = None
    closing_message: str | None = None

    @field_validator("close_at")
    @classmethod
    def _offset(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("add a UTC offset, e.g. 2027-03-01T17:00:00-06:00")
        return value

    @field_validator("remind_unanswered_after")
    @classmethod
    def _delay(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _links(self) -> SurveySpec:
        ids = [q.id for q in self.questions]
        if len(ids) != len(set(ids)):
            raise ValueError("question ids must be unique")
        for q in self.questions:
            targets = q.next.values() if isinstance(q.next, dict) else [q.next] if q.next else []
            for target in targets:
                if target != END and target not in ids:
                    raise ValueError(f"question {q.id!r}: next goes to unknown question {target!r}")
            if isinstance(q.next, dict):
                values = {c.value for c in q.choices}
                for key in q.next:
                    if key != "default" and q.type != "text" and key not in values:
                        raise ValueError(f"question {q.id!r}: next names unknown answer {key!r}")
        return self

    def question(self, question_id: str) -> Question:
        """A question by id."""
        for q in self.questions:
            if q.id == question_id:
                return q
        raise KeyError(question_id)

    def next_question(self, question_id: str, value: str) -> Question | None:
        """Where an answer leads: the next question, or None at the end."""
        q = self.question(question_id)
        target: str | None = None
        if isinstance(q.next, dict):
            target = q.next.get(value) or q.next.get("default")
        elif isinstance(q.next, str):
            target = q.next
        if target == END:
            return None
        if target:
            return self.question(target)
        index = self.questions.index(q)
        return self.questions[index + 1] if index + 1 < len(self.questions) else None


def load_survey(path: Path) -> SurveySpec:
    """Read and validate a survey file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such survey file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a survey file is a mapping (id, questions...)")
    try:
        return SurveySpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None


def rsvp_survey(event_id: str, title: str) -> SurveySpec:
    """The implicit one-question survey behind an event invitation with ``rsvp: true``."""
    return SurveySpec(
        id=f"rsvp-{event_id}",
        title=title,
        event=event_id,
        questions=[Question(id="rsvp", type="yesno", text=title, rsvp=True)],
    )
