"""Language detection of free-text replies (lingua), loaded only when first needed."""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["LanguageDetector"]

MIN_CHARACTERS = 12
MIN_CONFIDENCE = 0.6


class LanguageDetector:
    """Detects the language of a reply; None when the text is too short or unclear."""

    def __init__(self) -> None:
        self._detector: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        if self._detector is None:
            with self._lock:
                if self._detector is None:
                    from lingua import LanguageDetectorBuilder

                    self._detector = LanguageDetectorBuilder.from_all_languages().build()
        return self._detector

    def detect(self, text: str) -> str | None:
        """ISO 639-1 code of the most likely language, if confident enough."""
        if len(text.strip()) < MIN_CHARACTERS:
            return None
        values = self._get().compute_language_confidence_values(text)
        if not values:
            return None
        best = values[0]
        if best.value < MIN_CONFIDENCE:
            return None
        iso = best.language.iso_code_639_1
        return str(iso.name).lower() if iso is not None else None
