"""CTranslate2 model folders: what must be in one, which family it is, what it covers, and the
registry ``gateway translate install --model DIR`` writes.

A folder is what CTranslate2's converters write — ``model.bin``, ``config.json`` and the
vocabulary (``shared_vocabulary.json``; older releases ``.txt``; or separate
``source_vocabulary`` / ``target_vocabulary`` files) — plus the model's own SentencePiece file(s),
which the converters copy only when asked (``--copy_files``):

========  ===============================  =========================================
family    SentencePiece                    licence of the published weights
========  ===============================  =========================================
nllb      ``sentencepiece.bpe.model``      CC-BY-NC-4.0 (non-commercial use only)
madlad    ``spiece.model``                 Apache-2.0
marian    ``source.spm`` + ``target.spm``  CC-BY-4.0 (OPUS-MT)
========  ===============================  =========================================

A Marian (OPUS-MT) model translates one pair; its folder is named like the OPUS-MT release
(``opus-mt-en-es``, ``opus-mt-tc-big-en-pt``, or just ``en-es``), or the pair is given at
install time. A ``model_dir`` may also hold one such folder per pair.

Reading a folder never imports ctranslate2.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from gateway import TranslationError

from .codes import NLLB_TO_BCP47, bcp47_from_madlad

__all__ = [
    "FAMILIES",
    "LICENCES",
    "ModelFolder",
    "ModelRegistry",
    "inspect_model",
    "model_folders",
    "read_vocabulary",
]

Family = Literal["nllb", "madlad", "marian"]
FAMILIES: tuple[Family, ...] = ("nllb", "madlad", "marian")

LICENCES: dict[str, str] = {
    "nllb": "CC-BY-NC-4.0 (NLLB-200 weights: non-commercial use only)",
    "madlad": "Apache-2.0 (MADLAD-400)",
    "marian": "CC-BY-4.0 (OPUS-MT; attribute the OPUS-MT project)",
}
"""The licence of each family's published weights, shown at install and in ``translate languages``."""

SENTENCEPIECE_FILES: dict[str, tuple[str, ...]] = {
    "nllb": ("sentencepiece.bpe.model",),
    "madlad": ("spiece.model",),
    "marian": ("source.spm", "target.spm"),
}

_VOCABULARY_NAMES = ("shared_vocabulary.json", "shared_vocabulary.txt")
_PAIR_NAME = re.compile(
    r"^(?:opus-mt-(?:tc-(?:big|base)-)?)?(?P<src>[a-z]{2,3}(?:_[A-Za-z]{2,4})?)-"
    r"(?P<tgt>[a-z]{2,3}(?:_[A-Za-z]{2,4})?)(?:[-_.].*)?$"
)
_NLLB_TOKEN = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")


@dataclass(frozen=True, slots=True)
class ModelFolder:
    """A checked model folder: its family, and for Marian its pair (model codes)."""

    path: Path
    family: Family
    pair: tuple[str, str] | None = None

    @property
    def licence(self) -> str:
        """The licence of this family's published weights."""
        return LICENCES[self.family]

    def describe(self) -> str:
        """``nllb model at /srv/models/nllb-600m`` or ``marian en→es model at ...``."""
        pair = f" {self.pair[0]}→{self.pair[1]}" if self.pair else ""
        return f"{self.family}{pair} model at {self.path}"

    def to_json(self) -> dict[str, Any]:
        """The registry entry."""
        return {"path": str(self.path), "family": self.family, "pair": list(self.pair) if self.pair else None}


def _vocabulary_files(folder: Path) -> list[Path]:
    for name in _VOCABULARY_NAMES:
        if (folder / name).is_file():
            return [folder / name]
    for suffix in (".json", ".txt"):
        source, target = folder / f"source_vocabulary{suffix}", folder / f"target_vocabulary{suffix}"
        if source.is_file() and target.is_file():
            return [source, target]
    return []


def _read_tokens(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        if not isinstance(data, list):
            raise TranslationError(f"{path}: expected a JSON list of tokens")
        return [str(token) for token in data]
    return text.splitlines()


_vocabulary_cache: dict[tuple[str, int], frozenset[str]] = {}
_vocabulary_lock = threading.Lock()


def read_vocabulary(folder: Path, *, target: bool = False) -> frozenset[str]:
    """The tokens of the model's (shared, or source / ``target``) vocabulary; cached per file."""
    files = _vocabulary_files(folder)
    if not files:
        return frozenset()
    path = files[-1] if target else files[0]
    key = (str(path), path.stat().st_mtime_ns)
    with _vocabulary_lock:
        cached = _vocabulary_cache.get(key)
    if cached is None:
        try:
            cached = frozenset(_read_tokens(path))
        except (OSError, ValueError) as exc:
            raise TranslationError(f"{path}: cannot read the vocabulary ({exc})") from None
        with _vocabulary_lock:
            _vocabulary_cache[key] = cached
    return cached


def pair_from_name(name: str) -> tuple[str, str] | None:
    """``opus-mt-en-es`` → ``("en", "es")``; ``None`` when the name names no pair."""
    match = _PAIR_NAME.match(name)
    return (match["src"], match["tgt"]) if match else None


def _guess_family(folder: Path) -> Family | None:
    for family, names in SENTENCEPIECE_FILES.items():
        if all((folder / name).is_file() for name in names):
            return family  # type: ignore[return-value]
    vocabulary = read_vocabulary(folder) if _vocabulary_files(folder) else frozenset()
    if "eng_Latn" in vocabulary or sum(1 for t in vocabulary if _NLLB_TOKEN.match(t)) >= 10:
        return "nllb"
    if any(token.startswith("<2") and token.endswith(">") for token in vocabulary):
        return "madlad"
    if pair_from_name(folder.name):
        return "marian"
    return None


def inspect_model(
    path: Path | str, family: str | None = None, pair: Sequence[str] | None = None
) -> ModelFolder:
    """Check a model folder; return it with its family (detected when not given).

    Raises :class:`gateway.TranslationError` naming the folder and every missing file, or why
    the family or the pair cannot be told.
    """
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise TranslationError(f"{folder}: no such folder")
    if family is not None and family not in FAMILIES:
        raise TranslationError(f"{folder}: unknown model family {family!r} (nllb, madlad or marian)")
    chosen = family or _guess_family(folder)
    missing: list[str] = []
    for name in ("model.bin", "config.json"):
        if not (folder / name).is_file():
            missing.append(name)
    if not _vocabulary_files(folder):
        missing.append("shared_vocabulary.json (or shared_vocabulary.txt, or source_/target_vocabulary)")
    if chosen is None:
        problem = f"missing {', '.join(missing)}; " if missing else ""
        raise TranslationError(
            f"{folder}: {problem}cannot tell the model family: no sentencepiece.bpe.model (NLLB), "
            "spiece.model (MADLAD) or source.spm + target.spm (Marian); name it with "
            "--family nllb|madlad|marian"
        )
    for name in SENTENCEPIECE_FILES[chosen]:
        if not (folder / name).is_file():
            missing.append(
                f"{name} (the {chosen} model's SentencePiece file; CTranslate2's converter copies it "
                f"only with --copy_files {name})"
            )
    if missing:
        raise TranslationError(
            f"{folder}: not a complete {chosen} model folder: missing " + "; ".join(missing)
        )
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TranslationError(f"{folder}/config.json: not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise TranslationError(f"{folder}/config.json: expected a JSON object")
    resolved_pair: tuple[str, str] | None = None
    if chosen == "marian":
        if pair:
            if len(pair) != 2 or not all(pair):
                raise TranslationError(f"{folder}: a Marian pair is two codes, e.g. en-es")
            resolved_pair = (str(pair[0]), str(pair[1]))
        else:
            resolved_pair = pair_from_name(folder.name)
        if resolved_pair is None:
            raise TranslationError(
                f"{folder}: a Marian (OPUS-MT) model translates one pair, and the folder name does not "
                "say which (name it like opus-mt-en-es, or pass --pair en-es)"
            )
    return ModelFolder(folder, chosen, resolved_pair)  # type: ignore[arg-type]


def model_folders(path: Path, family: str | None = None) -> list[ModelFolder]:
    """The models of a ``model_dir``: the folder itself, or (Marian) one sub-folder per pair."""
    if not path.is_dir() or (path / "model.bin").is_file() or family in ("nllb", "madlad"):
        return [inspect_model(path, family)]
    subfolders = sorted(p for p in path.iterdir() if p.is_dir() and (p / "model.bin").is_file())
    if not subfolders:
        return [inspect_model(path, family)]  # raises with what is missing
    return [inspect_model(p, family or "marian") for p in subfolders]


def languages_of(model: ModelFolder) -> dict[str, str]:
    """BCP 47 tag → model code of every language the model has (Marian: its two sides)."""
    if model.family == "marian":
        assert model.pair is not None
        return {model.pair[0]: model.pair[0], model.pair[1]: model.pair[1]}
    vocabulary = read_vocabulary(model.path)
    if model.family == "nllb":
        return {tag: code for code, tag in NLLB_TO_BCP47.items() if code in vocabulary}
    found: dict[str, str] = {}
    for token in sorted(vocabulary):
        tag = bcp47_from_madlad(token)
        if tag:
            found[tag] = token
    return found


class ModelRegistry:
    """``models.json`` in the engine's data folder: the models ``translate install --model`` added.

    One NLLB and one MADLAD model at a time (installing another replaces it); Marian models one
    per pair.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "models.json"
        self._stamp: int | None = None
        self._models: list[ModelFolder] = []

    def models(self) -> list[ModelFolder]:
        """Registered models, in install order (re-read when the file changed)."""
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._stamp, self._models = None, []
            return []
        if stamp != self._stamp:
            try:
                entries = json.loads(self.path.read_text(encoding="utf-8")).get("models", [])
            except (OSError, ValueError, AttributeError) as exc:
                raise TranslationError(f"{self.path}: unreadable model registry ({exc})") from None
            self._models = [
                ModelFolder(Path(e["path"]), e["family"], tuple(e["pair"]) if e.get("pair") else None)
                for e in entries
                if isinstance(e, dict) and e.get("family") in FAMILIES and e.get("path")
            ]
            self._stamp = stamp
        return list(self._models)

    def add(self, model: ModelFolder) -> list[ModelFolder]:
        """Register ``model``; return the models it replaced."""
        kept: list[ModelFolder] = []
        replaced: list[ModelFolder] = []
        for existing in self.models():
            same_slot = existing.path == model.path or (
                existing.family == model.family and (model.family != "marian" or existing.pair == model.pair)
            )
            (replaced if same_slot else kept).append(existing)
        self._write([*kept, model])
        return replaced

    def _write(self, models: Iterable[ModelFolder]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "models": [m.to_json() for m in models],
        }
        partial = self.path.with_suffix(".json.part")
        partial.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        partial.replace(self.path)
        self._stamp = None
