"""Audience expressions: ``school:Roosevelt grade:3,4 language:so tag:newcomer``.

Space-separated ``key:value`` terms are ANDed; comma-separated values are ORed. ``school``,
``grade`` and ``tag`` must hold for the same student; ``language`` picks guardians; ``family``
lists family ids. Values with spaces are quoted: ``school:"Lincoln Middle"``. Empty = everyone.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.errors import AudienceError
from gateway.staff_text import S_, StaffNote

__all__ = ["Audience", "parse_audience"]

KEYS = ("school", "grade", "language", "tag", "family")


def _key(value: str) -> str:
    return " ".join(value.split()).casefold()


@dataclass(frozen=True)
class Audience:
    """A parsed audience expression."""

    schools: frozenset[str] = field(default_factory=frozenset)
    grades: frozenset[str] = field(default_factory=frozenset)
    languages: frozenset[str] = field(default_factory=frozenset)
    tags: frozenset[str] = field(default_factory=frozenset)
    families: frozenset[str] = field(default_factory=frozenset)
    expression: str = ""

    @property
    def filters_students(self) -> bool:
        """Whether a family must have a matching student."""
        return bool(self.schools or self.grades or self.tags)

    def matches_student(self, school: str | None, grade: str | None, tags: Iterable[str]) -> bool:
        """Whether one student satisfies the student-level terms."""
        if self.schools and _key(school or "") not in self.schools:
            return False
        if self.grades and _grade_key(grade or "") not in self.grades:
            return False
        return not (self.tags and not (self.tags & {_key(t) for t in tags}))

    def matches_language(self, language: str) -> bool:
        """Whether a guardian reading ``language`` is in the audience."""
        if not self.languages:
            return True
        lowered = language.casefold()
        return lowered in self.languages or lowered.split("-")[0] in self.languages

    def restricted_to_schools(self, schools: Iterable[str]) -> Audience:
        """The same audience narrowed to a staff member's schools."""
        allowed = {_key(s) for s in schools}
        narrowed = (self.schools & allowed) if self.schools else frozenset(allowed)
        return Audience(
            schools=frozenset(narrowed) or frozenset({"\x00none"}),
            grades=self.grades,
            languages=self.languages,
            tags=self.tags,
            families=self.families,
            expression=self.expression,
        )


def _grade_key(value: str) -> str:
    key = _key(value)
    aliases = {"k": "k", "kg": "k", "kindergarten": "k", "pk": "pk", "prek": "pk", "pre-k": "pk"}
    if key in aliases:
        return aliases[key]
    stripped = key.removesuffix("th").removesuffix("rd").removesuffix("nd").removesuffix("st")
    return (stripped.lstrip("0") or "0") if stripped.isdigit() else key


UNREADABLE = S_("audience “%(expression)s”: %(reason)s")
NOT_KEY_VALUE = S_("audience term “%(term)s”: expected key:value (keys: %(keys)s)")
UNKNOWN_KEY = S_("audience term “%(term)s”: unknown key “%(key)s” (keys: %(keys)s)")
KEY_TWICE = S_("audience key “%(key)s” given twice; list values with commas")


def parse_audience(expression: str | None) -> Audience:
    """Parse an audience expression; raise :class:`AudienceError` naming the bad term."""
    expression = (expression or "").strip()
    if not expression:
        return Audience()
    try:
        terms = shlex.split(expression)
    except ValueError as exc:
        raise AudienceError(StaffNote(UNREADABLE, {"expression": expression, "reason": str(exc)})) from None
    values: dict[str, set[str]] = {k: set() for k in KEYS}
    for term in terms:
        key, sep, raw = term.partition(":")
        key = key.strip().lower()
        if not sep or not raw.strip():
            raise AudienceError(StaffNote(NOT_KEY_VALUE, {"term": term, "keys": ", ".join(KEYS)}))
        if key not in values:
            raise AudienceError(StaffNote(UNKNOWN_KEY, {"term": term, "key": key, "keys": ", ".join(KEYS)}))
        items = [v.strip() for v in raw.split(",") if v.strip()]
        if values[key]:
            raise AudienceError(StaffNote(KEY_TWICE, {"key": key}))
        if key == "grade":
            values[key] = {_grade_key(v) for v in items}
        elif key == "family":
            values[key] = set(items)
        else:
            values[key] = {_key(v) for v in items}
    return Audience(
        schools=frozenset(values["school"]),
        grades=frozenset(values["grade"]),
        languages=frozenset(values["language"]),
        tags=frozenset(values["tag"]),
        families=frozenset(values["family"]),
        expression=expression,
    )
