"""Bidirectional text: direction per run of text, not per family.

In a right-to-left message (Arabic, Dari, Pashto, Urdu…) every value the gateway puts into the
text — a name, a date, a phone number, a link, a number, a sentence left in English because no
translation exists — is *isolated*, so the Unicode bidi algorithm lays it out on its own and its
punctuation stays where it belongs:

- plain text (SMS, e-mail text, Telegram): FSI … PDI (U+2068 … U+2069) around values, and
  LRI … PDI (U+2066 … U+2069) around English fallback sentences;
- HTML (e-mail): ``<bdi>`` around values and ``<span dir="ltr">`` around English fallback.

Bidi *control* characters supplied from outside (U+202A–U+202E embeddings and overrides,
U+2066–U+2069 isolates, and the LRM / RLM / ALM marks) are removed from names and other values
before they reach a message, a page or a log: an override such as U+202E in a name reverses the
text after it and is a known way to disguise links.
"""

from __future__ import annotations

import re
import unicodedata

from markupsafe import Markup, escape

__all__ = [
    "BIDI_CONTROLS",
    "FSI",
    "LRI",
    "PDI",
    "has_rtl",
    "isolate",
    "isolate_ltr",
    "strip_bidi_controls",
]

FSI = "\u2068"
LRI = "\u2066"
PDI = "\u2069"
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
"""Embeddings, overrides, isolates and directional marks."""


def strip_bidi_controls(text: str) -> str:
    """``text`` without bidi control characters (names, free text from outside)."""
    return BIDI_CONTROLS.sub("", text)


def has_rtl(text: str) -> bool:
    """Whether ``text`` has a strong right-to-left character (Arabic, Hebrew, Thaana…)."""
    return any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text)


def isolate(value: str, html: bool = False) -> str:
    """``value`` as a direction-isolated run (its own direction from its first strong letter).

    With ``html``, ``value`` is escaped and wrapped in ``<bdi>``; the result is :class:`Markup`.
    """
    if not value:
        return value
    if html:
        return Markup("<bdi>") + escape(value) + Markup("</bdi>")
    return f"{FSI}{value}{PDI}"


def isolate_ltr(value: str, html: bool = False) -> str:
    """``value`` as a left-to-right isolated run: an English sentence inside an RTL message."""
    if not value:
        return value
    if html:
        return Markup('<span dir="ltr">') + escape(value) + Markup("</span>")
    return f"{LRI}{value}{PDI}"
