"""Tiny but genuine CTranslate2 model folders in the layouts of NLLB-200, MADLAD-400 and
OPUS-MT (Marian), for the ``ctranslate2`` engine's tests and benchmark.

Each folder is what CTranslate2's converters write (``model.bin``, ``config.json``,
``shared_vocabulary.json``) plus the model's own SentencePiece file, and loads in a real
``ctranslate2.Translator``. The weights are the copy model of
:mod:`gateway.testing.argos_package` (no training run): it copies its input piece by piece,
except for the ``remap`` pieces (``▁world`` → ``▁order`` by default), so a test can tell the
model's output from its input. What differs per family is what a real model of that family
expects:

- **nllb**: ``sentencepiece.bpe.model``; the language codes (``eng_Latn``, ``som_Latn``...) are
  extra vocabulary tokens, not SentencePiece pieces; config ``add_source_eos: false`` and
  ``decoder_start_token: "</s>"``. The source is ``[src_lang] + pieces + ["</s>"]``, the target is
  forced with ``target_prefix=[[tgt_lang]]``, and the hypothesis starts with ``tgt_lang``.
- **madlad**: ``spiece.model``; ``<2xx>`` tokens in the vocabulary; the source is
  ``["<2xx>"] + pieces + ["</s>"]`` and decoding starts at ``<pad>``; the model skips the
  leading ``<2xx>`` (it copies source position *t* + 1 at step *t*), as a real one does not
  echo it.
- **marian**: ``source.spm`` and ``target.spm``, no language tokens, ``add_source_eos: true``
  (CTranslate2 appends ``</s>`` itself for models converted from Marian); the folder is named
  ``opus-mt-{src}-{tgt}`` like the OPUS-MT releases.

Use :func:`build_ct2_model`; each distinct build is made once per process.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from gateway.testing.argos_package import DEFAULT_REMAP, copy_model_spec, train_sentencepiece

__all__ = ["Family", "build_ct2_model"]

Family = Literal["nllb", "madlad", "marian"]

_DEFAULT_TOKENS: Mapping[str, tuple[str, ...]] = {
    "nllb": ("eng_Latn", "fra_Latn", "spa_Latn", "som_Latn", "arb_Arab", "prs_Arab"),
    "madlad": ("<2en>", "<2fr>", "<2es>", "<2so>", "<2ar>", "<2fa>"),
    "marian": (),
}

_cache: dict[tuple[object, ...], Path] = {}
_lock = threading.Lock()
_cache_dir: Path | None = None


def _write(folder: Path, family: Family, tokens: Sequence[str], remap: Mapping[str, str]) -> None:
    import sentencepiece as spm

    folder.mkdir(parents=True)
    sp_model = train_sentencepiece(remap)
    processor = spm.SentencePieceProcessor(model_proto=sp_model)
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    if family == "nllb":
        (folder / "sentencepiece.bpe.model").write_bytes(sp_model)
        vocabulary = [*pieces, *tokens]
        spec = copy_model_spec(
            vocabulary,
            remap,
            config={"add_source_eos": False, "add_source_bos": False, "decoder_start_token": "</s>"},
        )
    elif family == "madlad":
        (folder / "spiece.model").write_bytes(sp_model)
        vocabulary = [*pieces, "<pad>", *tokens]
        spec = copy_model_spec(
            vocabulary,
            remap,
            offset=1,
            config={"add_source_eos": False, "add_source_bos": False, "decoder_start_token": "<pad>"},
        )
    else:
        (folder / "source.spm").write_bytes(sp_model)
        (folder / "target.spm").write_bytes(sp_model)
        spec = copy_model_spec(pieces, remap, config={"add_source_eos": True, "decoder_start_token": "</s>"})
    spec.save(str(folder))
    (folder / "README.md").write_text(
        f"Test {family} model: copies its input, remaps {dict(remap)}.\n", encoding="utf-8"
    )


def build_ct2_model(
    family: Family,
    dest_dir: Path | str | None = None,
    *,
    language_tokens: Sequence[str] | None = None,
    remap: Mapping[str, str] | None = None,
    pair: tuple[str, str] = ("en", "es"),
) -> Path:
    """Build a model folder of ``family`` and return its path.

    ``language_tokens``: the NLLB codes or MADLAD ``<2xx>`` tokens to put in the vocabulary
    (a handful by default; pass a whole table to cover every language); ``pair``: the
    languages of a Marian model (its folder is ``opus-mt-{src}-{tgt}``). Without ``dest_dir``
    the cached build itself is returned (do not modify it); with one, a copy is made there.
    """
    global _cache_dir
    remap = dict(DEFAULT_REMAP if remap is None else remap)
    tokens = tuple(_DEFAULT_TOKENS[family] if language_tokens is None else language_tokens)
    name = f"opus-mt-{pair[0]}-{pair[1]}" if family == "marian" else f"{family}-test"
    key = (family, tokens, tuple(sorted(remap.items())), name)
    with _lock:
        built = _cache.get(key)
        if built is None or not (built / "model.bin").exists():
            if _cache_dir is None:
                _cache_dir = Path(tempfile.mkdtemp(prefix="ct2-test-models-"))
            # A folder of its own per attempt: a failed build leaves nothing in a later one's way.
            work = Path(tempfile.mkdtemp(prefix="build-", dir=_cache_dir))
            built = work / name
            try:
                _write(built, family, tokens, remap)
            except BaseException:
                shutil.rmtree(work, ignore_errors=True)
                raise
            _cache[key] = built
    if dest_dir is None:
        return built
    target = Path(dest_dir) / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(built, target)
    return target
