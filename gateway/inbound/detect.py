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
from concurrent.futures import ProcessPoolExecutor
from typing import Any

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


def _detect_in_worker(text: str) -> str | None:
    global _WORKER_DETECTOR
    if _WORKER_DETECTOR is None:
        _WORKER_DETECTOR = LanguageDetector()
    return _WORKER_DETECTOR.detect(text)

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

    async def detect_async(self, text: str) -> str | None:
        """:meth:`detect` in the shared worker process (see the module doc); in this process's
        worker thread when the worker process cannot be started or has died."""
        if len(text.strip()) < MIN_CHARACTERS:
            return None
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(_pool(), _detect_in_worker, text)
        except (OSError, RuntimeError):  # BrokenProcessPool is a RuntimeError
            _reset_pool()
            return await asyncio.to_thread(self.detect, text)

    def detect(self, text: str) -> str | None:
        """ISO 639-1 code of the most likely language, if confident enough (blocking)."""
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


def _reset_pool() -> None:
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
