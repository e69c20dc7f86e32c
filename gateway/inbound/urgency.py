"""Urgent replies, in every shipped language: weapons, threats, violence, self-harm, abuse, a
medical emergency (``locales/urgent.yaml`` plus ``inbound.urgent_words``).

A reply is urgent when the reply or its staff-language translation contains one of the words.
Entries match whole words; an entry ending in ``*`` is a stem matching the start of a word
(``kill*`` → "killed"). In scripts written without spaces between words (Chinese, Japanese,
Thai, Burmese, Khmer, Lao) an entry matches anywhere in the text; so does an Arabic-script entry
of three letters or more, since words carry attached prefixes (``ال``, ``و``, ``ب``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gateway.inbound.normalize import normalize_reply

__all__ = ["UrgentWords"]

#: Scripts where words are not separated by spaces.
_NO_SPACES = re.compile("[\u4e00-\u9fff\u3040-\u30ff\u0e00-\u0e7f\u1000-\u109f\u1780-\u17ff\u0e80-\u0eff]")
#: Arabic script: words carry attached prefixes; entries of three letters or more match inside
#: a word, shorter ones (Dari "بم", bomb) only alone, or "ربما" (maybe) would be a bomb.
_ARABIC = re.compile("[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff]")


@dataclass
class UrgentWords:
    """The compiled urgent-word patterns of every language."""

    patterns: list[re.Pattern[str]] = field(default_factory=list)
    anywhere: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, locales_dir: Path, extra: Iterable[str] = ()) -> UrgentWords:
        """``locales/urgent.yaml`` (language → words) and the configured extra words."""
        words: list[str] = [str(w) for w in extra if str(w).strip()]
        path = locales_dir / "urgent.yaml"
        if path.is_file():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            for entries in data.values():
                words += [str(w) for w in entries or [] if str(w).strip()]
        table = cls()
        for word in dict.fromkeys(words):
            table.add(word)
        return table

    def add(self, word: str) -> None:
        """One entry (``*`` at the end: a stem)."""
        stem = word.endswith("*")
        text = normalize_reply(word.rstrip("*"))
        if not text:
            return
        if _NO_SPACES.search(text) or (_ARABIC.search(text) and len(text.replace(" ", "")) >= 3):
            self.anywhere.append(text)
            return
        body = r"\s+".join(re.escape(part) for part in text.split())
        self.patterns.append(re.compile(rf"(?<!\w){body}" + ("" if stem else r"(?!\w)")))

    def is_urgent(self, *texts: str | None) -> bool:
        """Whether any of ``texts`` (a reply, its translation) holds an urgent word."""
        for text in texts:
            if not text:
                continue
            normal = normalize_reply(text)
            if any(word in normal for word in self.anywhere):
                return True
            if any(pattern.search(normal) for pattern in self.patterns):
                return True
        return False
