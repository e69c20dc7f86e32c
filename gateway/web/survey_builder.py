"""The survey builder's form and the survey file format, both ways.

A liaison builds a survey in the web app; what the form holds is exactly a
:class:`~gateway.domain.surveys.SurveySpec` — the same survey the YAML format describes — so a
built survey exports as YAML and a YAML file loads into the form (round trip).

Form fields: ``survey_id``, ``title``, ``closing_message``, ``remind`` (``2d``), ``close_at``
(local date and time) and per question ``q{n}_id``, ``q{n}_type``, ``q{n}_text``,
``q{n}_optional``, ``q{n}_choices`` (one choice per line: ``value: Label | synonym, synonym``
or just ``Label``) and ``q{n}_next`` (``value -> question; default -> question`` or a
question id, or ``end``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import ValidationError

from gateway.domain.events import parse_duration
from gateway.domain.surveys import END, SurveySpec
from gateway.staff_text import S_, english

__all__ = ["MAX_QUESTIONS", "form_from_spec", "question_count", "spec_from_form", "spec_yaml"]

MAX_QUESTIONS = 20
TYPES = ("choice", "yesno", "rating", "text")


def _slug(text: str, fallback: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-").lower()
    return slug[:60] or fallback


def question_count(form: dict[str, Any]) -> int:
    """How many question blocks the form has (at least one)."""
    try:
        count = int(form.get("questions") or 1)
    except ValueError:
        count = 1
    return max(1, min(count, MAX_QUESTIONS))


def _choices(text: str) -> list[dict[str, Any]]:
    choices = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        head, _, synonyms = line.partition("|")
        value, colon, label = head.partition(":")
        if not colon:
            value, label = "", head
        label = label.strip()
        choices.append(
            {
                "value": (value.strip() or _slug(label, f"choice{len(choices) + 1}")),
                "label": label,
                "synonyms": [s.strip() for s in synonyms.split(",") if s.strip()],
            }
        )
    return choices


def _next(text: str) -> dict[str, str] | str | None:
    text = text.strip()
    if not text:
        return None
    if "->" not in text:
        return text
    rules = {}
    for part in re.split(r"[;\n]", text):
        if "->" in part:
            key, _, target = part.partition("->")
            rules[key.strip()] = target.strip()
    return rules


#: What can be wrong with a built survey, in words a liaison reads in the interface language.
TITLE_REQUIRED = S_("Title: required")
BAD_SURVEY_ID = S_("Survey id: letters, digits, dots, dashes and underscores only (at most 100)")
BAD_REMIND = S_("Remind after: write a delay like 2d, 12h or 30m")
BAD_CLOSE = S_("Closes: not a date and time")
TEXT_REQUIRED = S_("Question %(n)s: the question is required")
BAD_TYPE = S_("Question %(n)s: type must be one of %(types)s")
BAD_QUESTION_ID = S_("Question %(n)s: its id takes letters, digits, dashes and underscores only (at most 40)")
SAME_QUESTION_ID = S_("Question %(n)s: another question already has the id “%(id)s”")
CHOICES_REQUIRED = S_("Question %(n)s: a choice question needs choices (one per line)")
SAME_CHOICE = S_("Question %(n)s: two choices have the value “%(value)s”")
UNKNOWN_TARGET = S_("Question %(n)s: “next” goes to “%(target)s”, which is no question of this survey")
UNKNOWN_ANSWER = S_("Question %(n)s: “next” names the answer “%(answer)s”, which is not one of its choices")
INVALID = S_("%(field)s: %(reason)s")

_SURVEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_QUESTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def spec_from_form(
    form: dict[str, Any], zone: str, audience: str = "", gettext: Callable[..., str] = english
) -> tuple[SurveySpec | None, dict[str, str]]:
    """The survey the form describes, or the problems by field name (in the interface language
    of ``gettext``)."""
    _ = gettext
    errors: dict[str, str] = {}
    title = str(form.get("title") or "").strip()
    if not title:
        errors["title"] = _(TITLE_REQUIRED)
    survey_id = str(form.get("survey_id") or "").strip() or _slug(title, "survey")
    if not _SURVEY_ID.match(survey_id):
        errors["id"] = _(BAD_SURVEY_ID)
    data: dict[str, Any] = {"id": survey_id, "title": title, "audience": audience, "questions": []}
    if form.get("closing_message"):
        data["closing_message"] = str(form["closing_message"]).strip()
    if form.get("remind"):
        data["remind_unanswered_after"] = str(form["remind"]).strip()
        try:
            parse_duration(data["remind_unanswered_after"])
        except ValueError:
            errors["remind_unanswered_after"] = _(BAD_REMIND)
    if form.get("close_at"):
        try:
            moment = datetime.fromisoformat(str(form["close_at"]))
            data["close_at"] = moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(zone))
        except ValueError:
            errors["close_at"] = _(BAD_CLOSE)
    numbers: dict[str, int] = {}
    for n in range(1, question_count(form) + 1):
        text = str(form.get(f"q{n}_text") or "").strip()
        kind = str(form.get(f"q{n}_type") or "choice")
        if not text:
            errors[f"q{n}_text"] = _(TEXT_REQUIRED, n=n)
            continue
        if kind not in TYPES:
            errors[f"q{n}_type"] = _(BAD_TYPE, n=n, types=", ".join(TYPES))
            continue
        question_id = str(form.get(f"q{n}_id") or "").strip() or f"q{n}"
        if not _QUESTION_ID.match(question_id):
            errors[f"q{n}_id"] = _(BAD_QUESTION_ID, n=n)
        elif question_id in numbers:
            errors[f"q{n}_id"] = _(SAME_QUESTION_ID, n=n, id=question_id)
        numbers.setdefault(question_id, n)
        question: dict[str, Any] = {"id": question_id, "type": kind, "text": text}
        if form.get(f"q{n}_optional"):
            question["optional"] = True
        choices = _choices(str(form.get(f"q{n}_choices") or ""))
        values = [c["value"] for c in choices]
        if kind == "choice" and not choices:
            errors[f"q{n}_choices"] = _(CHOICES_REQUIRED, n=n)
        elif len(values) != len(set(values)):
            errors[f"q{n}_choices"] = _(
                SAME_CHOICE, n=n, value=next(v for v in values if values.count(v) > 1)
            )
        if kind == "choice" or (choices and kind == "yesno"):
            question["choices"] = choices
        following = _next(str(form.get(f"q{n}_next") or ""))
        if following:
            question["next"] = following
        data["questions"].append(question)
    _check_branching(data["questions"], numbers, errors, gettext)
    if errors:
        return None, errors
    try:
        return SurveySpec.model_validate(data), {}
    except ValidationError as exc:  # what the checks above do not foresee, still next to its field
        for error in exc.errors():
            loc = error["loc"]
            name = (
                f"q{int(loc[1]) + 1}_{loc[2] if len(loc) > 2 else 'text'}"
                if loc and loc[0] == "questions" and len(loc) > 1
                else str(loc[0] if loc else "form")
            )
            if "_choices" in name:
                name = name.split("_choices")[0] + "_choices"
            reason = error["msg"].removeprefix("Value error, ")
            errors.setdefault(name, _(INVALID, field=name, reason=reason))
        return None, errors


def _check_branching(
    questions: list[dict[str, Any]],
    numbers: dict[str, int],
    errors: dict[str, str],
    gettext: Callable[..., str],
) -> None:
    """Every ``next`` goes to a question of the survey (or ``end``), for an answer it has."""
    for question in questions:
        n = numbers[question["id"]]
        following = question.get("next")
        targets = following.values() if isinstance(following, dict) else [following] if following else []
        for target in targets:
            if target != END and target not in numbers:
                errors.setdefault(f"q{n}_next", gettext(UNKNOWN_TARGET, n=n, target=target))
        if isinstance(following, dict) and question["type"] in ("choice", "yesno", "rating"):
            values = {c["value"] for c in question.get("choices") or []}
            if question["type"] == "yesno" and not values:
                values = {"yes", "no"}
            if question["type"] == "rating" and not values:
                values = {str(i) for i in range(1, 6)}
            for answer in following:
                if answer != "default" and answer not in values:
                    errors.setdefault(f"q{n}_next", gettext(UNKNOWN_ANSWER, n=n, answer=answer))


def form_from_spec(spec: SurveySpec, zone: str) -> dict[str, Any]:
    """The form fields of a survey (to edit one loaded from YAML)."""
    form: dict[str, Any] = {
        "survey_id": spec.id,
        "title": spec.title,
        "closing_message": spec.closing_message or "",
        "remind": spec.remind_unanswered_after or "",
        "close_at": spec.close_at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")
        if spec.close_at
        else "",
        "questions": str(len(spec.questions)),
        "audience": spec.audience,
    }
    for n, question in enumerate(spec.questions, start=1):
        form[f"q{n}_id"] = question.id
        form[f"q{n}_type"] = question.type
        form[f"q{n}_text"] = question.text
        form[f"q{n}_optional"] = "on" if question.optional else ""
        if question.type in ("choice", "yesno") and question.choices:
            default_yesno = question.type == "yesno" and [c.value for c in question.choices] == ["yes", "no"]
            if not default_yesno:
                form[f"q{n}_choices"] = "\n".join(
                    f"{c.value}: {c.label}" + (f" | {', '.join(c.synonyms)}" if c.synonyms else "")
                    for c in question.choices
                )
        if isinstance(question.next, dict):
            form[f"q{n}_next"] = "; ".join(f"{k} -> {v}" for k, v in question.next.items())
        elif question.next:
            form[f"q{n}_next"] = question.next
    return form


def spec_yaml(spec: SurveySpec) -> str:
    """The survey as a survey file (``gateway survey send FILE.yaml`` reads it back)."""
    data = spec.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    data.setdefault("id", spec.id)
    for question in data.get("questions", []):
        question.setdefault("type", "choice")
        if question.get("type") == "yesno" and [c.get("value") for c in question.get("choices", [])] == [
            "yes",
            "no",
        ]:
            question.pop("choices", None)
        if question.get("type") == "rating":
            question.pop("choices", None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
