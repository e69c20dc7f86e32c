"""Compliance keywords: opt-out, opt-in and HELP, in English and every language of
``locales/keywords.yaml`` plus config.

``STOP, UNSUBSCRIBE, CANCEL, END, QUIT`` opt out of the channel the reply came on; ``STOP ALL,
STOPALL, UNSUBSCRIBE ALL`` (and their equivalents in ``locales/keywords.yaml``: ``opt_out_all``)
opt out of every channel; ``START, UNSTOP`` opt in (``YES`` only while the endpoint is opted
out); ``HELP, INFO`` get the help text. A family's reply is read with the words of its own
language and English — never another language's: "acha" stops a Swahili family's messages, and
is "OK" from a Hindi or Urdu one. Keywords count as the whole message; an opt-out keyword or
phrase also counts at the start or the end of a short message whose other words only say
"please", "me", "messages"... (``locales/fillers.yaml``: ``politeness`` and ``opt_out_context``):
``STOP PLEASE``, ``Hi. Please stop texting me``, ``por favor no más mensajes``. A longer
message, or one with other words (``cancel my RSVP``, ``I got no more messages``), is not an
opt-out: staff read it, flagged as a possible opt-out when it mentions one in any language
(:meth:`KeywordTable.mentions_opt_out`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from gateway.domain.languages import fallback_chain
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
    """Normalised keyword sets: of every language together (the attributes), and per language
    (:meth:`for_language`)."""

    opt_out: set[str] = field(default_factory=set)
    opt_out_all: set[str] = field(default_factory=set)
    """Opt out of every channel, not only the one the reply came on."""
    opt_in: set[str] = field(default_factory=set)
    help: set[str] = field(default_factory=set)
    opt_out_phrases: set[str] = field(default_factory=set)
    context: set[str] = field(default_factory=set)
    """Words that may stand beside an opt-out keyword in a short opt-out message."""
    languages: dict[str, KeywordTable] = field(default_factory=dict)
    """The words of each language (BCP 47 code) alone."""
    _chains: dict[str, KeywordTable] = field(default_factory=dict, repr=False)

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
                    for language, words in (per_language or {}).items():
                        table._add_words(str(language), kind, words)
            else:  # language → kind → words
                for language, kinds in data.items():
                    table._add(str(language), kinds or {})
        for kind, per_language in (extra or {}).items():
            for language, words in per_language.items():
                table._add_words(str(language), kind, words)
        return table

    def _add(self, language: str, kinds: Mapping[str, Iterable[str]]) -> None:
        for kind, words in kinds.items():
            self._add_words(language, kind, words)

    def _add_words(self, language: str, kind: str, words: Iterable[str]) -> None:
        if kind not in KINDS:
            return
        own = self.languages.setdefault(language, KeywordTable())
        normalized = {normalize_reply(str(w)) for w in words or [] if str(w).strip()}
        getattr(self, kind).update(normalized)
        getattr(own, kind).update(normalized)
        self._chains.clear()

    def for_language(self, language: str | None) -> KeywordTable:
        """The words a reply of a family reading ``language`` is read with: English and that
        language (its fallback chain: ``es-MX`` → ``es``); every language when it is unknown."""
        if language is None:
            return self
        table = self._chains.get(language)
        if table is None:
            table = KeywordTable(context=self.context)
            for code in ("en", *fallback_chain(language)):
                own = self.languages.get(code)
                if own is not None:
                    for kind in KINDS:
                        getattr(table, kind).update(getattr(own, kind))
            self._chains[language] = table
        return table

    def classify(self, text: str, *, opted_out: bool, language: str | None = None) -> Keyword | None:
        """Which keyword the message is, if any (see the module docstring), read with the words
        of ``language`` and English (every language's when ``language`` is None)."""
        words = self.for_language(language)
        reply = normalize_reply(text)
        if not reply:
            return None
        if reply in words.opt_out_all or " ".join(tokens(reply)) in words.opt_out_all:
            return "opt_out_all"
        if words._short_opt_out(reply, words.opt_out_all):
            return "opt_out_all"
        if reply in words.opt_out or words._whole_phrase(reply) or words._short_opt_out(reply):
            return "opt_out"
        if reply in words.opt_in or (opted_out and reply == "yes"):
            return "opt_in"
        if reply in words.help:
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

    def _whole_phrase(self, reply: str) -> bool:
        """The whole reply is an opt-out phrase (punctuation between words ignored). A phrase
        with other words around it counts only beside context words (:meth:`_short_opt_out`),
        so "could the bus please stop at 5th street" and "I got no more messages" are not
        opt-outs."""
        return reply in self.opt_out_phrases or " ".join(tokens(reply)) in self.opt_out_phrases
