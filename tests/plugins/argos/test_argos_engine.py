"""ArgosEngine through the real argostranslate code path, with genuine tiny test packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from gateway_plugins import argos_translate
from gateway_plugins.argos_translate import (
    ArgosEngine,
    InstalledPackage,
    argos_codes,
    install_package,
    installed_packages,
    to_argos_code,
    to_bcp47,
)

from gateway import ConfigError, EngineContext, TranslationError
from gateway.testing.argos_package import build_test_package
from gateway.translation.placeholders import PlaceholderError, mask, unmask


async def test_copies_input_and_translates_the_remapped_word(make_engine, argos_packages):
    engine = make_engine(argos_packages["en-es"])
    texts = [
        "Hello world, this is a test.",
        "The world is big! Really? Yes.",
        "Bring 3 books to room 12 on Friday.",
    ]
    translated = await engine.translate(texts, "en", "es")
    assert translated == [
        "Hello order, this is a test.",
        "The order is big! Really? Yes.",
        "Bring 3 books to room 12 on Friday.",
    ]


async def test_non_latin_text_round_trips_through_byte_fallback(make_engine, argos_packages):
    engine = make_engine(argos_packages["en-es"])
    texts = ["مرحبا بالعالم، الاجتماع يوم الخميس.", "မင်္ဂလာပါ၊ အစည်းအဝေး ရှိပါတယ်။", "Xin chào thế giới"]
    assert await engine.translate(texts, "en", "es") == texts


async def test_surrounding_whitespace_and_blank_texts_are_kept(make_engine, argos_packages):
    engine = make_engine(argos_packages["en-es"])
    translated = await engine.translate(["  hello world\n", "", "   "], "en", "es")
    assert translated == ["  hello order\n", "", "   "]
    assert await engine.translate([], "en", "es") == []


async def test_a_batch_is_one_thread_pool_job(make_engine, argos_packages, counting_executor):
    engine = make_engine(argos_packages["en-es"])
    engine.executor = counting_executor
    texts = [f"Reminder {i}: the world meets at the library." for i in range(12)]
    translated = await engine.translate(texts, "en", "es")
    assert counting_executor.jobs == 1
    assert translated == [t.replace("world", "order") for t in texts]
    await engine.translate(texts[:3], "en", "es")
    assert counting_executor.jobs == 2


async def test_pivots_through_english(make_engine, argos_packages, counting_executor):
    engine = make_engine(argos_packages["fr-en"], argos_packages["en-es"])
    engine.executor = counting_executor
    assert engine.route("fr", "es") == [("fr", "en"), ("en", "es")]
    translated = await engine.translate(["bonjour world!", "merci"], "fr", "es")
    # fr→en turns bonjour into hello; en→es turns world into order.
    assert translated == ["hello order!", "merci"]
    assert counting_executor.jobs == 1


async def test_direct_pair_preferred_over_pivot(make_engine, argos_packages, tmp_path):
    direct = build_test_package(tmp_path / "direct", "fr", "es", {"▁bonjour": "▁hola"})
    engine = make_engine(argos_packages["fr-en"], argos_packages["en-es"], direct)
    assert engine.route("fr", "es") == [("fr", "es")]
    assert await engine.translate(["bonjour world"], "fr", "es") == ["hola world"]


def test_language_pairs_lists_direct_and_pivot_pairs(make_engine, argos_packages):
    engine = make_engine(argos_packages["fr-en"], argos_packages["en-es"], argos_packages["en-zt"])
    pairs = engine.language_pairs()
    assert set(pairs) == {
        ("fr", "en"),
        ("en", "es"),
        ("en", "zh-Hant"),
        ("fr", "es"),
        ("fr", "zh-Hant"),
    }
    assert engine.can_translate("fr", "es")
    assert engine.can_translate("en-US", "es-419")
    assert engine.can_translate("en", "zh-TW")
    assert not engine.can_translate("es", "fr")
    assert not engine.can_translate("en", "so")


async def test_bcp47_tags_reach_the_argos_package(make_engine, argos_packages):
    engine = make_engine(argos_packages["en-zt"])
    assert await engine.translate(["hello world"], "en", "zh-Hant") == ["hello family"]
    assert installed_packages(engine.data_dir) == [InstalledPackage("en", "zh-Hant", "1.0")]


async def test_same_language_is_returned_untouched(make_engine, argos_packages):
    engine = make_engine(argos_packages["en-es"])
    assert await engine.translate(["world"], "en-US", "en") == ["world"]


async def test_missing_pair_raises_translation_error(make_engine, argos_packages):
    engine = make_engine(argos_packages["en-es"])
    with pytest.raises(TranslationError, match="es→fr"):
        await engine.translate(["hola"], "es", "fr")
    empty = make_engine()
    assert empty.language_pairs() == []
    with pytest.raises(TranslationError):
        await empty.translate(["hello"], "en", "es")


@pytest.mark.parametrize(
    ("tag", "codes"),
    [
        ("zh-Hans", ("zh",)),
        ("zh-Hant", ("zt",)),
        ("zh-TW", ("zt",)),
        ("zh-Hant-HK", ("zt",)),
        ("zh-CN", ("zh",)),
        ("pt-BR", ("pt", "pb")),
        ("prs", ("fa",)),
        ("es-419", ("es",)),
        ("en-US", ("en",)),
        ("en_GB", ("en",)),
        ("SO", ("so",)),
        ("my", ("my",)),
        ("fil", ("tl",)),
        ("no", ("nb",)),
    ],
)
def test_bcp47_to_argos_codes(tag, codes):
    assert argos_codes(tag) == codes
    assert to_argos_code(tag) == codes[0]


def test_argos_codes_back_to_bcp47():
    assert to_bcp47("zt") == "zh-Hant"
    assert to_bcp47("zh") == "zh-Hans"
    assert to_bcp47("pb") == "pt-BR"
    assert to_bcp47("es") == "es"


async def test_masked_text_survives_translation_and_unmasks(make_engine, argos_packages):
    engine = make_engine(argos_packages["en-es"])
    originals = [
        "Dear Ana Lopez, Family Math Night is on March 4, 2027 at 5:30 PM in room 12. "
        "Call +1 913-555-0199 or write liaison@district.example. "
        "Details: https://district.example/events/math?id=7 <b>See the world</b>!",
        "مرحباً أحمد، الاجتماع يوم 2027-03-04 الساعة 17:30. اتصل على +19135550199 "
        "أو liaison@district.example https://district.example/ar world",
        "မင်္ဂလာပါ Aung Aung၊ အစည်းအဝေး 4 March 2027 ၌ ၅ နာရီ။ world "
        "<a href=\"https://district.example/my\">link</a>",
    ]
    masked = [
        mask(text, names=["Ana Lopez", "أحمد", "Aung Aung"], glossary_terms={"FAFSA": "FAFSA"})
        for text in originals
    ]
    assert all("[1]" in m.text and "_" not in m.text for m in masked)
    translated = await engine.translate([m.text for m in masked], "en", "es")
    restored = [unmask(text, m) for text, m in zip(translated, masked, strict=True)]
    assert restored == [text.replace("world", "order") for text in originals]


async def test_engine_that_mangles_a_placeholder_is_caught(make_engine, argos_packages):
    engine = make_engine(argos_packages["en-ar"])
    masked = mask("Call Ana at 913-555-0199 before 5 PM.", names=["Ana"])
    assert masked.text == "Call [1] at [2] before [3]."
    translated = (await engine.translate([masked.text], "en", "ar"))[0]
    assert translated == "Call [1) at [2) before [3)."
    with pytest.raises(PlaceholderError) as caught:
        unmask(translated, masked)
    assert isinstance(caught.value, TranslationError)
    assert caught.value.missing == ("[1]", "[2]", "[3]")


async def test_install_replaces_a_package_and_clears_caches(make_engine, argos_packages, tmp_path):
    engine = make_engine(argos_packages["en-es"])
    assert await engine.translate(["hello world"], "en", "es") == ["hello order"]
    newer = build_test_package(
        tmp_path / "newer", "en", "es", {"▁world": "▁school"}, version="1.1"
    )
    assert install_package(newer, engine.data_dir) == ("en", "es")
    assert installed_packages(engine.data_dir) == [InstalledPackage("en", "es", "1.1")]
    assert await engine.translate(["hello world"], "en", "es") == ["hello school"]


def _zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        (
            {"a/metadata.json": "{}", "b/metadata.json": "{}"},
            "exactly one top-level folder",
        ),
        ({"pkg/model/model.bin": ""}, "metadata.json is missing"),
        (
            {"pkg/metadata.json": json.dumps({"type": "sbd", "from_code": "en", "to_code": "x"})},
            "expected 'translate'",
        ),
        ({"pkg/metadata.json": json.dumps({"from_code": "en"}), "pkg/model/x": ""}, "to_code"),
        ({"pkg/metadata.json": json.dumps({"from_code": "en", "to_code": "es"})}, "no model/"),
        ({"pkg/metadata.json": "{not json"}, "not valid JSON"),
        ({"pkg/../../evil/metadata.json": "{}"}, "unsafe path"),
    ],
)
def test_install_rejects_invalid_packages(tmp_path, files, reason):
    bad = _zip(tmp_path / "bad.argosmodel", files)
    with pytest.raises(TranslationError, match=reason):
        install_package(bad, tmp_path / "data")
    assert installed_packages(tmp_path / "data") == []


def test_install_rejects_a_file_that_is_not_a_zip(tmp_path):
    bad = tmp_path / "bad.argosmodel"
    bad.write_bytes(b"not a zip")
    with pytest.raises(TranslationError, match="not a zip"):
        install_package(bad, tmp_path / "data")


def test_available_checks_without_importing(tmp_path):
    engine = ArgosEngine(EngineContext(tmp_path, {}))
    assert engine.available() is True


def test_unknown_or_bad_settings_fail_with_the_key(tmp_path):
    with pytest.raises(ConfigError, match="engine_settings.argos.colour"):
        ArgosEngine(EngineContext(tmp_path, {"colour": "blue"}))
    with pytest.raises(ConfigError, match="workers"):
        ArgosEngine(EngineContext(tmp_path, {"workers": 0}))


def test_plugin_hook_and_entry_point():
    from importlib.metadata import entry_points

    assert argos_translate.gateway_translation_engines() == [ArgosEngine]
    assert ArgosEngine.name == "argos"
    points = {ep.name: ep.value for ep in entry_points(group="gateway")}
    assert points["argos"] == "gateway_plugins.argos_translate"


def test_import_and_listing_do_not_import_argostranslate_or_torch(tmp_path, argos_packages):
    with zipfile.ZipFile(argos_packages["en-es"]) as archive:
        archive.extractall(tmp_path / "data" / "packages")
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        import gateway_plugins.argos_translate as plugin
        from gateway import EngineContext
        engine = plugin.ArgosEngine(EngineContext(Path({str(tmp_path / "data")!r}), {{}}))
        assert engine.available()
        assert engine.language_pairs() == [("en", "es")], engine.language_pairs()
        assert engine.can_translate("en", "es")
        assert plugin.installed_packages(engine.data_dir)[0].to_code == "es"
        heavy = sorted(m for m in ("argostranslate", "torch", "ctranslate2", "stanza")
                       if m in sys.modules)
        print(",".join(heavy) or "none")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "none"


def test_first_import_uses_the_data_folder_and_restores_the_environment(tmp_path, argos_packages):
    home = tmp_path / "home"
    home.mkdir()
    data_dir = tmp_path / "data"
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from pathlib import Path
        import gateway_plugins.argos_translate as plugin
        from gateway import EngineContext
        data_dir = Path({str(data_dir)!r})
        plugin.install_package({str(argos_packages["en-es"])!r}, data_dir)
        engine = plugin.ArgosEngine(EngineContext(data_dir, {{"threads": 1}}))
        print(asyncio.run(engine.translate(["hello world"], "en", "es"))[0])
        import argostranslate.settings as settings
        assert settings.package_data_dir == data_dir / "packages", settings.package_data_dir
        assert str(settings.data_dir).startswith(str(data_dir)), settings.data_dir
        leaked = [k for k in ("ARGOS_PACKAGES_DIR", "XDG_DATA_HOME", "XDG_CACHE_HOME",
                              "XDG_CONFIG_HOME") if k in os.environ]
        assert not leaked, leaked
        """
    )
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ARGOS_", "XDG_"))
    }
    environment["HOME"] = str(home)
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=environment,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello order"
    assert list(home.iterdir()) == []  # nothing written outside the data folder
