"""Reviewed gettext catalogs (``locales/<lang>/LC_MESSAGES/gateway.po``), read straight from
the ``.po`` files: no compiled ``.mo`` to keep in sync."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from gateway.domain.languages import fallback_chain

__all__ = ["CatalogSet", "DOMAIN", "UI_DOMAIN"]

DOMAIN = "gateway"
"""The messages families read (templates, notes, answer labels)."""
UI_DOMAIN = "web"
"""The staff interface (the web app's pages)."""


class CatalogSet:
    """Every shipped catalog, loaded on first use per language."""

    def __init__(self, locales_dir: Path, domain: str = DOMAIN) -> None:
        self.locales_dir = locales_dir
        self.domain = domain
        self._cache: dict[str, tuple[NullTranslations, str | None]] = {}
        self._reviewed: dict[str, frozenset[str]] = {}
        self._lock = threading.Lock()

    def available(self) -> list[str]:
        """Languages with a catalog, as BCP 47 tags (``zh_Hans`` folder → ``zh-Hans``)."""
        if not self.locales_dir.is_dir():
            return []
        return sorted(
            p.name.replace("_", "-")
            for p in self.locales_dir.iterdir()
            if (p / "LC_MESSAGES" / f"{self.domain}.po").is_file()
        )

    def catalog_language(self, language: str) -> str | None:
        """The catalog a family reading ``language`` gets (``es-MX`` → ``es``), or None."""
        return self.translations(language)[1]

    def translations(self, language: str) -> tuple[NullTranslations, str | None]:
        """Gettext translations for ``language`` and the catalog they came from (None: English)."""
        cached = self._cache.get(language)
        if cached is not None:
            return cached
        with self._lock:
            result: tuple[NullTranslations, str | None] = (NullTranslations(), None)
            for candidate in fallback_chain(language):
                path = self.locales_dir / candidate.replace("-", "_") / "LC_MESSAGES" / f"{self.domain}.po"
                if path.is_file():
                    result = (self._load(path, candidate), candidate)
                    break
            self._cache[language] = result
            return result

    def _load(self, path: Path, language: str) -> Translations:
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=language.replace("-", "_"), domain=self.domain, abort_invalid=False)
        reviewed = frozenset(
            m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id and m.string and not m.fuzzy
        )
        self._reviewed[language] = reviewed
        buffer = io.BytesIO()
        write_mo(buffer, catalog, use_fuzzy=False)
        buffer.seek(0)
        return Translations(fp=buffer, domain=self.domain)

    def is_reviewed(self, language: str, msgid: str) -> bool:
        """Whether the catalog for ``language`` has a reviewed translation of ``msgid``."""
        catalog = self.catalog_language(language)
        return catalog is not None and msgid in self._reviewed.get(catalog, frozenset())

    def gettext(self, language: str, message: str, /, **params: Any) -> str:
        """``message`` in ``language`` (English when no catalog has it), ``%(name)s`` filled in."""
        text = self.translations(language)[0].gettext(message)
        return text % params if params else text
