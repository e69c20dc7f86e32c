"""A message's strings in one language, each with where it came from.

Template strings (the gettext msgids of ``{% trans %}`` blocks and the gateway's own ``N_``
constants) are resolved in this order: the reviewed catalog; else the translation memory (a
reviewed import first, then an earlier machine translation); else the machine-translation
engines, once per language, with the result kept in the memory; else the English source, marked
``fallback``. Free text (an event's title and description, a question, a staff answer) goes
through the same memory and engines. The renderer asks a :class:`LanguageStrings` for every
string it prints and records the origin of each, so a summary can say what a family got.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from gateway.translation.catalogs import CatalogSet
from gateway.translation.service import Translated

__all__ = ["LanguageStrings", "Origin", "Resolved", "TranslatedText"]


class Origin(StrEnum):
    """Where one piece of a message came from."""

    SOURCE = "source"
    """No translation needed: the family reads the source language."""
    REVIEWED = "reviewed"
    """A reviewed catalog entry, or a reviewed entry imported into the translation memory."""
    MEMORY = "memory"
    """A machine translation made earlier, from the translation memory."""
    MACHINE = "machine"
    """A machine translation made now."""
    FALLBACK = "fallback"
    """No translation: the source text, sent with a note saying so (in the family's language
    where the note itself is translated)."""
    HELD = "held"
    """No translation, and ``translation.fallback: hold``: the message waits for a person."""

    @property
    def is_machine(self) -> bool:
        """Whether the family reads a machine translation."""
        return self in (Origin.MEMORY, Origin.MACHINE)

    @property
    def untranslated(self) -> bool:
        """Whether the family reads the source language instead of its own."""
        return self in (Origin.FALLBACK, Origin.HELD)


@dataclass(frozen=True, slots=True)
class Resolved:
    """One string in the family's language and where it came from."""

    text: str
    origin: Origin
    engine: str | None = None
    reason: str | None = None


class TranslatedText(str):
    """A free text in the family's language that remembers its origin (for the record the
    renderer keeps of each message). Behaves exactly like ``str`` in templates."""

    origin: Origin
    engine: str | None
    source: str

    def __new__(
        cls, text: str, origin: Origin, engine: str | None = None, source: str = ""
    ) -> TranslatedText:
        value = super().__new__(cls, text)
        value.origin = origin
        value.engine = engine
        value.source = source
        return value


def _origin(translated: Translated) -> Origin:
    return Origin(translated.origin)


class LanguageStrings:
    """Template strings and free texts of one language, resolved (see the module docstring)."""

    def __init__(
        self,
        language: str,
        catalogs: CatalogSet,
        *,
        source_language: str = "en",
        machine: Mapping[str, Translated] | None = None,
    ) -> None:
        self.language = language
        self.catalogs = catalogs
        self.source_language = source_language
        self.same_language = language.split("-")[0].lower() == source_language.split("-")[0].lower()
        self._translations = catalogs.translations(language)[0]
        self._machine: dict[str, Translated] = dict(machine or {})

    # -- template strings ---------------------------------------------------------------
    def reviewed(self, msgid: str) -> bool:
        """Whether the reviewed catalog has ``msgid`` (the singular, for a plural entry)."""
        return self.catalogs.is_reviewed(self.language, msgid)

    def missing(self, msgids: Iterable[str]) -> list[str]:
        """Of ``msgids``, those the catalog does not have and no resolution is known for yet."""
        if self.same_language:
            return []
        return [m for m in msgids if m and not self.reviewed(m) and m not in self._machine]

    def add(self, resolved: Mapping[str, Translated]) -> None:
        """Take translations of strings the catalog lacks (from the memory or an engine)."""
        self._machine.update(resolved)

    def gettext(self, msgid: str) -> Resolved:
        """``msgid`` in this language."""
        if self.same_language:
            return Resolved(msgid, Origin.SOURCE)
        if self.reviewed(msgid):
            return Resolved(self._translations.gettext(msgid), Origin.REVIEWED)
        found = self._machine.get(msgid)
        if found is None or not found.text.strip():
            return Resolved(msgid, Origin.FALLBACK)
        return Resolved(found.text, _origin(found), found.engine, getattr(found, "reason", None))

    def ngettext(self, singular: str, plural: str, n: int) -> Resolved:
        """The form of ``singular`` / ``plural`` for ``n``. A reviewed catalog knows the
        language's plural rule; a machine translation of both forms picks singular for 1."""
        if self.same_language:
            return Resolved(singular if n == 1 else plural, Origin.SOURCE)
        if self.reviewed(singular):
            return Resolved(self._translations.ngettext(singular, plural, n), Origin.REVIEWED)
        return self.gettext(singular if n == 1 else plural)

    # -- free text ------------------------------------------------------------------------
    def text(self, source: str | None) -> TranslatedText | None:
        """A free text in this language (None stays None, so templates can test for it)."""
        if source is None:
            return None
        found = self._machine.get(source)
        if found is None and (self.same_language or not source.strip()):
            return TranslatedText(source, Origin.SOURCE, source=source)
        if found is None:
            return TranslatedText(source, Origin.FALLBACK, source=source)
        return TranslatedText(found.text, _origin(found), found.engine, source=source)

    def reason(self, source: str) -> str | None:
        """Why ``source`` (a msgid or free text) stayed untranslated, as the translation service
        said (``no engine``, ``unreachable``, ``timeout``, ``refused``, ``placeholder lost``...)."""
        found = self._machine.get(source)
        if found is None:
            return None if (self.same_language or self.reviewed(source)) else "no engine"
        return getattr(found, "reason", None)

    # -- summaries ------------------------------------------------------------------------
    def origins(self, sources: Iterable[str]) -> dict[str, Origin]:
        """The origin of each of ``sources`` (template msgids or free texts)."""
        out = {}
        for source in sources:
            if self.same_language:
                out[source] = Origin.SOURCE
            elif self.reviewed(source):
                out[source] = Origin.REVIEWED
            else:
                found = self._machine.get(source)
                out[source] = _origin(found) if found is not None else Origin.FALLBACK
        return out
