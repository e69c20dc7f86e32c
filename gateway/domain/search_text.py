"""Accent- and case-insensitive matching of names: ``hernandez`` finds ``Hernández``,
``nguyen`` finds ``Nguyễn``, ``strasse`` finds ``Straße``, ``istanbul`` finds ``İstanbul``.

:func:`fold` decomposes a text (NFKD), drops the accents of Latin, Greek and Cyrillic letters
(the combining diacritical mark blocks), case-folds it, maps the few letters whose stroke is
not a separate mark (``đ``, ``ı``, ``ł``, ``ø``...) to their base letter, and composes it again
(NFC). Marks that are part of a letter in other scripts are kept: Arabic hamza and harakat,
Indic vowel signs and viramas, Japanese dakuten — stripping them would change the word, so
Arabic, Devanagari or Japanese text folds to itself.

A family's *search key* (:func:`family_search_key`, stored in ``families.search_key``) is the
folded family id, guardian names and student names, one per line; a search is the folded query
as a substring of it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

__all__ = ["fold", "family_search_key"]

#: Combining diacritical marks used as accents on Latin, Greek and Cyrillic letters.
_ACCENT_BLOCKS = (
    (0x0300, 0x036F),  # Combining Diacritical Marks
    (0x1AB0, 0x1AFF),  # Combining Diacritical Marks Extended
    (0x1DC0, 0x1DFF),  # Combining Diacritical Marks Supplement
    (0x20D0, 0x20FF),  # Combining Diacritical Marks for Symbols
    (0xFE20, 0xFE2F),  # Combining Half Marks
)

#: Letters with a stroke or without a dot, which no decomposition turns into their base letter.
_BASE_LETTERS = str.maketrans(
    {"đ": "d", "ð": "d", "ı": "i", "ł": "l", "ø": "o", "ħ": "h", "ŧ": "t", "ƀ": "b", "ɨ": "i", "ʉ": "u"}
)


def _is_accent(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _ACCENT_BLOCKS)


def fold(text: str) -> str:
    """``text`` without accents, case-folded, with its spacing collapsed (see the module)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not _is_accent(c)).translate(_BASE_LETTERS)
    return " ".join(unicodedata.normalize("NFC", stripped).split())


def family_search_key(family_id: str, names: Iterable[str]) -> str:
    """What a family search matches against: the folded family id and names, one per line."""
    return "\n".join(fold(part) for part in (family_id, *names) if part and part.strip())
