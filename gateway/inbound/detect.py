"""Language detection of free-text replies (lingua), loaded only when first needed.

Lingua's first detection loads every language model (about 20 s and 900 MB here) without
letting go of the GIL, so from a worker thread it would still freeze the event loop of
``gateway serve`` for that long. :meth:`LanguageDetector.detect_async` therefore runs it in one
worker process, shared by every detector of the process and started on first use.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from gateway.domain.languages import likely_script

__all__ = ["LanguageDetector"]

_POOL: ProcessPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
_WORKER_DETECTOR: LanguageDetector | None = None


def _pool() -> ProcessPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            # spawn, not fork: the parent runs threads (database, IMAP) that fork would copy mid-work.
            _POOL = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return _POOL


def _detect_in_worker(text: str, between: tuple[str, ...] = ()) -> str | None:
    global _WORKER_DETECTOR
    if _WORKER_DETECTOR is None:
        _WORKER_DETECTOR = LanguageDetector()
    return _WORKER_DETECTOR.detect(text, between)

MIN_CHARACTERS = 12
MIN_CONFIDENCE = 0.6
#: Between two expected languages (the family's and the staff's), the likelier must be ranked
#: first of all languages and this many times likelier than the other.
BETWEEN_RATIO = 3.0


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

    async def detect_async(self, text: str, between: tuple[str, ...] = ()) -> str | None:
        """:meth:`detect` in the shared worker process (see the module doc); in this process's
        worker thread when the worker process cannot be started or has died."""
        if len(text.strip()) < MIN_CHARACTERS:
            return None
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(_pool(), _detect_in_worker, text, between)
        except (OSError, RuntimeError):  # BrokenProcessPool is a RuntimeError
            _reset_pool()
            return await asyncio.to_thread(self.detect, text, between)

    def detect(self, text: str, between: tuple[str, ...] = ()) -> str | None:
        """ISO 639-1 code of the most likely language, if confident enough (blocking).

        ``between``: the languages the reply is expected in (the family's and the staff's).
        A short reply is rarely confident among all languages ("I can't come, my son is sick"
        is 10 % English); it is still that one of them when it ranks first of all languages and
        is :data:`BETWEEN_RATIO` times likelier than the others of ``between``."""
        if len(text.strip()) < MIN_CHARACTERS:
            return None
        values = self._get().compute_language_confidence_values(text)
        if not values:
            return None
        best = values[0]
        code = _code(best)
        if best.value >= MIN_CONFIDENCE:
            return code
        expected = {c.split("-")[0].lower(): c for c in between}
        scores = {_code(v): v.value for v in values if _code(v) in expected}
        if code not in expected:
            return None
        for missing, tag in expected.items():
            # A language the detector cannot weigh (Burmese, Haitian Creole...) is ruled out only
            # when it is written in another script than the whole reply (Burmese, by a reply all
            # in Latin letters); a Latin-script one (Haitian Creole) cannot be told from English.
            if missing not in scores and not (_latin_only(text) and likely_script(tag) not in (None, "Latn")):
                return None
        if all(best.value >= BETWEEN_RATIO * other for c, other in scores.items() if c != code):
            return code
        return None


def _latin_only(text: str) -> bool:
    """Whether every letter of ``text`` is a Latin one."""
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and all("LATIN" in unicodedata.name(ch, "") for ch in letters)


def _code(value: Any) -> str | None:
    """The ISO 639-1 code of a lingua confidence value's language (None when it has none)."""
    iso = value.language.iso_code_639_1
    return str(iso.name).lower() if iso is not None else None


def _reset_pool() -> None:
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
