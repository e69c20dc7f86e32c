"""What ships inside the package: message templates, reviewed catalogs and word tables,
examples and the documented example configuration.

Found with :mod:`importlib.resources`, never by a path relative to a source tree, so an
installed wheel finds them exactly as a checkout does:

- ``templates/`` — the shipped message templates (``paths.templates`` overrides them);
- ``locales/`` — ``gateway.pot``, reviewed catalogs per language, ``answers.yaml`` and
  ``keywords.yaml`` (``paths.locales`` overrides them);
- ``examples/`` — sample families CSV, event and survey files (the demo uses them);
- ``config.example.yaml`` — every configuration key, commented (``gateway init`` copies it).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["EXAMPLE_CONFIG", "SHIPPED_EXAMPLES", "SHIPPED_LOCALES", "SHIPPED_TEMPLATES", "resource_path"]


def resource_path(name: str) -> Path:
    """The file-system path of a shipped resource (``templates``, ``locales``, ...)."""
    root = files(__name__)
    path = Path(str(root.joinpath(name)))
    if not path.exists():  # pragma: no cover - a broken install
        raise FileNotFoundError(f"shipped resource {name!r} is missing from {root} (reinstall the package)")
    return path


SHIPPED_TEMPLATES = resource_path("templates")
SHIPPED_LOCALES = resource_path("locales")
SHIPPED_EXAMPLES = resource_path("examples")
EXAMPLE_CONFIG = resource_path("config.example.yaml")
