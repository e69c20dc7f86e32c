"""The placeholder guard: protect what machine translation must not touch, and check it after.

:func:`mask` replaces names, URLs, e-mail addresses, phone numbers, dates, times, numbers,
format fields (``%(name)s``, ``{name}``), HTML tags and entities, and glossary terms by opaque
tokens ``[1]``, ``[2]``… numbered left to right. The token shape was chosen because engines copy
it: square brackets and ASCII digits are in every SentencePiece vocabulary, and it has no
underscore (argostranslate turns ``_`` into a space). Text that already looks like a token is
masked too, so a token in the output can only be one of ours.

:func:`unmask` puts the originals back and raises :class:`PlaceholderError` when the engine lost,
duplicated, invented or mangled a token; the caller then applies its fallback policy. Spacing
inside a token (``[ 1 ]``), full-width brackets (``［1］``) and non-ASCII digits are tolerated.

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gateway.errors import TranslationError

__all__ = ["Masked", "PlaceholderError", "mask", "unmask"]

TOKEN_PATTERN = re.compile(r"[\[［]\s*(\d{1,4})\s*[\]］]")
"""A placeholder token as it may come back from an engine."""

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\b\.?"
)
_WEEKDAY = r"(?:Mon|Tues?|Wed(?:nes)?|Thu(?:rs)?|Fri|Sat(?:ur)?|Sun)(?:day)?\b\.?"
_NOT_LETTER_BEFORE = r"(?<![^\W\d_])"  # not preceded by a letter (digits and marks are fine)
_NOT_LETTER_AFTER = r"(?![^\W\d_])"
_NO_DIGIT_BEFORE = r"(?<!\d)"
_NO_DIGIT_AFTER = r"(?!\d)"

# (kind, pattern) in priority order: an earlier kind wins where two overlap.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("token", TOKEN_PATTERN),
    (
        "url",
        re.compile(
            r"(?:\b(?:https?|ftp)://|\bwww\.|\bmailto:)[^\s<>\"'\]]*[^\s<>\"'\].,;:!?)]",
            re.IGNORECASE,
        ),
    ),
    ("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    (
        "format",
        re.compile(
            r"%\([A-Za-z_][A-Za-z0-9_]*\)[-#0 +]*\d*(?:\.\d+)?[sdifrx]"
            r"|%[sd]"
            r"|\{\{.*?\}\}|\{%.*?%\}"
            r"|\{[A-Za-z_][A-Za-z0-9_.]*(?:![rsa])?(?::[^{}]*)?\}"
            r"|\{\d*\}"
        ),
    ),
    (
        "phone",
        re.compile(
            _NO_DIGIT_BEFORE
            + r"(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)\s?|\d{2,4}[\s.-])\d{3,4}[\s.-]\d{3,4}"
            + _NO_DIGIT_AFTER
            + r"|\+\d{7,15}"
            + _NO_DIGIT_AFTER
        ),
    ),
    (
        "date",
        re.compile(
            _NO_DIGIT_BEFORE
            + r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
            + _NO_DIGIT_AFTER
            + r"|"
            + _NO_DIGIT_BEFORE
            + r"\d{1,2}[/.]\d{1,2}[/.]\d{2,4}"
            + _NO_DIGIT_AFTER
            + rf"|\b(?:{_WEEKDAY},?\s+)?{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s+\d{{4}}\b)?"
            + rf"|\b(?:{_WEEKDAY},?\s+)?\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}"
            + r"(?:,?\s+\d{4}\b)?"
        ),
    ),
    (
        "time",
        re.compile(
            _NO_DIGIT_BEFORE
            + r"\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AaPp](?:\.[Mm]\.|[Mm])(?![^\W\d_]))?"
            + r"|"
            + _NO_DIGIT_BEFORE
            + r"\d{1,2}\s?[AaPp](?:\.[Mm]\.|[Mm])(?![^\W\d_])"
        ),
    ),
    (
        "number",
        re.compile(
            _NOT_LETTER_BEFORE + r"[$€£¥]?\d+(?:[.,]\d+)*(?:%|(?:st|nd|rd|th)\b)?" + _NOT_LETTER_AFTER
        ),
    ),
)

_HTML_PATTERN = re.compile(
    r"<!--.*?-->|</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>|&(?:#\d+|#[xX][0-9A-Fa-f]+|[A-Za-z]\w*);",
    re.DOTALL,
)


class PlaceholderError(TranslationError):
    """A translation lost, duplicated, invented or mangled a protected placeholder."""

    def __init__(
        self,
        missing: Iterable[str] = (),
        duplicated: Iterable[str] = (),
        unknown: Iterable[str] = (),
    ) -> None:
        self.missing = tuple(missing)
        self.duplicated = tuple(duplicated)
        self.unknown = tuple(unknown)
        problems = [
            f"{label}: {', '.join(tokens)}"
            for label, tokens in (
                ("missing", self.missing),
                ("duplicated", self.duplicated),
                ("unknown", self.unknown),
            )
            if tokens
        ]
        super().__init__(
            "placeholder check failed (" + "; ".join(problems) + ")",
            reason="placeholder lost" if self.missing else "placeholder broken",
        )


@dataclass(frozen=True, slots=True)
class Masked:
    """Masked text and what each token stands for.

    ``originals`` maps a token (``"[1]"``) to the text :func:`unmask` puts back (the original
    span, or the glossary's rendering for the target language); ``kinds`` says what it was
    (``url``, ``email``, ``phone``, ``date``, ``time``, ``number``, ``format``, ``html``,
    ``name``, ``glossary``, ``token``).
    """

    text: str
    originals: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)

    @property
    def needs_translation(self) -> bool:
        """Whether anything but tokens, digits, spaces and punctuation is left to translate."""
        return any(char.isalpha() for char in TOKEN_PATTERN.sub("", self.text))


def _term_pattern(term: str, *, ignore_case: bool) -> re.Pattern[str]:
    """Whole-word matching for terms whose edges are Latin letters or digits.

    Scripts written without spaces (Burmese) or with attached prefixes (Arabic ``و``, ``ال``)
    match anywhere: a word boundary there would miss real occurrences.
    """
    before = r"(?<!\w)" if term[0].isalnum() and ord(term[0]) < 0x0250 else ""
    after = r"(?!\w)" if term[-1].isalnum() and ord(term[-1]) < 0x0250 else ""
    flags = re.IGNORECASE if ignore_case else 0
    return re.compile(before + re.escape(term) + after, flags)


def _is_acronym(term: str) -> bool:
    return not any(char.islower() for char in term)


def mask(
    text: str,
    *,
    names: Iterable[str] = (),
    glossary_terms: Mapping[str, str] | None = None,
    protect_html: bool = True,
) -> Masked:
    """Replace every protected span of ``text`` by a token ``[n]``.

    ``names`` are matched exactly (case-sensitive). ``glossary_terms`` maps a term to its
    rendering in the target language (the term itself to keep it as is); acronyms (no lowercase
    letter: ``IEP``, ``FAFSA``) match case-sensitively, other terms case-insensitively, whole
    words in both cases. Where spans overlap, the earlier kind wins: existing tokens, HTML,
    URLs, e-mails, format fields, names, glossary terms, phones, dates, times, numbers; within a
    kind, the longer match.
    """
    candidates: list[tuple[int, int, str, str]] = []  # (start, end, kind, restored)

    def add(kind: str, pattern: re.Pattern[str], render: Mapping[str, str] | None = None) -> None:
        for match in pattern.finditer(text):
            if match.end() > match.start():
                restored = match.group(0) if render is None else render[match.group(0)]
                candidates.append((match.start(), match.end(), kind, restored))

    ordered: list[tuple[str, re.Pattern[str] | None]] = [(kind, p) for kind, p in _PATTERNS[:1]]
    if protect_html:
        ordered.append(("html", _HTML_PATTERN))
    ordered.extend(_PATTERNS[1:4])
    ordered.append(("name", None))
    ordered.append(("glossary", None))
    ordered.extend(_PATTERNS[4:])

    accepted: list[tuple[int, int, str, str]] = []
    taken = [False] * len(text)

    def accept_pending() -> None:
        # Longer matches first within one kind, then left to right.
        for start, end, kind, restored in sorted(candidates, key=lambda c: (c[0] - c[1], c[0])):
            if not any(taken[start:end]):
                taken[start:end] = [True] * (end - start)
                accepted.append((start, end, kind, restored))
        candidates.clear()

    for kind, pattern in ordered:
        if kind == "name":
            for name in {n for n in names if n and n.strip()}:
                add("name", _term_pattern(name, ignore_case=False))
        elif kind == "glossary":
            for term, rendering in (glossary_terms or {}).items():
                if not term.strip():
                    continue
                term_pattern = _term_pattern(term, ignore_case=not _is_acronym(term))
                for match in term_pattern.finditer(text):
                    restored = match.group(0) if rendering == term else rendering
                    candidates.append((match.start(), match.end(), "glossary", restored))
        elif pattern is not None:
            add(kind, pattern)
        accept_pending()

    accepted.sort()
    pieces: list[str] = []
    originals: dict[str, str] = {}
    kinds: dict[str, str] = {}
    cursor = 0
    for number, (start, end, kind, restored) in enumerate(accepted, start=1):
        token = f"[{number}]"
        pieces.append(text[cursor:start])
        pieces.append(token)
        originals[token] = restored
        kinds[token] = kind
        cursor = end
    pieces.append(text[cursor:])
    return Masked("".join(pieces), originals, kinds)


def unmask(translated: str, masked: Masked) -> str:
    """Restore the originals in ``translated``; raise :class:`PlaceholderError` if any is off.

    Every token of ``masked`` must appear exactly once, and no other token may appear.
    """
    found = Counter(f"[{int(match.group(1))}]" for match in TOKEN_PATTERN.finditer(translated))
    missing = [token for token in masked.originals if found[token] == 0]
    duplicated = [token for token in masked.originals if found[token] > 1]
    unknown = [token for token in found if token not in masked.originals]
    if missing or duplicated or unknown:
        raise PlaceholderError(missing, duplicated, unknown)
    return TOKEN_PATTERN.sub(lambda match: masked.originals[f"[{int(match.group(1))}]"], translated)
