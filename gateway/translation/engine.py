"""The translation engine plugin contract.

An engine plugin subclasses :class:`TranslationEngine`, names itself (:attr:`~TranslationEngine.name`,
the word listed in ``translation.engines``) and declares its settings as a pydantic model
(:attr:`~TranslationEngine.Settings`, a subclass of :class:`EngineSettings`). The core validates
``translation.engine_settings.<name>`` with that model before the engine is built, so a typo
stops the gateway with its key path, exactly as channel settings do.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.errors import ConfigError

__all__ = ["EngineContext", "EngineInfo", "EngineSettings", "TranslationEngine"]


class EngineSettings(BaseModel):
    """Settings of an engine (``translation.engine_settings.<name>``). Engines subclass it.

    Unknown keys are refused, so a typo in ``config.yaml`` fails at start with its key path.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class EngineContext:
    """What the core gives an engine: its settings and a data folder of its own.

    ``settings`` is the validated :class:`EngineSettings` instance when the core builds the
    engine; a plain mapping (as a test may pass) is validated by the engine's constructor.
    """

    data_dir: Path
    settings: Mapping[str, Any] | EngineSettings


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """What an engine says about itself for ``gateway translate languages``.

    ``languages``: BCP 47 tags it can translate into from the source language;
    ``codes``: the engine's own code for each of them, where it differs (``so`` → ``som_Latn``);
    ``licence``: the licence of the models or service doing the work (``None`` when unknown);
    ``source``: where translations come from (a model folder, a server URL without secrets);
    ``notes``: anything an operator must know (a non-commercial licence, a missing file).
    """

    languages: tuple[str, ...] = ()
    codes: Mapping[str, str] = field(default_factory=dict)
    licence: str | None = None
    source: str | None = None
    notes: tuple[str, ...] = ()


class TranslationEngine(abc.ABC):
    """Base class of machine-translation engines.

    Engines are listed by :attr:`name` in ``translation.engines``; the translation service asks
    them in that order and takes the first translation that keeps every placeholder.
    Language codes are BCP 47 (``es``, ``zh-Hans``, ``prs``); engines map them to their own.
    Failures are raised as :class:`gateway.TranslationError` subclasses whose ``reason`` says
    what happened (:class:`gateway.EngineUnavailableError`, :class:`gateway.EngineRefusedError`).
    """

    name: ClassVar[str]
    Settings: ClassVar[type[EngineSettings]] = EngineSettings
    """The pydantic model of this engine's settings (no keys by default)."""

    def __init__(self, context: EngineContext) -> None:
        self.context = context
        self.settings: EngineSettings = self.parse_settings(context.settings)

    @classmethod
    def parse_settings(
        cls,
        raw: Mapping[str, Any] | EngineSettings | None,
        where: str = "config",
        base_dir: Path | None = None,
    ) -> EngineSettings:
        """Validate ``translation.engine_settings.<name>``; raise :class:`gateway.ConfigError`
        naming the file and the key path (``config.yaml: translation.engine_settings.x.y: ...``).

        Validators find the config file's folder (relative paths are relative to it) as
        ``base_dir`` in the pydantic validation context.
        """
        if isinstance(raw, cls.Settings):
            return raw
        if isinstance(raw, EngineSettings):
            raw = raw.model_dump()
        from gateway.config import format_validation_error

        try:
            return cls.Settings.model_validate(dict(raw or {}), context={"base_dir": base_dir})
        except ValidationError as exc:
            prefix = f"translation.engine_settings.{cls.name}."
            raise ConfigError(format_validation_error(exc, where, prefix=prefix)) from None

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

    async def describe(self, source: str = "en") -> EngineInfo:
        """What this engine covers from ``source`` (default: read from :meth:`language_pairs`).

        Engines override it to report their licence and the source of their translations;
        it may do I/O (a remote engine asks its server).
        """
        pairs = await asyncio.to_thread(self.language_pairs) if self.available() else []
        languages = sorted({target for start, target in pairs if start == source})
        return EngineInfo(languages=tuple(languages))

    async def aclose(self) -> None:
        """Release what the engine holds (HTTP sessions, thread pools); called at shutdown."""
        close = getattr(self, "close", None)
        if callable(close):
            close()
