"""Compliance keywords: opt-out, opt-in and HELP, matched on the whole message after
normalisation, in English and every language of ``locales/keywords.yaml`` plus config.

``STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT`` opt out; ``START, UNSTOP`` opt in (``YES``
only while the endpoint is opted out); ``HELP, INFO`` get the help text. Multi-word opt-out
phrases (``please stop texting me``) count too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from gateway.inbound.normalize import normalize_reply, tokens

__all__ = ["KeywordTable", "Keyword"]

Keyword = Literal["opt_out", "opt_in", "help"]

ENGLISH: dict[str, list[str]] = {
    "opt_out": ["stop", "stopall", "unsubscribe", "cancel", "end", "quit"],
    "opt_in": ["start", "unstop"],
    "help": ["help", "info"],
    "opt_out_phrases": [
        "please stop",
        "stop texting me",
        "please stop texting me",
        "stop sending me messages",
        "stop messaging me",
        "unsubscribe me",
        "remove me",
        "remove me from this list",
        "do not text me",
        "don't text me",
        "no more texts",
        "no more messages",
    ],
}
KINDS = ("opt_out", "opt_in", "help", "opt_out_phrases")


@dataclass
class KeywordTable:
    """Normalised keyword sets."""

    opt_out: set[str] = field(default_factory=set)
    opt_in: set[str] = field(default_factory=set)
    help: set[str] = field(default_factory=set)
    opt_out_phrases: set[str] = field(default_factory=set)

    @classmethod
    def load(
        cls, locales_dir: Path, extra: Mapping[str, Mapping[str, Iterable[str]]] | None = None
    ) -> KeywordTable:
        """English built-ins + ``locales/keywords.yaml`` + config (``kind → language → words``)."""
        table = cls()
        table._add("en", ENGLISH)
        path = locales_dir / "keywords.yaml"
        if path.is_file():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if any(k in KINDS for k in data):  # kind → language → words
                for kind, per_language in data.items():
                    for words in (per_language or {}).values():
                        table._add_words(kind, words)
            else:  # language → kind → words
                for language, kinds in data.items():
                    table._add(str(language), kinds or {})
        for kind, per_language in (extra or {}).items():
            for words in per_language.values():
                table._add_words(kind, words)
        return table

    def _add(self, _language: str, kinds: Mapping[str, Iterable[str]]) -> None:
        for kind, words in kinds.items():
            self._add_words(kind, words)

    def _add_words(self, kind: str, words: Iterable[str]) -> None:
        target = getattr(self, kind, None)
        if isinstance(target, set):
            target.update(normalize_reply(str(w)) for w in words or [] if str(w).strip())

    def classify(self, text: str, *, opted_out: bool) -> Keyword | None:
        """Which keyword the whole message is, if any."""
        reply = normalize_reply(text)
        if not reply:
            return None
        if reply in self.opt_out or self._has_opt_out_phrase(reply):
            return "opt_out"
        if reply in self.opt_in or (opted_out and reply == "yes"):
            return "opt_in"
        if reply in self.help:
            return "help"
        return None

    def _has_opt_out_phrase(self, reply: str) -> bool:
        """The whole reply is a phrase (punctuation between words ignored), or it opens or
        closes with a phrase of three words or more (``hi, please stop texting me``). Shorter
        phrases (``please stop``) count only alone, and a phrase in the middle of a sentence
        does not count, so "could the bus please stop at 5th street" is not an opt-out."""
        words = " ".join(tokens(reply))
        if reply in self.opt_out_phrases or words in self.opt_out_phrases:
            return True
        return any(
            len(p.split(" ")) >= 3 and (words.startswith(p + " ") or words.endswith(" " + p))
            for p in self.opt_out_phrases
        )
