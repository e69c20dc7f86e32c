"""The ctranslate2 engine on tiny genuine CTranslate2 models (NLLB-, MADLAD- and Marian-style):
what it hands the real ``Translator`` (codes, target prefixes, batches) and what comes back
(the models remap ``▁world`` → ``▁order``, so the output is the model's, not the input)."""

from __future__ import annotations

import asyncio
import shutil

import pytest
from gateway_plugins import ctranslate2_engine
from gateway_plugins.ctranslate2_engine import CTranslate2Engine, cached_models, inspect_model

from gateway import ConfigError, EngineContext, TranslationError

HELLO = "Hello world, this is a test."
HELLO_OUT = "Hello order, this is a test."


async def test_nllb_source_codes_target_prefix_and_the_models_output(make_engine, nllb_model, batches):
    engine = make_engine(nllb_model)
    translated = await engine.translate([HELLO, "The world is big!"], "en", "so")
    assert translated == [HELLO_OUT, "The order is big!"]
    (call,) = batches
    assert [tokens[0] for tokens in call.source] == ["eng_Latn", "eng_Latn"]
    assert all(tokens[-1] == "</s>" for tokens in call.source)
    assert call.target_prefix == [["som_Latn"], ["som_Latn"]]
    assert call.options["beam_size"] == 4
    assert call.thread.startswith("ctranslate2")  # in the engine's pool, not on the event loop


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        ("so", "som_Latn"), ("prs", "prs_Arab"), ("my", "mya_Mymr"), ("ne", "npi_Deva"),
        ("sw", "swh_Latn"), ("rw", "kin_Latn"), ("ti", "tir_Ethi"), ("ht", "hat_Latn"),
        ("ps", "pbt_Arab"), ("zh-Hant", "zho_Hant"), ("zh-Hans", "zho_Hans"), ("zh-TW", "zho_Hant"),
        ("fa-AF", "prs_Arab"), ("es-MX", "spa_Latn"), ("ar", "arb_Arab"),
    ],
)  # fmt: skip
async def test_bcp47_tags_reach_the_model_as_nllb_codes(make_engine, nllb_model, batches, tag, code):
    engine = make_engine(nllb_model)
    assert await engine.translate(["world"], "en", tag) == ["order"]
    assert batches[-1].target_prefix == [[code]]


async def test_two_non_english_languages_are_translated_directly(make_engine, nllb_model, batches):
    engine = make_engine(nllb_model)
    assert engine.can_translate("so", "ar") and engine.can_translate("prs", "ti")
    assert await engine.translate(["Salaan world"], "so", "ar") == ["Salaan order"]
    (call,) = batches  # one pass through the model: no English pivot
    assert call.source[0][0] == "som_Latn" and call.target_prefix == [["arb_Arab"]]
    assert all("eng_Latn" not in tokens for tokens in call.source)


async def test_madlad_puts_the_target_token_first_and_no_prefix(make_engine, madlad_model, batches):
    engine = make_engine(madlad_model)
    assert engine.can_translate("en", "so") and engine.can_translate("so", "fr")
    assert not engine.can_translate("en", "ht")  # no <2ht> in this model
    assert await engine.translate([HELLO], "en", "so") == [HELLO_OUT]
    assert await engine.translate(["Hello world"], "en", "zh-Hant") == ["Hello order"]
    first, second = batches
    assert first.source[0][0] == "<2so>" and first.source[0][-1] == "</s>"
    assert first.target_prefix is None
    assert second.source[0][0] == "<2zh_Hant>"


async def test_marian_models_translate_their_one_pair(make_engine, marian_model, batches):
    engine = make_engine(marian_model)
    assert engine.can_translate("en", "es") and engine.can_translate("en-US", "es-MX")
    assert not engine.can_translate("en", "fr") and not engine.can_translate("es", "en")
    assert await engine.translate([HELLO], "en", "es") == [HELLO_OUT]
    (call,) = batches
    assert call.target_prefix is None
    assert call.source[0][-1] != "</s>"  # config.json says CTranslate2 appends it for Marian


async def test_a_folder_of_marian_pairs_is_one_model_dir(make_engine, marian_model, tmp_path):
    folder = tmp_path / "opus"
    shutil.copytree(marian_model, folder / "opus-mt-en-es")
    shutil.copytree(marian_model, folder / "opus-mt-es-en")
    engine = make_engine(folder)
    assert engine.can_translate("en", "es") and engine.can_translate("es", "en")
    assert await engine.translate(["hola world"], "es", "en") == ["hola order"]


async def test_a_batch_is_one_translate_call_and_sentences_are_kept_apart(make_engine, nllb_model, batches):
    engine = make_engine(nllb_model, max_batch_size=8)
    texts = [f"  Reminder {n}: the world meets. Bring the world!\nThank you.  " for n in range(12)]
    translated = await engine.translate(texts, "en", "es")
    assert translated == [t.replace("world", "order") for t in texts]
    (call,) = batches
    assert len(call.source) == 36  # three sentences per text, one translate_batch for all
    assert call.options["max_batch_size"] == 8
    assert await engine.translate(["", "   "], "en", "es") == ["", "   "]
    assert await engine.translate([], "en", "es") == []
    assert len(batches) == 1  # nothing to translate: the model is not asked


async def test_non_latin_text_round_trips(make_engine, nllb_model):
    engine = make_engine(nllb_model)
    texts = ["مرحبا بالعالم، الاجتماع يوم الخميس.", "မင်္ဂလာပါ၊ အစည်းအဝေး ရှိပါတယ်။", "ሰላም ዓለም"]
    assert await engine.translate(texts, "ar", "en") == texts


async def test_a_model_is_loaded_once_per_process(make_engine, nllb_model):
    engines = [make_engine(nllb_model, workers=2) for _ in range(3)]
    results = await asyncio.gather(
        *(engine.translate([f"world {n}"], "en", "so") for n in range(4) for engine in engines)
    )
    assert all(result[0].startswith("order") for result in results)
    loaded = [entry for entry in cached_models() if entry[0] == str(nllb_model) and entry[3] == 2]
    assert loaded == [(str(nllb_model), "cpu", "int8", 2, 1)]


async def test_an_unsupported_pair_says_so(make_engine, nllb_model):
    engine = make_engine(nllb_model)
    assert not engine.can_translate("en", "kar")  # Karen is not in NLLB-200
    with pytest.raises(TranslationError) as caught:
        await engine.translate(["Hello"], "en", "kar")
    assert caught.value.reason == "unsupported"


async def test_describe_reports_languages_codes_and_the_licence(make_engine, nllb_model):
    engine = make_engine(nllb_model)
    info = await engine.describe("en")
    assert len(info.languages) == 201 and "en" not in info.languages
    assert {"so", "prs", "ti", "ht", "rw", "zh-Hant"} <= set(info.languages)
    assert info.codes["so"] == "som_Latn" and info.codes["prs"] == "prs_Arab"
    assert info.licence is not None and "CC-BY-NC-4.0" in info.licence
    assert any("non-commercial" in note for note in info.notes)


def test_install_checks_the_folder_and_names_every_missing_file(make_engine, nllb_model, tmp_path):
    broken = tmp_path / "nllb-broken"
    shutil.copytree(nllb_model, broken)
    (broken / "sentencepiece.bpe.model").unlink()
    (broken / "config.json").unlink()
    engine = make_engine()
    with pytest.raises(TranslationError) as caught:
        engine.install_model(broken)
    message = str(caught.value)
    assert str(broken) in message
    assert "config.json" in message and "sentencepiece.bpe.model" in message
    assert "--copy_files sentencepiece.bpe.model" in message
    assert not engine.available()
    with pytest.raises(TranslationError, match="cannot tell the model family"):
        inspect_model(tmp_path)


async def test_install_registers_the_model_for_the_engine(make_engine, nllb_model, madlad_model, tmp_path):
    engine = make_engine()
    assert not engine.available() and not engine.can_translate("en", "so")
    installed = engine.install_model(nllb_model)
    assert installed.model.family == "nllb" and installed.languages == 202
    assert "CC-BY-NC-4.0" in installed.licence
    assert engine.available() and engine.can_translate("en", "so")
    assert await engine.translate(["world"], "en", "so") == ["order"]
    again = CTranslate2Engine(EngineContext(engine.data_dir, {}))  # another process, same folder
    assert [m.path for m in again.models()] == [nllb_model]
    assert engine.install_model(madlad_model).model.family == "madlad"
    replaced = engine.install_model(nllb_model).replaced
    assert [m.path for m in replaced] == [nllb_model]
    assert [m.family for m in engine.models()] == ["madlad", "nllb"]


def test_a_marian_model_needs_a_pair_from_its_name_or_given(make_engine, marian_model, tmp_path):
    unnamed = tmp_path / "my-model"
    shutil.copytree(marian_model, unnamed)
    engine = make_engine()
    with pytest.raises(TranslationError, match="--pair en-es"):
        engine.install_model(unnamed)
    installed = engine.install_model(unnamed, pair=["en", "so"])
    assert installed.model.pair == ("en", "so") and "CC-BY-4.0" in installed.licence
    assert engine.can_translate("en", "so")


def test_model_dir_settings_are_checked_at_start(tmp_path, nllb_model):
    with pytest.raises(ConfigError, match=r"ctranslate2\.model_dir: .*no such folder"):
        CTranslate2Engine(EngineContext(tmp_path, {"model_dir": str(tmp_path / "nope")}))
    with pytest.raises(ConfigError, match=r"ctranslate2\.compute_type: Input should be"):
        CTranslate2Engine(EngineContext(tmp_path, {"model_dir": str(nllb_model), "compute_type": "int4"}))
    with pytest.raises(ConfigError, match=r"ctranslate2\.beam: unknown key"):
        CTranslate2Engine(EngineContext(tmp_path, {"beam": 2}))
    with pytest.raises(ConfigError, match=r"not a complete madlad model folder: missing spiece\.model"):
        CTranslate2Engine(EngineContext(tmp_path, {"model_dir": str(nllb_model), "family": "madlad"}))


def test_plugin_hook_and_entry_point():
    from importlib.metadata import entry_points

    assert ctranslate2_engine.gateway_translation_engines() == [CTranslate2Engine]
    points = {ep.name: ep.value for ep in entry_points(group="gateway")}
    assert points["ctranslate2"] == "gateway_plugins.ctranslate2_engine"
