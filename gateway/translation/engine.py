"""The translation engine plugin contract."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["EngineContext", "TranslationEngine"]


@dataclass(frozen=True, slots=True)
class EngineContext:
    """What the core gives an engine: its settings and a data folder of its own."""

    data_dir: Path
    settings: Mapping[str, Any]


class TranslationEngine(abc.ABC):
    """Base class of machine-translation engines.

    Engines are listed by :attr:`name` in ``translation.engines``; the translation service asks
    them in that order and takes the first translation that keeps every placeholder.
    Language codes are BCP 47 (``es``, ``zh-Hans``, ``prs``); engines map them to their own.
    """

    name: ClassVar[str]

    def __init__(self, context: EngineContext) -> None:
        self.context = context

    def available(self) -> bool:
        """Whether the engine can run at all here (library importable, models present)."""
        return True

    @abc.abstractmethod
    def language_pairs(self) -> list[tuple[str, str]]:
        """Every (source, target) pair this engine can translate, pivots included."""

    def can_translate(self, source: str, target: str) -> bool:
        """Whether ``source`` → ``target`` is possible."""
        return (source, target) in set(self.language_pairs())

    @abc.abstractmethod
    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        """Translate a batch; must not block the event loop (use a thread or process pool)."""
