"""The libretranslate engine inside a gateway: configured from config.yaml (API key from the
environment), through the translation service with its placeholder guard, memory and fallback.
Each failure reaches the result and the log as its own reason, never with the text."""

from __future__ import annotations

import logging

import pytest

from gateway.testing.engines import DeterministicEnginePlugin
from gateway.testing.fakes import free_port
from gateway.testing.harness import open_gateway, write_config
from gateway.testing.libretranslate_server import FakeLibreTranslateServer

TEXT = "The reading night starts at 5:30 PM on March 4; details at https://district.example/r."


def _config(tmp_path, url, **translation):
    settings = {
        "engines": ["libretranslate"],
        "fallback": "source_language",
        "engine_settings": {
            "libretranslate": {"url": url, "api_key": "${LT_API_KEY}", "timeout": 5},
        },
        **translation,
    }
    return write_config(tmp_path / "gw", translation=settings)


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv("LT_API_KEY", "k-123-secret")
    return "k-123-secret"


async def test_translates_with_the_key_from_the_environment_and_remembers(tmp_path, api_key):
    async with FakeLibreTranslateServer(api_key=api_key) as lt:
        async with open_gateway(_config(tmp_path, lt.url)) as gw:
            (first,) = await gw.translation.translate_many([TEXT], "es")
            assert first.origin == "machine" and first.engine == "libretranslate"
            assert first.text.startswith("[es] The reading night")
            assert "https://district.example/r" in first.text and "5:30 PM" in first.text
            (sent,) = lt.translate_requests()
            assert sent["api_key"] == "***" and "https://" not in sent["q"][0]  # placeholders masked
            (again,) = await gw.translation.translate_many([TEXT], "es")
            assert again.origin == "memory"
            assert len(lt.translate_requests()) == 1


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ("drop", "placeholder lost"),
        ("down", "unreachable"),
        ("refuse", "refused"),
    ],
)
async def test_each_failure_falls_back_with_its_reason_in_result_and_log(
    tmp_path, api_key, caplog, script, reason
):
    caplog.set_level(logging.WARNING, logger="gateway.translation")
    async with FakeLibreTranslateServer(api_key=api_key) as lt:
        url = f"http://127.0.0.1:{free_port()}" if script == "down" else lt.url
        lt.drop_placeholders = script == "drop"
        if script == "refuse":
            lt.fail_next(429, "Slowdown: 30 per 1 minute")
        async with open_gateway(_config(tmp_path, url)) as gw:
            (result,) = await gw.translation.translate_many([TEXT], "es")
    assert result.origin == "fallback" and result.text == TEXT
    assert result.reason == reason
    assert f"engine libretranslate en→es: {reason}" in caplog.text
    assert "reading night" not in caplog.text and api_key not in caplog.text
    if script == "refuse":
        assert "HTTP 429: Slowdown: 30 per 1 minute" in caplog.text


async def test_next_engine_takes_over_when_the_server_is_down(tmp_path, api_key):
    url = f"http://127.0.0.1:{free_port()}"
    config = _config(tmp_path, url, engines=["libretranslate", "table"], fallback="next_engine")
    plugin = DeterministicEnginePlugin()
    async with open_gateway(config, extra_plugins=(plugin,)) as gw:
        (result,) = await gw.translation.translate_many(["Welcome to the library"], "es")
    assert result.origin == "machine" and result.engine == "table"
    assert result.text == "[es] Bienvenidos to the biblioteca"


async def test_a_session_is_closed_when_the_gateway_closes(tmp_path, api_key):
    async with FakeLibreTranslateServer(api_key=api_key) as lt:
        async with open_gateway(_config(tmp_path, lt.url)) as gw:
            (engine,) = gw.engines
            await gw.translation.translate_many(["Welcome"], "so")
            session = engine.session()
        assert session.closed


def test_a_missing_environment_variable_or_unknown_key_stops_the_gateway(tmp_path, monkeypatch, cli):
    monkeypatch.delenv("LT_API_KEY", raising=False)
    config = _config(tmp_path, "http://127.0.0.1:9")
    result = cli(["families", "list", "--json"], config)
    assert result.exit_code == 2
    assert "LT_API_KEY is not set" in result.output
    monkeypatch.setenv("LT_API_KEY", "x")
    settings = {"libretranslate": {"url": "http://mt", "retries": 3}}
    config = write_config(tmp_path / "gw2", translation={"engines": [], "engine_settings": settings})
    result = cli(["families", "list", "--json"], config)
    assert result.exit_code == 2
    assert "translation.engine_settings.libretranslate.retries: unknown key" in result.output
