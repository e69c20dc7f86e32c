"""Translation engine settings are validated like channel settings: each engine's ``Settings``
model checks ``translation.engine_settings.<name>`` when the gateway starts, and a wrong key
or value stops it with the file, the key path and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import load_config, parse_config
from gateway.errors import ConfigError
from gateway.resources import EXAMPLE_CONFIG

EXAMPLE = EXAMPLE_CONFIG


def _gateway(tmp_path: Path, engines: list[str], settings: dict) -> Gateway:
    config = parse_config(
        {"translation": {"engines": engines, "engine_settings": settings}}, tmp_path / "config.yaml"
    )
    return Gateway(config)


@pytest.mark.parametrize(
    ("engines", "settings", "expected"),
    [
        (
            ["ctranslate2"],
            {"ctranslate2": {"foo": 1}},
            r"config\.yaml: translation\.engine_settings\.ctranslate2\.foo: unknown key",
        ),
        (
            [],  # checked even when the engine is not switched on yet
            {"ctranslate2": {"family": "m2m100"}},
            r"engine_settings\.ctranslate2\.family: Input should be 'nllb', 'madlad' or 'marian'",
        ),
        (
            ["ctranslate2"],
            {"ctranslate2": {"model_dir": "models/nllb"}},
            r"translation\.engine_settings\.ctranslate2\.model_dir: .*/models/nllb: no such folder",
        ),
        (
            ["argos"],
            {"argos": {"device": "tpu"}},
            r"translation\.engine_settings\.argos\.device: Input should be 'cpu', 'cuda' or 'auto'",
        ),
        (
            ["argos"],
            {"argos": {"workers": 0}},
            r"translation\.engine_settings\.argos\.workers: Input should be greater than or equal to 1",
        ),
        (
            ["libretranslate"],
            {"libretranslate": {"api_key": "x"}},
            r"translation\.engine_settings\.libretranslate\.url: required",
        ),
        (
            ["argos"],
            {"argoss": {}},
            r"engine_settings\.argoss: no installed engine is called 'argoss' \(installed: .*argos",
        ),
    ],
)
def test_bad_engine_settings_stop_the_gateway_with_the_key_path(tmp_path, engines, settings, expected):
    with pytest.raises(ConfigError, match=expected):
        _gateway(tmp_path, engines, settings)


def test_relative_model_dir_is_relative_to_the_config_file(tmp_path):
    from gateway.testing.ct2_models import build_ct2_model

    build_ct2_model("marian", tmp_path / "models", pair=("en", "es"))
    gateway = _gateway(tmp_path, ["ctranslate2"], {"ctranslate2": {"model_dir": "models"}})
    (engine,) = gateway.engines
    assert engine.settings.model_dir == tmp_path / "models"
    assert engine.can_translate("en", "es")


def test_the_cli_stops_with_the_key_path(tmp_path, cli):
    path = tmp_path / "config.yaml"
    path.write_text("translation:\n  engine_settings:\n    ctranslate2:\n      beams: 4\n", encoding="utf-8")
    result = cli(["families", "list", "--json"], path)
    assert result.exit_code == 2
    assert "translation.engine_settings.ctranslate2.beams: unknown key" in result.output


def test_the_example_config_documents_every_engine_setting():
    text = EXAMPLE.read_text(encoding="utf-8")
    from gateway.plugins import engine_types, make_plugin_manager

    for name, cls in engine_types(make_plugin_manager()).items():
        for key in cls.Settings.model_fields:
            assert f"{key}:" in text.split(f"    {name}:", 1)[1].split("\n\n", 1)[0], (name, key)
    assert load_config(EXAMPLE).translation.engines
