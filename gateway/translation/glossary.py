"""The district glossary: fixed renderings per language, or terms kept as they are.

```yaml
terms:
  FAFSA: keep                      # never translated
  IEP:
    es: IEP (Programa de Educación Individualizada)
    default: keep                  # other languages: keep as is
  Family Math Night:
    es: Noche Familiar de Matemáticas
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gateway.domain.languages import fallback_chain
from gateway.errors import ConfigError

__all__ = ["Glossary"]


@dataclass(frozen=True)
class Glossary:
    """Term → {language: rendering}; ``None`` as a rendering means keep the term as is."""

    terms: dict[str, dict[str, str | None]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None) -> Glossary:
        """Read a glossary file; errors name the file and the term."""
        if path is None:
            return cls()
        if not path.is_file():
            raise ConfigError(f"translation.glossary: {path}: no such file")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        raw = data.get("terms", data) if isinstance(data, dict) else None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of terms")
        terms: dict[str, dict[str, str | None]] = {}
        for term, spec in raw.items():
            if spec in ("keep", None, True):
                terms[str(term)] = {"default": None}
            elif isinstance(spec, dict):
                terms[str(term)] = {
                    str(lang): (None if value in ("keep", None) else str(value))
                    for lang, value in spec.items()
                }
            else:
                raise ConfigError(f"{path}: term {term!r}: use 'keep' or a mapping of language: text")
        return cls(terms)

    def for_language(self, language: str) -> dict[str, str]:
        """Term → what it becomes in ``language`` (the term itself when kept as is)."""
        result: dict[str, str] = {}
        for term, renderings in self.terms.items():
            rendering: str | None = term
            for candidate in (*fallback_chain(language), "default"):
                if candidate in renderings:
                    rendering = renderings[candidate] or term
                    break
            result[term] = rendering or term
        return result
