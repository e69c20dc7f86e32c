"""Build a tiny but genuine Argos Translate package (``.argosmodel``) for tests and benchmarks.

The package is what ``argostranslate`` really loads, with no network and no training run:

- ``sentencepiece.model``: a real SentencePiece model trained (in a second) on a few hundred
  generated lines; ``byte_fallback`` makes every input, Arabic or Burmese included, round-trip.
- ``model/``: a real CTranslate2 Transformer (one layer, one head) whose weights are written by
  hand so that it **copies its input**: one-hot token embeddings, learned position encodings,
  zeroed self-attention and feed-forward blocks, and a cross-attention that maps decoder step
  *t* onto source position *t*. Its output projection is permuted for the ``remap`` pieces, so it
  "translates" deterministically (``▁world`` → ``▁order``), which makes placeholder checks
  meaningful.
- ``minisbd/<name>.onnx``: a rule-based MiniSBD sentence splitter (one ``Gather`` node over a
  per-character label table), so that sentence splitting never reaches for the network.
- ``metadata.json``.

Use :func:`build_test_package`; the result is cached per process by its arguments.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_REMAP",
    "LANGUAGE_NAMES",
    "MAX_POSITIONS",
    "build_minisbd_model",
    "build_test_package",
    "copy_model_spec",
    "write_argos_index",
    "train_sentencepiece",
]

MAX_POSITIONS = 1024
"""Source positions the copy model can attend to (CTranslate2 truncates inputs at 1024)."""

DEFAULT_REMAP: Mapping[str, str] = {"▁world": "▁order"}
"""The default "translation": every ``▁world`` piece comes out as ``▁order``."""

LANGUAGE_NAMES: Mapping[str, str] = {
    "ar": "Arabic",
    "de": "German",
    "en": "English",
    "es": "Spanish",
    "fa": "Persian",
    "fr": "French",
    "my": "Burmese",
    "so": "Somali",
    "sw": "Swahili",
    "vi": "Vietnamese",
    "zh": "Chinese",
    "zt": "Chinese (traditional)",
}

_VOCAB_SIZE = 500
_FREQUENCIES = 11  # position encoding: cos/sin pairs at π / 2**k, unique up to 2048 positions
_ATTENTION_SHARPNESS = 60.0  # score gap between the aligned position and any other one
_OUTPUT_SHARPNESS = 3.0

_SENTENCE_END = ".!?。！？؟။።।"
_BASE_WORDS = (
    "the family school night math reading workshop is on at in for with your child and "
    "please come join us bring snacks childcare provided bus route pickup time reply yes no "
    "maybe help stop start student teacher parent guardian meeting library event reminder "
    "thank you today tomorrow monday friday march april grade class room office call email "
    "la familia escuela noche taller de lectura por favor venga con su hijo gracias hoy "
    "mañana reunión biblioteca sí ayuda la famille école soir atelier lecture venez avec "
    "votre enfant merci aujourd'hui demain réunion bibliothèque oui aide bonjour"
).split()
_PUNCTUATION = list(".,;:!?()[]{}<>\"'%/&@#$*+=-") + ["...", "—", "¿", "¡"]


def _corpus(remap: Mapping[str, str]) -> list[str]:
    """A few hundred deterministic lines covering words, digits, punctuation and brackets."""
    rng = np.random.default_rng(20240917)
    focus = sorted({piece.lstrip("▁") for pair in remap.items() for piece in pair} - {""})
    words = list(_BASE_WORDS)
    lines: list[str] = []
    for index in range(600):
        length = int(rng.integers(4, 14))
        chosen: list[str] = []
        for _ in range(length):
            roll = rng.random()
            if roll < 0.12:
                chosen.append(str(int(rng.integers(0, 10_000))))
            elif roll < 0.2:
                chosen.append(f"[{int(rng.integers(1, 40))}]")
            elif roll < 0.27:
                chosen.append(str(rng.choice(_PUNCTUATION)))
            elif roll < 0.42 and focus:
                chosen.append(str(rng.choice(focus)))
            else:
                word = str(rng.choice(words))
                chosen.append(word.capitalize() if rng.random() < 0.15 else word)
        lines.append(" ".join(chosen) + str(_SENTENCE_END[index % 3]))
    # Every printable ASCII character at least once, so none needs byte fallback.
    lines.append("".join(chr(code) for code in range(33, 127)))
    return lines


def train_sentencepiece(remap: Mapping[str, str] = DEFAULT_REMAP) -> bytes:
    """Train a small SentencePiece model (unigram, byte fallback, digits split) in memory."""
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_corpus(remap)),
        model_writer=model,
        vocab_size=_VOCAB_SIZE,
        model_type="unigram",
        character_coverage=1.0,
        byte_fallback=True,
        split_digits=True,
        normalization_rule_name="identity",
        num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


def _position_encodings(rows: int) -> np.ndarray:
    """Zero-mean, constant-norm encodings whose dot product peaks only at equal positions."""
    positions = np.arange(rows, dtype=np.float64)[:, None]
    frequencies = np.pi / (2.0 ** np.arange(_FREQUENCIES, dtype=np.float64))[None, :]
    cos, sin = np.cos(positions * frequencies), np.sin(positions * frequencies)
    return np.concatenate([cos, sin, -cos, -sin], axis=1)


def _position_margin() -> float:
    """Smallest gap between ``p·p`` and ``p·q`` (p ≠ q) over every pair of positions."""
    encodings = _position_encodings(MAX_POSITIONS)
    peak = float(encodings[0] @ encodings[0])
    offsets = encodings[1:] @ encodings[0]  # the dot product depends only on the offset
    return peak - float(offsets.max())


def _shift(pos_dims: int, offset: int) -> np.ndarray:
    """The linear map taking the encoding of position t to that of position t + ``offset``.

    Each (cos, sin) pair at frequency f rotates by ``offset * f``; the negated halves of the
    encoding are rebuilt from the first two blocks.
    """
    half = pos_dims // 4
    frequencies = np.pi / (2.0 ** np.arange(half, dtype=np.float64))
    cos, sin = np.diag(np.cos(offset * frequencies)), np.diag(np.sin(offset * frequencies))
    zero = np.zeros((half, half))
    return np.block(
        [
            [cos, -sin, zero, zero],
            [sin, cos, zero, zero],
            [-cos, sin, zero, zero],
            [-sin, -cos, zero, zero],
        ]
    )


def copy_model_spec(
    pieces: list[str],
    remap: Mapping[str, str],
    *,
    offset: int = 0,
    config: Mapping[str, Any] | None = None,
) -> Any:
    """A CTranslate2 ``TransformerSpec`` that copies its source, with ``remap`` applied on output.

    ``pieces`` is the whole vocabulary (shared by source and target): SentencePiece pieces, then
    any extra tokens (language codes). Decoder step *t* emits the token at source position
    *t* + ``offset`` (``offset=1`` skips a leading ``<2xx>`` token). ``config`` overrides the
    model config (``add_source_eos``, ``decoder_start_token``...); by default the source end
    token is added by CTranslate2 and copied, which stops decoding.
    """
    import ctranslate2

    vocab = len(pieces)
    index = {piece: position for position, piece in enumerate(pieces)}
    missing = [piece for pair in remap.items() for piece in pair if piece not in index]
    if missing:
        raise ValueError(f"remap pieces not in the SentencePiece vocabulary: {missing}")

    positions = _position_encodings(MAX_POSITIONS)
    pos_dims = positions.shape[1]
    depth = vocab + pos_dims  # [token one-hot | position encoding]
    token_slice, pos_slice = slice(0, vocab), slice(vocab, depth)
    f32 = np.float32

    def zeros(*shape: int) -> np.ndarray:
        return np.zeros(shape, dtype=f32)

    def layer_norm(spec: Any) -> None:
        spec.gamma = np.ones(depth, dtype=f32)
        spec.beta = zeros(depth)

    def linear(spec: Any, weight: np.ndarray) -> None:
        spec.weight = weight.astype(f32)
        spec.bias = zeros(weight.shape[0])

    spec = ctranslate2.specs.TransformerSpec.from_config(num_layers=1, num_heads=1)
    encoder, decoder = spec.encoder, spec.decoder

    # Encoder: x_s = onehot(token_s) + position_s; every block adds zero; final LayerNorm.
    encoder.scale_embeddings = False
    source_embeddings = zeros(vocab, depth)
    source_embeddings[:, token_slice] = np.eye(vocab, dtype=f32)
    encoder.embeddings[0].weight = source_embeddings
    encoder_positions = zeros(MAX_POSITIONS, depth)
    encoder_positions[:, pos_slice] = positions
    encoder.position_encodings.encodings = encoder_positions
    layer_norm(encoder.layer_norm)
    for layer in encoder.layer:
        layer_norm(layer.self_attention.layer_norm)
        linear(layer.self_attention.linear[0], zeros(3 * depth, depth))
        linear(layer.self_attention.linear[1], zeros(depth, depth))
        layer_norm(layer.ffn.layer_norm)
        linear(layer.ffn.linear_0, zeros(1, depth))
        linear(layer.ffn.linear_1, zeros(depth, 1))

    # Decoder: y_t = position_t only (target embeddings are zero), so step t asks for source t.
    decoder.scale_embeddings = False
    decoder.embeddings.weight = zeros(vocab, depth)
    decoder_positions = zeros(MAX_POSITIONS, depth)
    decoder_positions[:, pos_slice] = positions
    decoder.position_encodings.encodings = decoder_positions
    layer_norm(decoder.layer_norm)

    # LayerNorm scales queries by sqrt(depth / |p|²) and keys by 1/σ of the encoder state;
    # CTranslate2 divides scores by sqrt(depth). Undo all three and set the gap we want.
    pos_norm2 = float(positions[0] @ positions[0])
    encoder_sigma = np.sqrt((1.0 + pos_norm2) / depth - 1.0 / depth**2)
    query_scale = np.sqrt(pos_norm2 / depth) * encoder_sigma * np.sqrt(depth)
    query_scale *= _ATTENTION_SHARPNESS / _position_margin()
    query = zeros(depth, depth)
    query[pos_slice, pos_slice] = (_shift(pos_dims, offset) * query_scale).astype(f32)
    key_value = zeros(2 * depth, depth)
    key_value[pos_slice, pos_slice] = np.eye(pos_dims, dtype=f32)  # keys: positions
    key_value[depth + 0 : depth + vocab, token_slice] = np.eye(vocab, dtype=f32)  # values
    output = zeros(depth, depth)
    output[token_slice, token_slice] = np.eye(vocab, dtype=f32)

    for layer in decoder.layer:
        layer_norm(layer.self_attention.layer_norm)
        linear(layer.self_attention.linear[0], zeros(3 * depth, depth))
        linear(layer.self_attention.linear[1], zeros(depth, depth))
        layer_norm(layer.attention.layer_norm)
        linear(layer.attention.linear[0], query)
        linear(layer.attention.linear[1], key_value)
        linear(layer.attention.linear[2], output)
        layer_norm(layer.ffn.layer_norm)
        linear(layer.ffn.linear_0, zeros(1, depth))
        linear(layer.ffn.linear_1, zeros(depth, 1))

    # Output projection: the copied piece i scores for target piece remap(i).
    projection = zeros(vocab, depth)
    for source_piece, source_id in index.items():
        target_id = index[remap.get(source_piece, source_piece)]
        projection[target_id, source_id] = _OUTPUT_SHARPNESS
    linear(decoder.projection, projection)

    settings = {"add_source_eos": True, **(config or {})}
    for key, value in settings.items():
        setattr(spec.config, key, value)
    spec.register_source_vocabulary(pieces)
    spec.register_target_vocabulary(pieces)
    spec.validate()
    return spec


def build_minisbd_model(lang_code: str = "xx") -> bytes:
    """A rule-based MiniSBD ONNX model: one ``Gather`` over a per-character label table.

    MiniSBD's labels per character are 0 (inside a token), 1 (token end) and 2 (token and
    sentence end); we label spaces 1, ``.!?`` and their CJK, Arabic, Burmese, Ethiopic and
    Devanagari counterparts 2, and everything else 0.
    """
    import onnx
    from onnx import TensorProto, helper

    units = ["<PAD>", "<UNK>", " ", *_SENTENCE_END]
    labels = np.zeros((len(units), 5), dtype=np.float32)
    labels[:, 0] = 1.0
    labels[units.index(" ")] = [0, 1, 0, 0, 0]
    for char in _SENTENCE_END:
        labels[units.index(char)] = [0, 0, 1, 0, 0]

    table = helper.make_tensor("labels", TensorProto.FLOAT, labels.shape, labels.flatten())
    graph = helper.make_graph(
        [helper.make_node("Gather", ["labels", "units"], ["scores"], axis=0)],
        "rule_based_sbd",
        inputs=[
            helper.make_tensor_value_info("units", TensorProto.INT64, ["batch", "chars"]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", "chars", "feats"]),
        ],
        outputs=[helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", "chars", 5])],
        initializer=[table],
    )
    model = helper.make_model(
        graph, producer_name="gateway.testing", opset_imports=[helper.make_opsetid("", 13)]
    )
    model.ir_version = 8
    vocab_state = {
        "lang": lang_code,
        "idx": 0,
        "cutoff": 0,
        "lower": False,
        "_id2unit": units,
        "_unit2id": {unit: position for position, unit in enumerate(units)},
    }
    config = {"feat_funcs": [], "max_seqlen": 1000, "batch_size": 32, "skip_newline": False}
    helper.set_model_props(
        model,
        {
            "lang_code": lang_code,
            "config": json.dumps(config),
            "vocab": json.dumps(vocab_state),
            "lexicon": "null",
        },
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _write_package_folder(
    folder: Path, from_code: str, to_code: str, remap: Mapping[str, str], version: str
) -> None:
    import sentencepiece as spm

    folder.mkdir(parents=True)
    sp_model = train_sentencepiece(remap)
    (folder / "sentencepiece.model").write_bytes(sp_model)
    processor = spm.SentencePieceProcessor(model_proto=sp_model)
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    (folder / "model").mkdir()
    copy_model_spec(pieces, remap).save(str(folder / "model"))
    (folder / "minisbd").mkdir()
    (folder / "minisbd" / f"{from_code}.onnx").write_bytes(build_minisbd_model(from_code))
    metadata = {
        "type": "translate",
        "package_version": version,
        "argos_version": "1.11",
        "from_code": from_code,
        "from_name": LANGUAGE_NAMES.get(from_code, from_code),
        "to_code": to_code,
        "to_name": LANGUAGE_NAMES.get(to_code, to_code),
        "links": [],
    }
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    (folder / "README.md").write_text(
        f"Test package {from_code}→{to_code}: copies its input, remaps {dict(remap)}.\n",
        encoding="utf-8",
    )


_cache: dict[tuple[str, str, tuple[tuple[str, str], ...], str], Path] = {}
_cache_lock = threading.Lock()
_cache_dir: Path | None = None


def build_test_package(
    dest_dir: Path | str | None = None,
    from_code: str = "en",
    to_code: str = "es",
    remap: Mapping[str, str] | None = None,
    *,
    version: str = "1.0",
) -> Path:
    """Build ``translate-{from}_{to}.argosmodel`` in ``dest_dir`` and return its path.

    ``remap`` maps SentencePiece pieces of the input to pieces of the output (default
    :data:`DEFAULT_REMAP`); every other piece is copied. Each distinct build is made once per
    process and copied into ``dest_dir`` (a temporary folder when ``None``).
    """
    global _cache_dir
    remap = dict(DEFAULT_REMAP if remap is None else remap)
    key = (from_code, to_code, tuple(sorted(remap.items())), version)
    with _cache_lock:
        built = _cache.get(key)
        if built is None or not built.exists():
            if _cache_dir is None:
                _cache_dir = Path(tempfile.mkdtemp(prefix="argos-test-packages-"))
            # A folder of its own per attempt: a build that failed (a remap outside the
            # vocabulary) leaves nothing a later build could trip over.
            work = Path(tempfile.mkdtemp(prefix="build-", dir=_cache_dir))
            try:
                name = f"translate-{from_code}_{to_code}-{version.replace('.', '_')}"
                _write_package_folder(work / name, from_code, to_code, remap, version)
                built = work.with_suffix(".argosmodel")
                with zipfile.ZipFile(built, "w", zipfile.ZIP_DEFLATED) as archive:
                    for path in sorted((work / name).rglob("*")):
                        archive.write(path, path.relative_to(work))
            finally:
                shutil.rmtree(work, ignore_errors=True)
            _cache[key] = built
    destination = Path(dest_dir) if dest_dir is not None else built.parent
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / f"translate-{from_code}_{to_code}.argosmodel"
    if target.resolve() != built.resolve():
        shutil.copyfile(built, target)
    return target


def write_argos_index(
    folder: Path | str, packages: list[Path], *, base_url: str | None = None, version: str | None = None
) -> Path:
    """A mirror of the Argos package index in ``folder``: the packages and an ``index.json``.

    Entries are shaped like ``argosopentech/argospm-index`` (``code``, ``type``, ``from_code``,
    ``to_code``, names, ``package_version``, ``argos_version``, ``links``), read from each
    package's own ``metadata.json`` (``version`` overrides the announced version). Links are
    relative to the index, or absolute under ``base_url``. Returns the index path.
    """
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    entries = []
    for package in packages:
        with zipfile.ZipFile(package) as archive:
            top = archive.namelist()[0].split("/")[0]
            metadata = json.loads(archive.read(f"{top}/metadata.json"))
        name = f"translate-{metadata['from_code']}_{metadata['to_code']}.argosmodel"
        shutil.copyfile(package, target / name)
        entries.append(
            {
                "code": f"translate-{metadata['from_code']}_{metadata['to_code']}",
                "type": "translate",
                "from_code": metadata["from_code"],
                "from_name": metadata.get("from_name", metadata["from_code"]),
                "to_code": metadata["to_code"],
                "to_name": metadata.get("to_name", metadata["to_code"]),
                "package_version": version or metadata.get("package_version", "1.0"),
                "argos_version": metadata.get("argos_version", "1.11"),
                "links": ["ipfs://Qm-not-fetched", f"{base_url.rstrip('/')}/{name}" if base_url else name],
            }
        )
    index = target / "index.json"
    index.write_text(json.dumps(entries, indent=2), encoding="utf-8")
    return index
