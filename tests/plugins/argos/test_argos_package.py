"""The tiny test package is a genuine Argos package: layout, tokenizer, copy model, splitter."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest

from gateway.testing.argos_package import build_minisbd_model, build_test_package


def _extract(package: Path, into: Path) -> Path:
    with zipfile.ZipFile(package) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
        archive.extractall(into)
    assert len(tops) == 1
    return into / tops.pop()


def test_package_layout_and_metadata(argos_packages, tmp_path):
    folder = _extract(argos_packages["fr-en"], tmp_path)
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["type"] == "translate"
    assert (metadata["from_code"], metadata["to_code"]) == ("fr", "en")
    assert metadata["package_version"] == "1.0"
    for required in ("sentencepiece.model", "model/model.bin", "model/config.json",
                     "model/shared_vocabulary.json", "minisbd/fr.onnx"):
        assert (folder / required).is_file(), required
    config = json.loads((folder / "model" / "config.json").read_text())
    assert config["add_source_eos"] is True


def test_tokenizer_round_trips_any_script(argos_packages, tmp_path):
    import sentencepiece as spm

    folder = _extract(argos_packages["en-es"], tmp_path)
    processor = spm.SentencePieceProcessor(model_file=str(folder / "sentencepiece.model"))
    assert processor.get_piece_size() == 500
    for text in ["Call [12] at 5:30 PM!", "مرحبا ١٢٣", "မင်္ဂလာပါ ၅", "日本語 🙂 ñ"]:
        assert processor.decode(processor.encode(text)) == text
    assert processor.encode("Call [12]", out_type=str) == ["▁Call", "▁[", "1", "2", "]"]


def test_copy_model_copies_through_ctranslate2(argos_packages, tmp_path):
    import ctranslate2
    import sentencepiece as spm

    folder = _extract(argos_packages["en-es"], tmp_path)
    processor = spm.SentencePieceProcessor(model_file=str(folder / "sentencepiece.model"))
    translator = ctranslate2.Translator(str(folder / "model"), intra_threads=1)
    sentence = "The world is ready: [1] meets [2] at 17:30 in room 205, " * 4
    pieces = processor.encode(sentence.strip(), out_type=str)
    assert 100 < len(pieces) < 256
    result = translator.translate_batch([pieces], beam_size=4)[0].hypotheses[0]
    assert result == ["▁order" if piece == "▁world" else piece for piece in pieces]


def test_sentence_splitter_is_rule_based_and_offline(tmp_path):
    from minisbd import SBDetect

    model = tmp_path / "xx.onnx"
    model.write_bytes(build_minisbd_model("xx"))
    detector = SBDetect(str(model), use_gpu=False)
    assert detector.sentences("Hello world. How are you? Fine! no end") == [
        "Hello world.",
        "How are you?",
        "Fine!",
        "no end",
    ]
    assert detector.sentences("هل أنت بخير؟ نعم.") == ["هل أنت بخير؟", "نعم."]
    assert detector.sentences("မင်္ဂလာပါ။ ကျေးဇူးပါ။") == ["မင်္ဂလာပါ။", "ကျေးဇူးပါ။"]


def test_builds_are_cached_per_process(tmp_path):
    start = time.perf_counter()
    first = build_test_package(tmp_path / "a", "en", "es", {"▁world": "▁order"})
    second = build_test_package(tmp_path / "b", "en", "es", {"▁world": "▁order"})
    assert first.read_bytes() == second.read_bytes()
    assert time.perf_counter() - start < 10


def test_remap_needs_pieces_of_the_vocabulary(tmp_path):
    with pytest.raises(ValueError, match="not in the SentencePiece vocabulary"):
        build_test_package(tmp_path, "en", "es", {"▁world": "▁new world"})


def test_a_failed_build_does_not_break_the_next_one(tmp_path):
    """Random test order put the refused remap first: its half-written build folder made every
    later build in the process fail with FileExistsError (24 Argos tests in one run)."""
    with pytest.raises(ValueError, match="not in the SentencePiece vocabulary"):
        build_test_package(tmp_path / "bad", "de", "it", {"▁world": "▁new world"})
    package = build_test_package(tmp_path / "good", "de", "it", {"▁world": "▁order"})
    assert package.exists() and package.stat().st_size > 0
