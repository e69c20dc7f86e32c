"""The ``ctranslate2`` engine: offline translation with multilingual CTranslate2 models.

Families (see :mod:`.models`): **NLLB-200** (202 languages, any direction, CC-BY-NC-4.0
weights), **MADLAD-400** (400+ languages, Apache-2.0) and **OPUS-MT / Marian** (one pair per
model, CC-BY-4.0). A multilingual model translates directly between any two of its languages
(Somali → Arabic goes in one step, not through English).

How each family is driven, per text:

- the text is cut into sentences (and lines), each tokenised with the model's own
  SentencePiece model; whitespace between sentences is kept as it was;
- **nllb**: source ``[src_code] + pieces + ["</s>"]``, ``target_prefix=[[tgt_code]]``; the
  prefix is dropped from the hypothesis;
- **madlad**: source ``["<2xx>"] + pieces + ["</s>"]``, no prefix;
- **marian**: source ``pieces`` (plus ``</s>`` unless the model's ``config.json`` says
  CTranslate2 adds it), decoded with ``target.spm``;
- all sentences of one call go to one ``Translator.translate_batch`` (CTranslate2 sorts and
  splits them by ``max_batch_size``), in the engine's thread pool, never on the event loop.

A model is loaded once per process (whatever the number of engines or gateways), lazily, under
a lock, the first time a translation needs it; ``compute_type`` (default ``int8``) and
``device`` say how.

Settings (``translation.engine_settings.ctranslate2``, :class:`CTranslate2Settings`):
``model_dir``, ``family``, ``compute_type``, ``beam_size``, ``workers``, ``threads``, ``device``,
``max_batch_size``. Without ``model_dir`` the engine uses the models registered by
``gateway translate install --model DIR``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from gateway import (
    EngineContext,
    EngineInfo,
    EngineSettings,
    EngineUnavailableError,
    TranslationEngine,
    TranslationError,
)

from .codes import madlad_candidates, nllb_code, same_language
from .models import (
    LICENCES,
    ModelFolder,
    ModelRegistry,
    inspect_model,
    languages_of,
    model_folders,
    read_vocabulary,
)

__all__ = ["CTranslate2Engine", "CTranslate2Settings", "InstalledModel", "cached_models"]

log = logging.getLogger("gateway.translation.ctranslate2")

# OpenMP threads that spin while they wait for work take the CPU from the event loop and from
# every other process of a small shared server (measured here: translations 3-4x slower on 2
# busy cores). Wait passively unless the operator chose otherwise. OpenMP reads this once, when
# CTranslate2's library is first loaded in the process, so it is set when the plugin is loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ComputeType = Literal[
    "default", "auto", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16",
    "float16", "bfloat16", "float32",
]  # fmt: skip


class CTranslate2Settings(EngineSettings):
    """``translation.engine_settings.ctranslate2``."""

    family: Literal["nllb", "madlad", "marian"] | None = Field(
        default=None, description="Model family of model_dir (detected from its files when unset)."
    )
    model_dir: Path | None = Field(
        default=None,
        description="A CTranslate2 model folder (or, for Marian, a folder of pair folders); "
        "relative to the config file. Unset: the models `translate install --model` registered.",
    )
    compute_type: ComputeType = Field(default="int8", description="CTranslate2 weight/compute type.")
    beam_size: int = Field(default=4, ge=1, le=16, description="Beam search width (1 = greedy).")
    workers: int = Field(
        default=1, ge=1, le=32, description="Batches translated at once (threads; inter_threads)."
    )
    threads: int = Field(
        default=0, ge=0, le=256, description="CPU threads per batch (intra_threads; 0 = default)."
    )
    device: Literal["cpu", "cuda", "auto"] = Field(default="cpu", description="Where the model runs.")
    max_batch_size: int = Field(default=32, ge=1, le=4096, description="Sentences per forward pass.")

    @field_validator("model_dir")
    @classmethod
    def _model_folder(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        path = value.expanduser()
        if not path.is_absolute():
            base = (info.context or {}).get("base_dir")
            path = (Path(base) if base else Path.cwd()) / path
        path = path.resolve()
        try:
            model_folders(path, info.data.get("family"))
        except TranslationError as exc:
            raise ValueError(str(exc)) from None
        return path


@dataclass(frozen=True, slots=True)
class InstalledModel:
    """What ``translate install --model`` registered."""

    model: ModelFolder
    languages: int
    replaced: tuple[ModelFolder, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def licence(self) -> str:
        """The licence of the model family's weights."""
        return self.model.licence


# -- loading: once per process ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Loaded:
    translator: Any
    source_sp: Any
    target_sp: Any
    append_eos: bool
    eos: str


_loaded: dict[tuple[Any, ...], _Loaded] = {}
_load_lock = threading.Lock()


def cached_models() -> list[tuple[str, str, str, int, int]]:
    """Models loaded in this process: ``(folder, device, compute_type, workers, threads)`` each."""
    with _load_lock:
        return [(key[0], *key[2:]) for key in _loaded]


def _load(model: ModelFolder, settings: CTranslate2Settings) -> _Loaded:
    """The loaded model; the first caller loads it, concurrent callers wait for that load."""
    stamp = (model.path / "model.bin").stat().st_mtime_ns
    key = (str(model.path), stamp, settings.device, settings.compute_type, settings.workers, settings.threads)
    with _load_lock:
        found = _loaded.get(key)
        if found is not None:
            return found
        import json

        import ctranslate2
        import sentencepiece

        config = json.loads((model.path / "config.json").read_text(encoding="utf-8"))
        translator = ctranslate2.Translator(
            str(model.path),
            device=settings.device,
            compute_type=settings.compute_type,
            inter_threads=settings.workers,
            intra_threads=settings.threads,
        )
        if model.family == "marian":
            source_sp = sentencepiece.SentencePieceProcessor(model_file=str(model.path / "source.spm"))
            target_sp = sentencepiece.SentencePieceProcessor(model_file=str(model.path / "target.spm"))
        else:
            name = "sentencepiece.bpe.model" if model.family == "nllb" else "spiece.model"
            source_sp = target_sp = sentencepiece.SentencePieceProcessor(model_file=str(model.path / name))
        found = _Loaded(
            translator,
            source_sp,
            target_sp,
            append_eos=not bool(config.get("add_source_eos", False)),
            eos=str(config.get("eos_token") or "</s>"),
        )
        _loaded[key] = found
        log.info("loaded %s (%s, %s)", model.describe(), settings.device, settings.compute_type)
        return found


@lru_cache(maxsize=1)
def _runtime_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("ctranslate2", "sentencepiece"))


# -- sentences ---------------------------------------------------------------------------------
_BREAK = re.compile(r"(\s*\n\s*|(?<=[.!?。！？؟။።।።])\s+)")


def split_sentences(text: str) -> list[str]:
    """``[sentence, separator, sentence, ...]``: even items are translated, odd ones kept.

    Leading and trailing whitespace become separators of their own (around empty sentences).
    """
    core = text.strip()
    start = len(text) - len(text.lstrip())
    lead, trail = text[:start], text[start + len(core) :]
    parts = _BREAK.split(core) if core else [""]
    return ["", lead, *parts, trail, ""] if lead or trail else parts


@dataclass(frozen=True, slots=True)
class _Route:
    model: ModelFolder
    source_code: str | None
    target_code: str | None


class CTranslate2Engine(TranslationEngine):
    """Offline translation with CTranslate2 models (NLLB-200, MADLAD-400, OPUS-MT)."""

    name: ClassVar[str] = "ctranslate2"
    Settings: ClassVar[type[EngineSettings]] = CTranslate2Settings

    def __init__(self, context: EngineContext) -> None:
        super().__init__(context)
        assert isinstance(self.settings, CTranslate2Settings)
        self.options: CTranslate2Settings = self.settings
        self.data_dir = Path(context.data_dir)
        self.registry = ModelRegistry(self.data_dir)
        self._configured = (
            model_folders(self.options.model_dir, self.options.family) if self.options.model_dir else []
        )
        self.executor: Executor | None = None

    # -- what is installed ----------------------------------------------------------------
    def models(self) -> list[ModelFolder]:
        """The configured model(s), then the registered ones, in the order they are tried."""
        return [*self._configured, *self.registry.models()]

    @staticmethod
    def runtime_installed() -> bool:
        """Whether ctranslate2 and sentencepiece are importable (checked without importing)."""
        return _runtime_installed()

    def available(self) -> bool:
        """The libraries are installed and at least one model is known."""
        try:
            return self.runtime_installed() and bool(self.models())
        except TranslationError:
            return False

    def _code(self, model: ModelFolder, tag: str) -> str | None:
        """The model's code for ``tag``, when the model has that language."""
        if model.family == "nllb":
            code = nllb_code(tag)
            return code if code is not None and code in read_vocabulary(model.path) else None
        if model.family == "madlad":
            vocabulary = read_vocabulary(model.path)
            for form in madlad_candidates(tag):
                if f"<2{form}>" in vocabulary:
                    return f"<2{form}>"
            return None
        assert model.pair is not None
        for code in model.pair:
            if same_language(tag, code):
                return code
        return None

    def route(self, source: str, target: str) -> _Route | None:
        """The first model that translates ``source`` → ``target`` directly, with its codes."""
        for model in self.models():
            if model.family == "marian":
                assert model.pair is not None
                if same_language(source, model.pair[0]) and same_language(target, model.pair[1]):
                    return _Route(model, None, None)
                continue
            source_code, target_code = self._code(model, source), self._code(model, target)
            if source_code and target_code:
                return _Route(model, source_code, target_code)
        return None

    def can_translate(self, source: str, target: str) -> bool:
        """Whether an installed model has both languages (no pivot needed: models are direct)."""
        try:
            return self.route(source, target) is not None
        except TranslationError as exc:
            log.warning("ctranslate2: %s", exc)
            return False

    def language_pairs(self) -> list[tuple[str, str]]:
        """Every direct pair of every model (multilingual models: each ordered pair)."""
        pairs: set[tuple[str, str]] = set()
        for model in self.models():
            tags = sorted(languages_of(model))
            if model.family == "marian":
                assert model.pair is not None
                pairs.add(model.pair)
                continue
            pairs.update((a, b) for a in tags for b in tags if a != b)
        return sorted(pairs)

    async def describe(self, source: str = "en") -> EngineInfo:
        """Languages reachable from ``source``, the models' licences and folders."""
        notes: list[str] = []
        if not self.runtime_installed():
            notes.append(
                "ctranslate2/sentencepiece are not installed: "
                "pip install 'family-engagement-gateway[ctranslate2]'"
            )
        try:
            models = await asyncio.to_thread(self.models)
        except TranslationError as exc:
            return EngineInfo(notes=(*notes, str(exc)))
        if not models:
            notes.append("no model installed: gateway translate install --model DIR")
            return EngineInfo(notes=tuple(notes))
        codes: dict[str, str] = {}
        for model in models:
            languages = await asyncio.to_thread(languages_of, model)
            if model.family == "marian":
                assert model.pair is not None
                if same_language(source, model.pair[0]):
                    codes.setdefault(model.pair[1], model.pair[1])
                continue
            if self._code(model, source) is None:
                notes.append(f"{model.describe()}: has no {source}; it translates nothing from it")
                continue
            for tag, code in languages.items():
                if not same_language(tag, source):
                    codes.setdefault(tag, code)
            if model.family == "nllb":
                notes.append(
                    f"{model.describe()}: NLLB-200 weights are CC-BY-NC-4.0, non-commercial use only"
                )
        licences = sorted({model.licence for model in models})
        return EngineInfo(
            languages=tuple(sorted(codes)),
            codes={tag: code for tag, code in codes.items() if code != tag},
            licence="; ".join(licences),
            source="; ".join(model.describe() for model in models),
            notes=tuple(notes),
        )

    # -- installing -----------------------------------------------------------------------
    def install_model(
        self, path: Path | str, family: str | None = None, pair: Sequence[str] | None = None
    ) -> InstalledModel:
        """Check a model folder and register it (``gateway translate install --model DIR``).

        Raises :class:`gateway.TranslationError` naming every missing file. When ctranslate2
        is installed, the model is also loaded and asked one sentence before it is registered.
        """
        model = inspect_model(path, family, pair)
        languages = languages_of(model)
        if model.family != "marian" and not languages:
            raise TranslationError(
                f"{model.path}: the vocabulary holds no {model.family} language token "
                f"({'eng_Latn, som_Latn...' if model.family == 'nllb' else '<2en>, <2so>...'}); "
                "is this the right family?"
            )
        notes: list[str] = [f"licence: {LICENCES[model.family]}"]
        if self.runtime_installed():
            self._smoke_test(model, languages)
        else:
            notes.append("ctranslate2 is not installed here: the folder was checked, the model not loaded")
        replaced = self.registry.add(model)
        return InstalledModel(model, len(languages), tuple(replaced), tuple(notes))

    def _smoke_test(self, model: ModelFolder, languages: dict[str, str]) -> None:
        if model.family == "marian":
            codes: tuple[str | None, str | None] = (None, None)
        else:
            tags = sorted(languages)
            source = next((t for t in tags if same_language(t, "en")), tags[0])
            target = next((t for t in tags if t != source), source)
            codes = (self._code(model, source), self._code(model, target))
        try:
            result = self._run(_Route(model, *codes), ["Hello."])
        except TranslationError as exc:
            raise TranslationError(f"{model.path}: the model does not load or translate: {exc}") from None
        if not result or not isinstance(result[0], str):
            raise TranslationError(f"{model.path}: the model gave no translation for a test sentence")

    # -- translating ----------------------------------------------------------------------
    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        """Translate a batch in one thread-pool job."""
        route = self.route(source, target)
        if route is None:
            raise TranslationError(
                f"ctranslate2: no installed model translates {source}→{target}", reason="unsupported"
            )
        batch = list(texts)
        if not batch:
            return []
        if self.executor is None:
            self.executor = ThreadPoolExecutor(self.options.workers, thread_name_prefix="ctranslate2")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self._run, route, batch)

    def _run(self, route: _Route, texts: list[str]) -> list[str]:
        """In the pool: tokenise every sentence, one ``translate_batch``, decode, reassemble."""
        model = route.model
        try:
            loaded = _load(model, self.options)
        except Exception as exc:
            raise EngineUnavailableError(
                f"ctranslate2: cannot load {model.describe()}: {exc}", reason="unavailable"
            ) from exc
        plans = [split_sentences(text) for text in texts]
        sources: list[list[str]] = []
        for parts in plans:
            for index in range(0, len(parts), 2):
                if parts[index].strip():
                    sources.append(self._source_tokens(route, loaded, parts[index]))
        prefix = [[route.target_code]] * len(sources) if model.family == "nllb" else None
        if sources:
            longest = max(len(tokens) for tokens in sources)
            try:
                results = loaded.translator.translate_batch(
                    sources,
                    target_prefix=prefix,
                    beam_size=self.options.beam_size,
                    max_batch_size=self.options.max_batch_size,
                    max_decoding_length=min(1024, max(256, 2 * longest + 16)),
                )
            except Exception as exc:  # CTranslate2 raises RuntimeError / ValueError
                raise TranslationError(f"ctranslate2: {model.describe()} failed: {exc}") from exc
            decoded = [self._decode(route, loaded, r.hypotheses[0]) for r in results]
        else:
            decoded = []
        out: list[str] = []
        position = 0
        for parts in plans:
            pieces: list[str] = []
            for index, part in enumerate(parts):
                if index % 2 or not part.strip():
                    pieces.append(part)
                else:
                    pieces.append(decoded[position])
                    position += 1
            out.append("".join(pieces))
        return out

    @staticmethod
    def _source_tokens(route: _Route, loaded: _Loaded, sentence: str) -> list[str]:
        pieces = list(loaded.source_sp.encode(sentence, out_type=str))
        tail = [loaded.eos] if loaded.append_eos else []
        family = route.model.family
        if family == "nllb":
            return [str(route.source_code), *pieces, *tail]
        if family == "madlad":
            return [str(route.target_code), *pieces, *tail]
        return [*pieces, *tail]

    @staticmethod
    def _decode(route: _Route, loaded: _Loaded, hypothesis: list[str]) -> str:
        tokens = list(hypothesis)
        if route.model.family == "nllb" and tokens[:1] == [route.target_code]:
            tokens = tokens[1:]
        sp = loaded.target_sp
        unknown = sp.unk_id()
        # Language codes, <pad> and other tokens the SentencePiece model does not know are not
        # text: decoding them would print "⁇".
        kept = [t for t in tokens if t != loaded.eos and (sp.piece_to_id(t) != unknown or t == "<unk>")]
        return sp.decode(kept)

    def close(self) -> None:
        """Stop the thread pool (loaded models stay cached for the process)."""
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None
