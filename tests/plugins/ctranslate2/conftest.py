"""Fixtures for the ctranslate2 engine: tiny genuine NLLB-, MADLAD- and Marian-style models
(built once per session by :mod:`gateway.testing.ct2_models`), engines on them, and a recorder
of what the engine hands to ``Translator.translate_batch``."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway_plugins.ctranslate2_engine import NLLB_TO_BCP47, CTranslate2Engine
from gateway_plugins.ctranslate2_engine import engine as engine_module

from gateway import EngineContext
from gateway.testing.ct2_models import build_ct2_model

MADLAD_TOKENS = tuple(
    f"<2{code}>" for code in ("en", "so", "es", "fr", "ar", "fa", "sw", "zh", "zh_Hant", "ti")
)
MANGLING_REMAP = {"]": ")"}
"""A model with this remap turns every ``]`` into ``)``: it breaks ``[n]`` placeholder tokens."""


@pytest.fixture(scope="session")
def nllb_model() -> Path:
    """An NLLB-style model whose vocabulary holds every NLLB-200 language code."""
    return build_ct2_model("nllb", language_tokens=list(NLLB_TO_BCP47))


@pytest.fixture(scope="session")
def madlad_model() -> Path:
    """A MADLAD-style model with a few ``<2xx>`` tokens."""
    return build_ct2_model("madlad", language_tokens=MADLAD_TOKENS)


@pytest.fixture(scope="session")
def marian_model() -> Path:
    """An OPUS-MT-style en→es model (folder ``opus-mt-en-es``)."""
    return build_ct2_model("marian", pair=("en", "es"))


@pytest.fixture(scope="session")
def mangling_model() -> Path:
    """An NLLB-style model that breaks placeholder tokens."""
    tokens = ("eng_Latn", "spa_Latn", "som_Latn")
    return build_ct2_model("nllb", language_tokens=tokens, remap=MANGLING_REMAP)


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[Callable[..., CTranslate2Engine]]:
    """``make_engine(model_dir=None, **settings)``: an engine on a fresh data folder."""
    made: list[CTranslate2Engine] = []

    def factory(model_dir: Path | None = None, **settings: Any) -> CTranslate2Engine:
        raw = {"threads": 1, **settings}
        if model_dir is not None:
            raw["model_dir"] = str(model_dir)
        engine = CTranslate2Engine(EngineContext(tmp_path / f"ct2-{len(made)}", raw))
        made.append(engine)
        return engine

    yield factory
    for engine in made:
        engine.close()


@dataclasses.dataclass
class BatchCall:
    """One ``translate_batch`` call as the engine made it."""

    source: list[list[str]]
    target_prefix: list[list[str]] | None
    options: dict[str, Any]
    thread: str


class RecordingTranslator:
    """Wraps a real ``ctranslate2.Translator``: records each batch, then translates it."""

    def __init__(self, real: Any, calls: list[BatchCall]) -> None:
        self.real = real
        self.calls = calls

    def translate_batch(self, source: list[list[str]], target_prefix: Any = None, **options: Any) -> Any:
        """Record, then call the real translator."""
        thread = threading.current_thread().name
        self.calls.append(BatchCall([list(s) for s in source], target_prefix, options, thread))
        return self.real.translate_batch(source, target_prefix=target_prefix, **options)


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[BatchCall]:
    """Every ``translate_batch`` call the engines make in this test (the real model still runs)."""
    calls: list[BatchCall] = []
    real_load = engine_module._load

    def load(model: Any, settings: Any) -> Any:
        loaded = real_load(model, settings)
        return dataclasses.replace(loaded, translator=RecordingTranslator(loaded.translator, calls))

    monkeypatch.setattr(engine_module, "_load", load)
    return calls
