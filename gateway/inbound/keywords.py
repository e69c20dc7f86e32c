"""Compliance keywords: opt-out, opt-in and HELP, in English and every language of
``locales/keywords.yaml`` plus config.

``STOP, UNSUBSCRIBE, CANCEL, END, QUIT`` opt out of the channel the reply came on; ``STOP ALL,
STOPALL, UNSUBSCRIBE ALL`` (and their equivalents in ``locales/keywords.yaml``: ``opt_out_all``)
opt out of every channel; ``START, UNSTOP`` opt in (``YES`` only while the endpoint is opted
out); ``HELP, INFO`` get the help text. Keywords count as the
whole message; an opt-out keyword or phrase of any language also counts at the start or the end
of a short message whose other words only say "please", "me", "messages"...
(``locales/fillers.yaml``: ``politeness`` and ``opt_out_context``): ``STOP PLEASE``,
``stop texting me``, ``por favor no más mensajes``. A longer message, or one with other words
(``cancel my RSVP``), is not an opt-out: staff read it, flagged as a possible opt-out when it
mentions one (:meth:`KeywordTable.mentions_opt_out`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from gateway.inbound.normalize import normalize_reply, tokens

__all__ = ["KeywordTable", "Keyword"]

Keyword = Literal["opt_out", "opt_out_all", "opt_in", "help"]

ENGLISH: dict[str, list[str]] = {
    "opt_out": ["stop", "unsubscribe", "cancel", "end", "quit"],
    "opt_out_all": ["stop all", "stopall", "unsubscribe all", "stop everything", "cancel all"],
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
KINDS = ("opt_out", "opt_out_all", "opt_in", "help", "opt_out_phrases")


@dataclass
class KeywordTable:
    """Normalised keyword sets."""

    opt_out: set[str] = field(default_factory=set)
    opt_out_all: set[str] = field(default_factory=set)
    """Opt out of every channel, not only the one the reply came on."""
    opt_in: set[str] = field(default_factory=set)
    help: set[str] = field(default_factory=set)
    opt_out_phrases: set[str] = field(default_factory=set)
    context: set[str] = field(default_factory=set)
    """Words that may stand beside an opt-out keyword in a short opt-out message."""

    @classmethod
    def load(
        cls, locales_dir: Path, extra: Mapping[str, Mapping[str, Iterable[str]]] | None = None
    ) -> KeywordTable:
        """English built-ins + ``locales/keywords.yaml`` + config (``kind → language → words``),
        and the context words of ``locales/fillers.yaml``."""
        table = cls()
        table._add("en", ENGLISH)
        fillers = locales_dir / "fillers.yaml"
        if fillers.is_file():
            for kinds in (yaml.safe_load(fillers.read_text(encoding="utf-8")) or {}).values():
                for kind in ("politeness", "opt_out_context"):
                    for word in (kinds or {}).get(kind) or []:
                        table.context.update(tokens(str(word)))
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
        """Which keyword the message is, if any (see the module docstring)."""
        reply = normalize_reply(text)
        if not reply:
            return None
        if reply in self.opt_out_all or " ".join(tokens(reply)) in self.opt_out_all:
            return "opt_out_all"
        if self._short_opt_out(reply, self.opt_out_all):
            return "opt_out_all"
        if reply in self.opt_out or self._has_opt_out_phrase(reply) or self._short_opt_out(reply):
            return "opt_out"
        if reply in self.opt_in or (opted_out and reply == "yes"):
            return "opt_in"
        if reply in self.help:
            return "help"
        return None

    #: At most this many words for a keyword at the start or end of a message to count.
    SHORT_MESSAGE_WORDS = 6

    def _short_opt_out(self, reply: str, entries: set[str] | None = None) -> bool:
        """An opt-out keyword or phrase (of ``entries``; default: the one-channel opt-outs)
        opening or closing a short message whose other words are all context words ("please",
        "me", "messages", "now")."""
        words = tokens(reply)
        if not words or len(words) > self.SHORT_MESSAGE_WORDS:
            return False
        for entry in self.opt_out | self.opt_out_phrases if entries is None else entries:
            keyword = entry.split(" ")
            n = len(keyword)
            if n >= len(words):
                continue
            rests = []
            if words[:n] == keyword:
                rests.append(words[n:])
            if words[-n:] == keyword:
                rests.append(words[:-n])
            if any(all(w in self.context for w in rest) for rest in rests):
                return True
        return False

    def mentions_opt_out(self, text: str) -> bool:
        """Whether a message that is not an opt-out still mentions one (a word or phrase of the
        opt-out lists anywhere in it): staff see it flagged as a possible opt-out."""
        words = " " + " ".join(tokens(normalize_reply(text))) + " "
        entries = self.opt_out | self.opt_out_all | self.opt_out_phrases
        return any(f" {entry} " in words for entry in entries if len(entry) > 2)

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
