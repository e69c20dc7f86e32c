"""Text normalisation for matching replies: NFKC, case-, accent- and width-insensitive,
emoji keycaps read as their digit, surrounding punctuation and spacing ignored."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["ZAWGYI_THRESHOLD", "normalize_reply", "tokens", "zawgyi_to_unicode"]

_SPACES = re.compile(r"\s+")
#: How phones draw a character as an emoji, not what it says: the variation selectors and the
#: keycap frame ("1️⃣" is "1", VS16 and U+20E3).
_EMOJI_DRESSING = dict.fromkeys(map(ord, "\ufe0e\ufe0f\u20e3"))


def _is_edge(ch: str) -> bool:
    """Punctuation, symbols, spaces and controls: what may surround an answer."""
    return unicodedata.category(ch)[0] in "PSZC" or ch == "_"


def _strip_edges(text: str) -> str:
    start, end = 0, len(text)
    while start < end and _is_edge(text[start]):
        start += 1
    while end > start and _is_edge(text[end - 1]):
        end -= 1
    return text[start:end]


def _strip_marks(text: str) -> str:
    # Drop combining accents from Latin letters only; in scripts such as Burmese, Devanagari or
    # Arabic the combining signs are part of the word and must stay.
    decomposed = unicodedata.normalize("NFD", text)
    out = []
    previous_latin = False
    for ch in decomposed:
        if unicodedata.combining(ch):
            if previous_latin:
                continue
        else:
            previous_latin = "LATIN" in unicodedata.name(ch, "")
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def normalize_reply(text: str) -> str:
    """``"  ¡Sí! "`` → ``"si"``; ``"ＳＴＯＰ"`` → ``"stop"``; ``"2️⃣"`` → ``"2"``."""
    folded = unicodedata.normalize("NFKC", text.translate(_EMOJI_DRESSING)).casefold()
    folded = _strip_marks(folded)
    folded = _SPACES.sub(" ", folded).strip()
    return _strip_edges(folded)


def tokens(text: str) -> list[str]:
    """Normalised words of a reply."""
    return [t for t in (_strip_edges(w) for w in normalize_reply(text).split(" ")) if t]


#: Above this probability (Google's myanmartools model) a Burmese text is taken to be Zawgyi.
ZAWGYI_THRESHOLD = 0.95
_BURMESE = re.compile("[\u1000-\u109f]")
_zawgyi_detector: object | None = None


def zawgyi_to_unicode(text: str) -> tuple[str, bool]:
    """Burmese typed in the legacy Zawgyi encoding (still common on older phones), converted to
    Unicode: ``(text, converted)``. Anything else comes back unchanged.

    Detection is Google's ``myanmartools`` model; conversion is ``python-myanmar``'s
    Zawgyi → Unicode converter. Both are loaded on first use.
    """
    global _zawgyi_detector
    if not _BURMESE.search(text):
        return text, False
    if _zawgyi_detector is None:
        from myanmartools import ZawgyiDetector

        _zawgyi_detector = ZawgyiDetector()
    probability = _zawgyi_detector.get_zawgyi_probability(text)  # type: ignore[attr-defined]
    if probability < ZAWGYI_THRESHOLD:
        return text, False
    from myanmar.converter import convert

    return convert(text, "zawgyi", "unicode"), True
