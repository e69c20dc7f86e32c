"""SMS length arithmetic: GSM-7 / UCS-2 segment counting and "smart encoding".

An SMS carries 140 octets. Text that fits the GSM 03.38 default alphabet is packed as 7-bit
septets (160 per single message); anything else is sent as UCS-2 / UTF-16 (70 code units).
Longer texts are split into concatenated parts, each of which loses room to the User Data
Header: 153 septets or 67 UTF-16 units per part. A character of the GSM extension table
(``^{}\\[~]|€`` and form feed) costs an escape septet plus itself and the pair is never split
across parts; likewise a UTF-16 surrogate pair (an emoji) is never split.

Used by the SMS channel (cost units, preview) and by the core's preview and sandbox channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "GSM7_BASIC_CHARACTERS",
    "GSM7_EXTENSION_CHARACTERS",
    "MAX_SMS_CHARACTERS",
    "SegmentInfo",
    "count_segments",
    "is_gsm7",
    "smart_encode",
]

MAX_SMS_CHARACTERS = 1600
"""The longest body Twilio accepts (error 21617 beyond it)."""

GSM7_SINGLE_SEPTETS = 160
GSM7_MULTI_SEPTETS = 153
UCS2_SINGLE_UNITS = 70
UCS2_MULTI_UNITS = 67

#: The GSM 03.38 default alphabet, in code order (0x1B, the escape, is left out).
GSM7_BASIC_CHARACTERS = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

#: Characters reached through the escape (0x1B): two septets each.
GSM7_EXTENSION_CHARACTERS = frozenset("\f^{}\\[~]|€")

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """How a text travels as SMS.

    ``units`` are septets (GSM-7) or UTF-16 code units (UCS-2); ``per_segment`` is the room of
    one part for this message (160/153 or 70/67); ``characters`` counts Unicode code points.
    """

    encoding: Encoding
    units: int
    segments: int
    per_segment: int
    characters: int

    @property
    def remaining(self) -> int:
        """Units still free in the last part before another part is needed (approximate
        when escape or surrogate pairs would straddle a boundary)."""
        return max(0, self.segments * self.per_segment - self.units)


_GSM7_CHARACTERS = GSM7_BASIC_CHARACTERS | GSM7_EXTENSION_CHARACTERS


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the GSM-7 basic or extension table."""
    return _GSM7_CHARACTERS.issuperset(text)


def _pack(costs: list[int], single: int, multi: int) -> tuple[int, int, int]:
    """Return (total units, segments, per-segment room) for indivisible items of ``costs``."""
    total = sum(costs)
    if total <= single:
        return total, 1, single
    segments = 1
    used = 0
    for cost in costs:
        if used + cost > multi:
            segments += 1
            used = 0
        used += cost
    return total, segments, multi


def count_segments(text: str) -> SegmentInfo:
    """Count the SMS parts ``text`` needs, following GSM 03.38 / 03.40 rules.

    An empty text is one (empty) part.
    """
    # Every send of the SMS channel counts its message (cost units): the common cases — no
    # two-unit character, or a text that fits one part — are counted without a per-character
    # list; only a long text with escapes or surrogate pairs is packed item by item.
    characters = len(text)
    if is_gsm7(text):
        escaped = sum(text.count(ch) for ch in GSM7_EXTENSION_CHARACTERS if ch in text)
        single, multi, encoding, double = GSM7_SINGLE_SEPTETS, GSM7_MULTI_SEPTETS, "GSM-7", escaped
    else:
        # A code point above U+FFFF is a surrogate pair: two UTF-16 units that stay together.
        double = len(text.encode("utf-16-le", "surrogatepass")) // 2 - characters
        single, multi, encoding = UCS2_SINGLE_UNITS, UCS2_MULTI_UNITS, "UCS-2"
    units = characters + double
    if units <= single:
        return SegmentInfo(encoding, units, 1, single, characters)
    if not double:
        return SegmentInfo(encoding, units, -(-units // multi), multi, characters)
    if encoding == "GSM-7":
        costs = [2 if ch in GSM7_EXTENSION_CHARACTERS else 1 for ch in text]
    else:
        costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    units, segments, per_segment = _pack(costs, single, multi)
    return SegmentInfo(encoding, units, segments, per_segment, characters)


_SMART_REPLACEMENTS: dict[str, str] = {
    # double quotes
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    "\u2033": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\uff02": '"',
    # single quotes and apostrophes
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u2039": "'",
    "\u203a": "'",
    "\u02bc": "'",
    "\u00b4": "'",
    "\u0060": "'",
    "\uff07": "'",
    # dashes and minus signs
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2015": "-",
    "\u2212": "-",
    "\ufe63": "-",
    "\uff0d": "-",
    # ellipsis, bullets, tilde and circumflex look-alikes
    "\u2026": "...",
    "\u2022": "-",
    "\u00b7": "-",
    "\u02dc": "~",
    "\u02c6": "^",
    "\uff0c": ",",
    "\uff0e": ".",
    "\uff1a": ":",
    "\uff1b": ";",
    "\uff01": "!",
    "\uff1f": "?",
    # spaces
    "\t": " ",
    "\u00a0": " ",
    "\u2000": " ",
    "\u2001": " ",
    "\u2002": " ",
    "\u2003": " ",
    "\u2004": " ",
    "\u2005": " ",
    "\u2006": " ",
    "\u2007": " ",
    "\u2008": " ",
    "\u2009": " ",
    "\u200a": " ",
    "\u202f": " ",
    "\u205f": " ",
    "\u3000": " ",
    # invisible characters
    "\u00ad": "",
    "\u200b": "",
    "\u200c": "",
    "\u200d": "",
    "\u2060": "",
    "\ufeff": "",
}
_SMART_TABLE = str.maketrans(_SMART_REPLACEMENTS)


def smart_encode(text: str) -> str:
    """Replace typographic look-alikes (curly quotes, dashes, ellipsis, exotic spaces,
    zero-width characters) by their GSM-7 equivalents, like Twilio's Smart Encoding.

    Letters are never changed: an accented word stays as written even when that keeps the
    message in UCS-2, because changing letters can change meaning in the family's language.
    """
    return text.translate(_SMART_TABLE)
