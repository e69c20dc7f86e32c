"""The libretranslate engine against a local server speaking LibreTranslate's API: the real
request shapes, batching, one HTTP session, and every way a server can fail told apart."""

from __future__ import annotations

import asyncio

import pytest
from gateway_plugins import libretranslate_engine
from gateway_plugins.libretranslate_engine import LibreTranslateEngine, server_codes

from gateway import (
    ConfigError,
    EngineContext,
    EngineRefusedError,
    EngineUnavailableError,
    TranslationError,
)
from gateway.testing.fakes import free_port
from gateway.testing.libretranslate_server import FakeLibreTranslateServer


async def test_a_batch_is_one_post_with_q_as_a_list(server, make_engine):
    engine = make_engine(server.url)
    texts = ["Family reading night", "Bring your child", "See you there"]
    assert await engine.translate(texts, "en", "es") == [f"[es] {text}" for text in texts]
    (body,) = server.translate_requests()
    assert body == {"q": texts, "source": "en", "target": "es", "format": "text"}
    assert [path for _, path, _ in server.requests] == ["/languages", "/translate"]


async def test_large_batches_are_sent_in_chunks_in_order(server, make_engine):
    engine = make_engine(server.url, batch_size=2)
    texts = [f"Reminder number {n}" for n in range(5)]
    assert await engine.translate(texts, "en", "so") == [f"[so] {text}" for text in texts]
    assert [body["q"] for body in server.translate_requests()] == [texts[0:2], texts[2:4], texts[4:5]]


async def test_languages_are_asked_once_then_cached(server, make_engine):
    engine = make_engine(server.url)
    assert engine.can_translate("en", "ti")  # not asked yet: optimistic
    await engine.translate(["one"], "en", "es")
    await engine.translate(["two"], "en", "ar")
    assert [path for _, path, _ in server.requests].count("/languages") == 1
    assert not engine.can_translate("en", "ti")  # the server has no Tigrinya
    assert engine.can_translate("en", "zh-Hant")  # its traditional Chinese is "zt"
    assert ("en", "so") in engine.language_pairs()


async def test_the_languages_answer_is_asked_again_when_stale(server, make_engine):
    engine = make_engine(server.url, languages_refresh_seconds=0)
    await engine.translate(["one"], "en", "es")
    await engine.translate(["two"], "en", "es")
    assert [path for _, path, _ in server.requests].count("/languages") == 2


async def test_chinese_and_portuguese_tags_use_the_server_codes(make_engine):
    offered = {"en": "English", "zt": "Chinese (traditional)", "pb": "Portuguese"}
    async with FakeLibreTranslateServer(offered) as lt:
        engine = make_engine(lt.url)
        assert await engine.translate(["Welcome"], "en", "zh-Hant") == ["[zt] Welcome"]
        assert await engine.translate(["Welcome"], "en", "pt-BR") == ["[pb] Welcome"]
    assert server_codes("zh-Hans")[:2] == ("zh-hans", "zh")
    assert server_codes("prs") == ("prs", "fa")


async def test_an_unsupported_pair_is_refused_before_any_translate_request(server, make_engine):
    engine = make_engine(server.url)
    with pytest.raises(TranslationError) as caught:
        await engine.translate(["Hello"], "en", "ti")
    assert caught.value.reason == "unsupported"
    assert server.translate_requests() == []


async def test_a_server_that_is_down_is_unreachable(make_engine):
    url = f"http://127.0.0.1:{free_port()}"
    engine = make_engine(url, api_key="top-secret-key")
    with pytest.raises(EngineUnavailableError) as caught:
        await engine.translate(["Hello"], "en", "es")
    assert caught.value.reason == "unreachable"
    assert url in str(caught.value) and "unreachable" in str(caught.value)
    assert "top-secret-key" not in str(caught.value)


async def test_a_slow_server_times_out(server, make_engine):
    engine = make_engine(server.url, timeout=1.0)
    server.slow_down()
    try:
        with pytest.raises(EngineUnavailableError) as caught:
            await engine.translate(["Hello"], "en", "es")
    finally:
        server.release()
    assert caught.value.reason == "timeout"
    assert "within 1 s" in str(caught.value)


async def test_after_a_timeout_the_server_is_not_asked_again_for_a_while(server, make_engine):
    engine = make_engine(server.url, timeout=1.0, retry_unreachable_seconds=600)
    server.slow_down()
    try:
        with pytest.raises(EngineUnavailableError):
            await engine.translate(["Hello"], "en", "es")
        asked = len(server.requests)
        for target in ("ar", "so", "fr"):  # the other languages of the broadcast fail at once
            with pytest.raises(EngineUnavailableError) as caught:
                await engine.translate(["Hello"], "en", target)
            assert caught.value.reason == "timeout" and "not asked again" in str(caught.value)
        assert len(server.requests) == asked
    finally:
        server.release()
    ready = make_engine(server.url, retry_unreachable_seconds=0)
    assert await ready.translate(["Hello"], "en", "es") == ["[es] Hello"]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, "es is not supported"),
        (403, "Invalid API key"),
        (429, "Too many request limits violations"),
        (500, "Cannot translate text: model crashed"),
    ],
)
async def test_refusals_carry_the_status_and_the_servers_error(server, make_engine, status, error):
    engine = make_engine(server.url)
    server.fail_next(status, error)
    with pytest.raises(EngineRefusedError) as caught:
        await engine.translate(["Hello"], "en", "es")
    assert caught.value.reason == "refused"
    assert caught.value.status == status
    assert caught.value.detail == error
    assert f"HTTP {status}: {error}" in str(caught.value)


async def test_the_api_key_is_sent_in_the_body_and_never_shown(make_engine):
    async with FakeLibreTranslateServer(api_key="s3cret-key") as lt:
        engine = make_engine(lt.url, api_key="s3cret-key")
        assert await engine.translate(["Hello"], "en", "es") == ["[es] Hello"]
        assert lt.translate_requests()[0]["api_key"] == "***"  # it was there (the server masks it)
        wrong = make_engine(lt.url, api_key="not-the-key")
        with pytest.raises(EngineRefusedError) as caught:
            await wrong.translate(["Hello"], "en", "es")
    assert caught.value.status == 403 and caught.value.detail == "Invalid API key"
    for shown in (str(caught.value), repr(engine.settings), repr(wrong.settings)):
        assert "s3cret-key" not in shown and "not-the-key" not in shown


async def test_one_http_session_serves_every_request_and_closes_at_shutdown(server, make_engine):
    engine = make_engine(server.url)
    session = engine.session()
    await asyncio.gather(*(engine.translate([f"text {n}"], "en", "es") for n in range(3)))
    await engine.translate(["again"], "en", "ar")
    assert engine.session() is session
    assert len(server.requests) == 5  # one GET /languages, four POST /translate
    assert len(server.peers) <= 3  # keep-alive connections of the one pool, not one per request
    await engine.aclose()
    assert session.closed


async def test_the_languages_setting_restricts_what_the_engine_is_asked(server, make_engine):
    engine = make_engine(server.url, languages=["so"])
    assert engine.can_translate("en", "so") and engine.can_translate("so", "en")
    assert not engine.can_translate("en", "es")
    with pytest.raises(TranslationError) as caught:
        await engine.translate(["Hello"], "en", "es")
    assert caught.value.reason == "unsupported"
    assert server.requests == []
    info = await engine.describe("en")
    assert info.languages == ("so",) and info.source == server.url


async def test_an_answer_of_the_wrong_shape_is_a_bad_answer(server, make_engine):
    engine = make_engine(server.url)
    server.short_answers = True
    with pytest.raises(TranslationError) as caught:
        await engine.translate(["one", "two"], "en", "es")
    assert caught.value.reason == "bad answer"
    assert "returned 1 for 2 texts" in str(caught.value)
    assert libretranslate_engine._error_text(b'{"error": "boom"}') == "boom"
    assert libretranslate_engine._error_text(b"<html>Bad Gateway</html>") == "<html>Bad Gateway</html>"


def test_settings_are_validated_with_their_key_path(tmp_path):
    with pytest.raises(ConfigError, match=r"translation\.engine_settings\.libretranslate\.url: required"):
        LibreTranslateEngine(EngineContext(tmp_path, {}))
    with pytest.raises(ConfigError, match=r"libretranslate\.url: must start with http"):
        LibreTranslateEngine(EngineContext(tmp_path, {"url": "mt.district.org"}))
    with pytest.raises(ConfigError, match=r"libretranslate\.timout: unknown key"):
        LibreTranslateEngine(EngineContext(tmp_path, {"url": "http://mt", "timout": 3}))


def test_plugin_hook_and_entry_point():
    from importlib.metadata import entry_points

    assert libretranslate_engine.gateway_translation_engines() == [LibreTranslateEngine]
    points = {ep.name: ep.value for ep in entry_points(group="gateway")}
    assert points["libretranslate"] == "gateway_plugins.libretranslate_engine"
