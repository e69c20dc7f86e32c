"""Matching a reply to a survey answer, in the family's language.

The choice number, the choice's value and label (English and translated) and its synonyms —
the survey's own plus the shipped ones of ``locales/answers.yaml`` for yes / no / maybe — all
count. Matching is case-, accent- and width-insensitive; punctuation and filler around the
answer are ignored (``"1."``, ``"¡Sí, claro!"``, ``"yes please"``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gateway.domain.languages import fallback_chain
from gateway.domain.surveys import Question
from gateway.inbound.normalize import normalize_reply, tokens

__all__ = ["AnswerMatcher"]

_NUMBER = re.compile(r"^\d{1,2}$")
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹၀၁၂၃၄၅၆၇၈၉०१२३४५६७८९", "0123456789" * 4)


class AnswerMatcher:
    """Synonyms per language for the canonical answers ``yes``, ``no``, ``maybe``."""

    def __init__(self, synonyms: Mapping[str, Mapping[str, Sequence[str]]] | None = None) -> None:
        self.synonyms: dict[str, dict[str, set[str]]] = {}
        for language, values in (synonyms or {}).items():
            self.synonyms[language] = {
                value: {normalize_reply(str(w)) for w in words or []} for value, words in values.items()
            }

    @classmethod
    def load(cls, locales_dir: Path) -> AnswerMatcher:
        """From ``locales/answers.yaml`` (language → value → words)."""
        path = locales_dir / "answers.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
        return cls(data or {})

    def words_for(self, language: str, value: str) -> set[str]:
        """Shipped synonyms of ``value`` in ``language`` and English."""
        words: set[str] = set(self.synonyms.get("en", {}).get(value, set()))
        for candidate in fallback_chain(language):
            words |= self.synonyms.get(candidate, {}).get(value, set())
        return words

    def match(
        self, question: Question, text: str, language: str, shown: Sequence[Sequence[Any]] = ()
    ) -> str | None:
        """The answer value ``text`` means, or None. ``shown`` is ``[[value, label, synonyms]...]``
        as the family was shown the choices (labels and synonyms in their language)."""
        labels: dict[str, set[str]] = {}
        for entry in shown:
            value, label = str(entry[0]), str(entry[1])
            extra = entry[2] if len(entry) > 2 else []
            labels.setdefault(value, set()).update([label, *map(str, extra)])
        if question.type == "text":
            return text.strip() or None
        reply = normalize_reply(text).translate(_DIGITS)
        if not reply:
            return None
        candidates: dict[str, str] = {}
        for number, choice in enumerate(question.choices, start=1):
            forms = {str(number), choice.value, choice.label, *choice.synonyms}
            forms |= labels.get(choice.value, set())
            forms |= self.words_for(language, choice.value)
            for form in forms:
                key = normalize_reply(form).translate(_DIGITS)
                if key:
                    candidates.setdefault(key, choice.value)
        if reply in candidates:
            return candidates[reply]
        words = [w.translate(_DIGITS) for w in tokens(text)]
        if question.type == "rating":
            numbers = [w for w in words if _NUMBER.match(w) and w in candidates]
            return candidates[numbers[0]] if len(numbers) == 1 else None
        for probe in (words[:1], words[-1:], words[:2], words[:3]):
            key = " ".join(probe)
            if key in candidates:
                return candidates[key]
        hits = {candidates[w] for w in words if w in candidates and not _NUMBER.match(w)}
        return hits.pop() if len(hits) == 1 else None
