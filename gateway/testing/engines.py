"""A deterministic translation engine for behaviour tests and benchmarks.

``TableEngine`` "translates" by a fixed word table and prefixes the result with the target
language in brackets (``"[es] taller de lectura"``), so a test can tell at a glance which text
went through an engine. It records every batch it receives, and a test can tell it to misbehave
(drop, duplicate or mangle placeholder tokens, or fail outright) to exercise the fallback policy.

Register it through the real ``gateway_translation_engines`` hook with a plugin object::

    plugin = DeterministicEnginePlugin()
    async with open_gateway(config, extra_plugins=(plugin,)) as gw:
        ...
    plugin.recorder.calls        # engine.translate() calls, all engines together
    plugin.recorder.seen         # [(engine, source, target, text), ...] as the engine saw them

The plugin provides two engines, ``table`` and ``table2`` (``translation.engines`` picks them),
so a test of the ``next_engine`` fallback can make the first one misbehave. Settings under
``translation.engine_settings.<name>``: ``mode`` (``ok``, ``drop``, ``duplicate``, ``mangle``,
``fail``), ``languages`` (target languages it accepts; default: any), ``prefix`` (default
true). ``recorder.modes[name] = ...`` overrides the mode at run time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import Field

from gateway import EngineContext, EngineSettings, TranslationEngine, TranslationError, hookimpl

__all__ = [
    "WORD_TABLE",
    "DeterministicEnginePlugin",
    "EngineRecorder",
    "TableEngine",
    "TableEngineSettings",
]

#: English word → rendering per language. Words not in the table are copied unchanged.
WORD_TABLE: Mapping[str, Mapping[str, str]] = {
    "es": {
        "reading": "lectura",
        "workshop": "taller",
        "family": "familia",
        "families": "familias",
        "night": "noche",
        "math": "matemáticas",
        "library": "biblioteca",
        "child": "niño",
        "school": "escuela",
        "bus": "autobús",
        "snacks": "meriendas",
        "welcome": "bienvenidos",
        "thank": "gracias",
    },
    "ar": {
        "reading": "القراءة",
        "workshop": "ورشة",
        "family": "العائلة",
        "families": "العائلات",
        "night": "ليلة",
        "math": "الرياضيات",
        "library": "المكتبة",
        "child": "طفل",
        "school": "المدرسة",
        "bus": "حافلة",
        "snacks": "وجبات",
        "welcome": "مرحبا",
        "yes": "نعم",
        "thank": "شكرا",
    },
    "my": {
        "reading": "စာဖတ်",
        "workshop": "အလုပ်ရုံ",
        "family": "မိသားစု",
        "families": "မိသားစုများ",
        "night": "ည",
        "math": "သင်္ချာ",
        "library": "စာကြည့်တိုက်",
        "child": "ကလေး",
        "school": "ကျောင်း",
        "bus": "ဘတ်စ်ကား",
        "welcome": "ကြိုဆိုပါတယ်",
        "thank": "ကျေးဇူး",
    },
    "so": {
        "reading": "akhris",
        "workshop": "aqoon-is-weydaarsi",
        "family": "qoys",
        "night": "habeen",
        "school": "dugsi",
    },
    "ht": {
        "reading": "lekti",
        "workshop": "atelye",
        "family": "fanmi",
        "night": "swa",
        "school": "lekòl",
        "library": "bibliyotèk",
        "morning": "maten",
        "afternoon": "apremidi",
        "bus": "bis",
        "yes": "wi",
        "there": "genyen",
    },
    "rw": {
        "reading": "gusoma",
        "workshop": "amahugurwa",
        "family": "umuryango",
        "night": "ijoro",
        "school": "ishuri",
        "library": "isomero",
        "morning": "mu gitondo",
        "afternoon": "ku gicamunsi",
        "bus": "bisi",
    },
    "vi": {
        "reading": "đọc",
        "workshop": "hội thảo",
        "family": "gia đình",
        "night": "đêm",
        "school": "trường",
    },
}

_REVERSE: dict[str, dict[str, str]] = {
    language: {target: source for source, target in table.items()} for language, table in WORD_TABLE.items()
}
# Extra words a family might write, for the way back into English.
_REVERSE["ar"].update({"هل": "is", "توجد": "there", "إلى": "to", "الورشة": "the workshop"})
_REVERSE["es"].update({"hay": "is there", "para": "for", "el": "the", "taller": "workshop"})
_REVERSE["ht"].update({"eske": "is", "gen": "there", "pou": "for"})

_TOKEN = re.compile(r"[\[［]\s*\d{1,4}\s*[\]］]")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
MODES = ("ok", "drop", "duplicate", "mangle", "fail")


@dataclass
class EngineRecorder:
    """What the engines of one plugin object received, and how they should behave."""

    calls: int = 0
    seen: list[tuple[str, str, str, str]] = field(default_factory=list)
    modes: dict[str, str] = field(default_factory=dict)

    def texts(self, engine: str | None = None, target: str | None = None) -> list[str]:
        """Texts the engines received (optionally of one engine and one target language)."""
        return [
            text
            for name, _, language, text in self.seen
            if (engine is None or name == engine) and (target is None or language == target)
        ]

    def reset(self) -> None:
        """Forget what was recorded (the modes stay)."""
        self.calls = 0
        self.seen.clear()


class TableEngineSettings(EngineSettings):
    """``translation.engine_settings.table`` (and ``table2``)."""

    mode: Literal["ok", "drop", "duplicate", "mangle", "fail"] = "ok"
    languages: list[str] | None = Field(default=None, description="Target languages accepted.")
    prefix: bool = True


class TableEngine(TranslationEngine):
    """Word-table translation with a ``[xx]`` prefix; see the module docstring."""

    name: ClassVar[str] = "table"
    Settings: ClassVar[type[EngineSettings]] = TableEngineSettings
    recorder: ClassVar[EngineRecorder] = EngineRecorder()

    def __init__(self, context: EngineContext) -> None:
        super().__init__(context)
        settings = self.settings
        assert isinstance(settings, TableEngineSettings)
        self.default_mode = settings.mode
        languages = settings.languages
        self.languages = {str(x).lower() for x in languages} if languages else None
        self.prefix = settings.prefix

    @property
    def mode(self) -> str:
        """The current behaviour (the recorder's override, else the setting)."""
        return self.recorder.modes.get(self.name, self.default_mode)

    def language_pairs(self) -> list[tuple[str, str]]:
        """Every pair between English and the table's languages (or the configured ones)."""
        languages = sorted(self.languages or {*WORD_TABLE, "fr", "sw", "ne", "prs", "zh-Hans"})
        return [("en", lang) for lang in languages] + [(lang, "en") for lang in languages]

    def can_translate(self, source: str, target: str) -> bool:
        """Any pair into a configured language (any language when none are configured)."""
        if source.lower() == target.lower():
            return False
        return self.languages is None or target.lower() in self.languages

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        """Translate word by word, then misbehave as told."""
        self.recorder.calls += 1
        for text in texts:
            self.recorder.seen.append((self.name, source, target, text))
        if self.mode == "fail":
            raise TranslationError(f"{self.name}: told to fail")
        return [self._damage(self._translate(text, source, target)) for text in texts]

    def _translate(self, text: str, source: str, target: str) -> str:
        base = target.split("-")[0].lower()
        if base == "en":
            table = _REVERSE.get(source.split("-")[0].lower(), {})
        else:
            table = dict(WORD_TABLE.get(base, {}))

        def replace(match: re.Match[str]) -> str:
            word = match.group(0)
            rendering = table.get(word.lower())
            if rendering is None:
                return word
            return rendering.capitalize() if word[0].isupper() and rendering.isascii() else rendering

        translated = _WORD.sub(replace, text)
        return f"[{base}] {translated}" if self.prefix else translated

    def _damage(self, text: str) -> str:
        mode = self.mode
        if mode == "drop":
            return _TOKEN.sub("", text)
        if mode == "duplicate":
            match = _TOKEN.search(text)
            return text + " " + match.group(0) if match else text
        if mode == "mangle":
            return _TOKEN.sub(lambda m: "(" + m.group(0)[1:-1] + ")", text)
        return text


class DeterministicEnginePlugin:
    """A plugin object providing ``table`` and ``table2`` that share one :class:`EngineRecorder`."""

    def __init__(self, recorder: EngineRecorder | None = None) -> None:
        self.recorder = recorder or EngineRecorder()
        attributes: dict[str, Any] = {"recorder": self.recorder}
        self.engine_types: list[type[TableEngine]] = [
            type("TableEngine", (TableEngine,), {**attributes, "name": "table"}),
            type("BackupTableEngine", (TableEngine,), {**attributes, "name": "table2"}),
        ]

    @hookimpl
    def gateway_translation_engines(self) -> list[type]:
        """The two table engines."""
        return list(self.engine_types)
