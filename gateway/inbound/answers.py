"""Reading a reply to an open question: is it, as a whole, an answer?

An answer is recorded only when the reply *as a whole* is one: a choice number in range (in any
script: ``2``, ``٢``, ``၂``, ``२``), or a label, synonym or shipped keyword of that question (in
the family's language or English), with at most politeness around it — ``yes please``,
``¡Sí, gracias!``, ``ok 1``, ``Asante, ndiyo``. A reply that *starts* with such an answer and
then says more (``Yes, but what time does it end?``) is the answer *and* a message for staff —
unless a later clause starts with another answer (``No, yes``; ``Yes. No wait``): which one is
meant is for a person to ask.
Anything else is not an answer, whatever words it contains: ``Is there a bus? We have no car``
and ``Có phiên dịch tiếng Việt tại buổi họp không?`` ask something; nothing is inferred from a
yes or no inside a sentence. For such replies the reader may *suggest* an answer for a person to
confirm in one action — never when the reply asks something.

Word lists ship in ``locales/answers.yaml`` (yes / no / maybe synonyms) and
``locales/fillers.yaml`` (politeness, rating units); the survey file adds its own labels and
synonyms, and the choices the family was shown (translated) count as well.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.domain.languages import fallback_chain
from gateway.domain.surveys import Question
from gateway.inbound.normalize import normalize_reply, tokens

__all__ = ["AnswerMatcher", "ReplyReading", "asks_something", "clauses"]

#: Marks that end a question, in the scripts families write in.
QUESTION_MARKS = "?？؟;;՞፧"
#: Where a reply's first clause ends: sentence and clause punctuation of many scripts.
_CLAUSE_END = re.compile(r"[,.!?;:，。！？；：،؛؟।॥။၊\n]+")


def _digits(text: str) -> str:
    """Decimal digits of any script as ASCII (``٢`` → ``2``, ``၂`` → ``2``)."""
    out = []
    for ch in text:
        if unicodedata.category(ch) == "Nd":
            out.append(str(unicodedata.decimal(ch)))
        else:
            out.append(ch)
    return "".join(out)


def _key(text: str) -> str:
    """How forms compare: normalised words, digits in ASCII."""
    return " ".join(_digits(w) for w in tokens(text))


def asks_something(text: str) -> bool:
    """Whether the reply asks a question (a question mark in any script)."""
    return any(mark in text for mark in QUESTION_MARKS)


def clauses(text: str) -> list[str]:
    """The reply cut at sentence and clause punctuation, empty pieces dropped."""
    return [part for part in (p.strip() for p in _CLAUSE_END.split(text)) if part]


@dataclass(frozen=True, slots=True)
class ReplyReading:
    """What a reply means for one open question."""

    value: str | None = None
    """The answer to record; None when the reply is not, as a whole, an answer."""
    more: bool = False
    """The reply says more than its answer (or is no answer at all): a person should read it."""
    asks: bool = False
    """The reply asks something."""
    suggested: str | None = None
    """A value a person may confirm (a reply that mentions exactly one answer); never recorded
    on its own."""
    acknowledgement: bool = False
    """Nothing but politeness ("Thank you!")."""


@dataclass
class _Forms:
    """Normalised forms of one question's answers: form → value (ambiguous forms dropped)."""

    values: dict[str, str] = field(default_factory=dict)
    numbers: dict[str, str] = field(default_factory=dict)
    ambiguous: set[str] = field(default_factory=set)

    def add(self, form: str, value: str, *, number: bool = False) -> None:
        key = _key(form)
        if not key:
            return
        target = self.numbers if number else self.values
        if key in self.ambiguous:
            return
        if key in target and target[key] != value:
            del target[key]
            self.ambiguous.add(key)
            return
        target[key] = value

    def get(self, key: str) -> str | None:
        return self.numbers.get(key) or self.values.get(key)

    def segment(self, words: list[str]) -> str | None:
        """The value of ``words`` when they split entirely into forms of that one value
        ("yes we will come", "sí claro", "1 yes"); None otherwise."""
        n = len(words)
        # reach[i]: the set of values with which words[:i] can be split into forms.
        reach: list[set[str]] = [set() for _ in range(n + 1)]
        reach[0] = {"*"}
        for i in range(n):
            if not reach[i]:
                continue
            for j in range(i + 1, min(n, i + 8) + 1):
                value = self.get(" ".join(words[i:j]))
                if value is None:
                    continue
                for previous in reach[i]:
                    if previous in ("*", value):
                        reach[j].add(value)
        found = reach[n] - {"*"}
        return found.pop() if len(found) == 1 else None


class AnswerMatcher:
    """Shipped synonyms of the canonical answers and the politeness around answers, per
    language; reads replies against one question (see the module docstring)."""

    def __init__(
        self,
        synonyms: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
        fillers: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    ) -> None:
        self.synonyms: dict[str, dict[str, set[str]]] = {}
        for language, values in (synonyms or {}).items():
            self.synonyms[language] = {
                value: {normalize_reply(str(w)) for w in words or []} for value, words in values.items()
            }
        self.fillers: dict[str, dict[str, list[tuple[str, ...]]]] = {}
        for language, kinds in (fillers or {}).items():
            self.fillers[language] = {
                # A number alone is never filler ("/5" reads as "5": the answer itself).
                kind: sorted(
                    {
                        tuple(tokens(str(w)))
                        for w in words or []
                        if tokens(str(w)) and not all(t.isdigit() for t in tokens(str(w)))
                    },
                    key=len,
                    reverse=True,
                )
                for kind, words in (kinds or {}).items()
            }

    @classmethod
    def load(cls, locales_dir: Path) -> AnswerMatcher:
        """From ``locales/answers.yaml`` and ``locales/fillers.yaml``."""

        def read(name: str) -> dict[str, Any]:
            path = locales_dir / name
            return (yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}) or {}

        return cls(read("answers.yaml"), read("fillers.yaml"))

    # -- word lists ---------------------------------------------------------------------------
    def words_for(self, language: str, value: str) -> set[str]:
        """Shipped synonyms of ``value`` in ``language`` and English."""
        words: set[str] = set(self.synonyms.get("en", {}).get(value, set()))
        for candidate in fallback_chain(language):
            words |= self.synonyms.get(candidate, {}).get(value, set())
        return words

    def filler_phrases(self, language: str, kind: str = "politeness") -> list[tuple[str, ...]]:
        """Filler phrases of ``kind`` in ``language`` and English, longest first."""
        found: set[tuple[str, ...]] = set(self.fillers.get("en", {}).get(kind, []))
        for candidate in fallback_chain(language):
            found |= set(self.fillers.get(candidate, {}).get(kind, []))
        return sorted(found, key=len, reverse=True)

    def strip_fillers(
        self, words: list[str], language: str, kinds: Iterable[str] = ("politeness",)
    ) -> list[str]:
        """``words`` without filler phrases at their start and end."""
        phrases = [p for kind in kinds for p in self.filler_phrases(language, kind)]
        words = list(words)
        changed = True
        while changed and words:
            changed = False
            for phrase in phrases:
                n = len(phrase)
                if n <= len(words) and tuple(words[:n]) == phrase:
                    words = words[n:]
                    changed = True
                    break
                if n <= len(words) and tuple(words[-n:]) == phrase:
                    words = words[:-n]
                    changed = True
                    break
        return words

    # -- reading --------------------------------------------------------------------------------
    def _forms(self, question: Question, language: str, shown: Sequence[Sequence[Any]]) -> _Forms:
        forms = _Forms()
        extra: dict[str, set[str]] = {}
        for entry in shown:
            value, label = str(entry[0]), str(entry[1])
            more = entry[2] if len(entry) > 2 else []
            extra.setdefault(value, set()).update([label, *map(str, more)])
        for number, choice in enumerate(question.choices, start=1):
            forms.add(str(number), choice.value, number=True)
            if question.type == "rating" and choice.value.isdigit():
                forms.add(choice.value, choice.value, number=True)
            words = {choice.value, choice.label, *choice.synonyms, *extra.get(choice.value, set())}
            words |= self.words_for(language, choice.value)
            for word in words:
                if word.isdigit():
                    continue
                forms.add(word, choice.value)
        return forms

    def read(
        self, question: Question, text: str, language: str, shown: Sequence[Sequence[Any]] = ()
    ) -> ReplyReading:
        """What ``text`` means for ``question`` (see the module docstring). ``shown`` is
        ``[[value, label, synonyms], ...]`` as the family was shown the choices."""
        asks = asks_something(text)
        if question.type == "text":
            stripped = text.strip()
            return ReplyReading(value=stripped or None, more=bool(stripped), asks=asks)
        forms = self._forms(question, language, shown)
        units = ("politeness", "rating_units") if question.type == "rating" else ("politeness",)
        words = [_digits(w) for w in tokens(text)]
        if not words:
            return ReplyReading()
        core = self.strip_fillers(words, language, units)
        if not core:
            # Nothing but politeness — unless the politeness word is itself an answer ("ok").
            value = forms.get(" ".join(words))
            if value is not None and not asks:
                return ReplyReading(value=value)
            return ReplyReading(acknowledgement=not asks, asks=asks, more=asks)
        whole = forms.get(" ".join(core)) or forms.segment(core)
        if whole is not None and not asks:
            return ReplyReading(value=whole)
        parts = clauses(text)
        if len(parts) > 1:
            head = self.strip_fillers([_digits(w) for w in tokens(parts[0])], language, units)
            first_asks = asks_something(text[: text.find(parts[1])])
            value = (forms.get(" ".join(head)) or forms.segment(head)) if head else None
            if value is not None and not first_asks:
                if self._takes_back(forms, value, parts[1:], language, units):
                    # "No, yes" / "Yes. No wait": which one is meant is for a person to ask.
                    return ReplyReading(more=True, asks=asks)
                # "Yes, thank you. See you there!" says nothing more for a person to read.
                rest = self.strip_fillers(tokens(" ".join(parts[1:])), language, units)
                return ReplyReading(value=value, more=bool(rest) or asks, asks=asks)
        return ReplyReading(more=True, asks=asks, suggested=None if asks else self._suggest(forms, core))

    def _takes_back(
        self, forms: _Forms, value: str, later: Sequence[str], language: str, units: Sequence[str]
    ) -> bool:
        """Whether a later clause is another answer ("No, yes"), or a short one (three words at
        most) starts with one ("Yes. No wait"); in a longer clause a word such as "y" or "si"
        is the language's own ("Y aura-t-il une autre date ?"). Numbers do not count there:
        "Yes, 2 of us" gives a count, not choice 2."""
        for clause in later:
            words = self.strip_fillers([_digits(w) for w in tokens(clause)], language, units)
            whole = forms.values.get(" ".join(words))
            if whole is not None and whole != value:
                return True
            if len(words) > 3:
                continue
            for n in range(1, len(words) + 1):
                other = forms.values.get(" ".join(words[:n]))
                if other is not None and other != value:
                    return True
        return False

    @staticmethod
    def _suggest(forms: _Forms, words: list[str]) -> str | None:
        """The one value whose (non-number) form appears in the reply as whole words, if exactly
        one does."""
        text = " " + " ".join(words) + " "
        found = {value for key, value in forms.values.items() if f" {key} " in text}
        return found.pop() if len(found) == 1 else None

    def match(
        self, question: Question, text: str, language: str, shown: Sequence[Sequence[Any]] = ()
    ) -> str | None:
        """The answer ``text`` is, as a whole, or None (:meth:`read` tells more)."""
        reading = self.read(question, text, language, shown)
        return None if reading.more and question.type != "text" else reading.value
