"""Text normalisation for matching replies: NFKC, case-, accent- and width-insensitive,
surrounding punctuation and spacing ignored."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize_reply", "tokens"]

_SPACES = re.compile(r"\s+")


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
    """``"  ¡Sí! "`` → ``"si"``; ``"ＳＴＯＰ"`` → ``"stop"``."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = _strip_marks(folded)
    folded = _SPACES.sub(" ", folded).strip()
    return _strip_edges(folded)


def tokens(text: str) -> list[str]:
    """Normalised words of a reply."""
    return [t for t in (_strip_edges(w) for w in normalize_reply(text).split(" ")) if t]
