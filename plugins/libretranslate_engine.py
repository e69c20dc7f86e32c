"""The ``libretranslate`` engine: a district's own LibreTranslate server.

It speaks LibreTranslate's HTTP API:

- ``GET /languages`` → ``[{"code", "name", "targets": [...]}]``: what the server translates;
  kept for ``languages_refresh_seconds`` and asked again after that (or when it failed);
- ``POST /translate`` with JSON ``{"q": [texts], "source", "target", "format": "text",
  "api_key"}`` → ``{"translatedText": [texts]}``; a batch is sent in chunks of ``batch_size``.

One ``aiohttp.ClientSession`` serves every request of the engine (one engine per process),
closed when the gateway shuts down. Failures are told apart, in the raised error and so in
every note and log line: the server cannot be reached or does not answer in ``timeout``
seconds (:class:`gateway.EngineUnavailableError`, reason ``unreachable`` / ``timeout``); it
answers with an error status and its own ``{"error": ...}`` text
(:class:`gateway.EngineRefusedError`: 400 bad request or unsupported pair, 403 API key, 429
rate limit, 500); it does not offer the pair (reason ``unsupported``); or its translation
loses a placeholder (checked by the core's translation service: ``placeholder lost``).
The API key is a secret: it goes in the request body, never in a URL, a message or a log.

Settings (``translation.engine_settings.libretranslate``, :class:`LibreTranslateSettings`):
``url``, ``api_key`` (write ``${LIBRETRANSLATE_API_KEY}``), ``timeout``, ``languages``,
``batch_size``, ``languages_refresh_seconds``, ``retry_unreachable_seconds`` (after the server
was unreachable or timed out, fail at once for that long instead of waiting on every language
of a broadcast).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import aiohttp
from pydantic import Field, SecretStr, field_validator

from gateway import (
    EngineContext,
    EngineInfo,
    EngineRefusedError,
    EngineSettings,
    EngineUnavailableError,
    TranslationEngine,
    TranslationError,
    hookimpl,
)

__all__ = [
    "LibreTranslateEngine",
    "LibreTranslateSettings",
    "gateway_translation_engines",
    "server_codes",
]

log = logging.getLogger("gateway.translation.libretranslate")

_MAX_ERROR_TEXT = 300


class LibreTranslateSettings(EngineSettings):
    """``translation.engine_settings.libretranslate``."""

    url: str = Field(description="Base URL of the LibreTranslate server, e.g. http://mt.district.org:5000.")
    api_key: SecretStr | None = Field(default=None, description="API key, when the server requires one.")
    timeout: float = Field(default=15.0, gt=0, le=600, description="Seconds to wait for one request.")
    languages: list[str] | None = Field(
        default=None,
        description="Only use the server for these languages (BCP 47), to and from; default: all it offers.",
    )
    batch_size: int = Field(default=50, ge=1, le=1000, description="Texts per POST /translate.")
    languages_refresh_seconds: float = Field(
        default=3600, ge=0, description="How long the server's GET /languages answer is trusted."
    )
    retry_unreachable_seconds: float = Field(
        default=30,
        ge=0,
        description="After the server was unreachable or timed out, fail at once for this long "
        "(a broadcast in 60 languages does not wait 60 timeouts).",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return url.rstrip("/")

    @field_validator("api_key")
    @classmethod
    def _empty_is_none(cls, key: SecretStr | None) -> SecretStr | None:
        return key if key is not None and key.get_secret_value() else None

    @field_validator("languages")
    @classmethod
    def _not_empty(cls, languages: list[str] | None) -> list[str] | None:
        if languages is not None and not languages:
            raise ValueError("list at least one language, or leave the key out")
        return languages


_SPECIAL: dict[str, tuple[str, ...]] = {
    "zh": ("zh", "zh-hans"),
    "zh-hans": ("zh-hans", "zh"),
    "zh-cn": ("zh-hans", "zh"),
    "zh-hant": ("zh-hant", "zt"),
    "zh-tw": ("zh-hant", "zt"),
    "zh-hk": ("zh-hant", "zt"),
    "pt-br": ("pt-br", "pb", "pt"),
    "prs": ("prs", "fa"),
    "fa-af": ("prs", "fa"),
    "fil": ("fil", "tl"),
    "tl": ("tl", "fil"),
    "nb": ("nb", "no"),
    "no": ("no", "nb"),
    "he": ("he", "iw"),
}


_TO_BCP47 = {"zt": "zh-Hant", "pb": "pt-BR", "zh": "zh-Hans"}


def server_codes(tag: str) -> tuple[str, ...]:
    """The server codes (lower case) that may stand for a BCP 47 tag, preferred first:
    the tag itself, LibreTranslate's older codes (``zt``, ``pb``), then the bare language."""
    lowered = tag.strip().replace("_", "-").lower()
    forms = list(_SPECIAL.get(lowered, (lowered,)))
    primary = lowered.split("-")[0]
    if primary not in forms and not lowered.startswith("zh-"):
        forms.append(primary)
    return tuple(forms)


def _pick(tag: str, offered: set[str]) -> str | None:
    for code in server_codes(tag):
        if code in offered:
            return code
    return None


class LibreTranslateEngine(TranslationEngine):
    """Translation by a LibreTranslate server; see the module docstring."""

    name: ClassVar[str] = "libretranslate"
    Settings: ClassVar[type[EngineSettings]] = LibreTranslateSettings

    def __init__(self, context: EngineContext) -> None:
        super().__init__(context)
        assert isinstance(self.settings, LibreTranslateSettings)
        self.options: LibreTranslateSettings = self.settings
        self.url = self.options.url
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._offered: dict[str, tuple[str, set[str]]] | None = None  # lower code → (code, targets)
        self._fetched_at = 0.0
        self._refresh_lock: asyncio.Lock | None = None
        self._down: tuple[float, EngineUnavailableError] | None = None  # (until, why)
        self._restrict = (
            {code for tag in self.options.languages for code in server_codes(tag)}
            if self.options.languages
            else None
        )

    # -- HTTP -----------------------------------------------------------------------------
    def session(self) -> aiohttp.ClientSession:
        """The engine's one HTTP session (made in the running loop on first use)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.options.timeout),
                headers={"Accept": "application/json"},
            )
            self._session_loop = loop
            self._refresh_lock = asyncio.Lock()
        return self._session

    async def _request(self, method: str, path: str, payload: dict[str, Any] | None, what: str) -> Any:
        """One request; map every failure to the engine error that says what happened."""
        url = self.url + path
        if self._down is not None:
            until, why = self._down
            if time.monotonic() < until:
                raise EngineUnavailableError(
                    f"{why} (not asked again for {until - time.monotonic():.0f} s)", reason=why.reason
                )
            self._down = None
        try:
            async with self.session().request(method, url, json=payload) as response:
                body = await response.read()
                status = response.status
        except TimeoutError:
            raise self._unreachable(
                f"libretranslate at {self.url}: no answer to {what} within {self.options.timeout:g} s",
                "timeout",
            ) from None
        except aiohttp.ClientError as exc:
            raise self._unreachable(
                f"libretranslate at {self.url}: unreachable ({type(exc).__name__}: {_short(str(exc))})",
                "unreachable",
            ) from None
        if status != 200:
            detail = _error_text(body)
            raise EngineRefusedError(
                f"libretranslate at {self.url} refused {what}: HTTP {status}: {detail}",
                status=status,
                detail=detail,
            )
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise TranslationError(
                f"libretranslate at {self.url}: {what} answered with something that is not JSON",
                reason="bad answer",
            ) from None

    def _unreachable(self, message: str, reason: str) -> EngineUnavailableError:
        error = EngineUnavailableError(message, reason=reason)
        if self.options.retry_unreachable_seconds:
            self._down = (time.monotonic() + self.options.retry_unreachable_seconds, error)
        return error

    # -- languages ------------------------------------------------------------------------
    async def refresh_languages(self, *, force: bool = False) -> None:
        """Ask ``GET /languages`` when the cached answer is missing or older than the setting."""
        self.session()
        assert self._refresh_lock is not None
        async with self._refresh_lock:
            fresh = time.monotonic() - self._fetched_at < self.options.languages_refresh_seconds
            if self._offered is not None and fresh and not force:
                return
            data = await self._request("GET", "/languages", None, "GET /languages")
            if not isinstance(data, list):
                raise TranslationError(
                    f"libretranslate at {self.url}: GET /languages is not a list", reason="bad answer"
                )
            offered: dict[str, tuple[str, set[str]]] = {}
            for item in data:
                if isinstance(item, dict) and isinstance(item.get("code"), str):
                    targets = item.get("targets")
                    codes = {str(t).lower() for t in targets} if isinstance(targets, list) else set()
                    offered[item["code"].lower()] = (item["code"], codes)
            if offered and not any(targets for _, targets in offered.values()):
                # Servers before "targets" existed translate between all their languages.
                everything = set(offered)
                offered = {key: (code, everything - {key}) for key, (code, _) in offered.items()}
            self._offered = offered
            self._fetched_at = time.monotonic()
            log.info("libretranslate at %s offers %d languages", self.url, len(offered))

    def _allowed(self, source: str, target: str) -> bool:
        if self._restrict is None:
            return True
        return any(code in self._restrict for code in (*server_codes(source), *server_codes(target)))

    def _codes(self, source: str, target: str) -> tuple[str, str] | None:
        """The server's codes for the pair, when the server (as last seen) offers it."""
        if self._offered is None:
            return None
        source_key, target_key = _pick(source, set(self._offered)), _pick(target, set(self._offered))
        if source_key is None or target_key is None:
            return None
        code, targets = self._offered[source_key]
        if target_key not in targets:
            return None
        return code, self._offered[target_key][0]

    def can_translate(self, source: str, target: str) -> bool:
        """Allowed by ``languages`` and offered by the server; before the server was first
        asked, every allowed pair counts (:meth:`translate` then asks and may refuse)."""
        if not self._allowed(source, target):
            return False
        return self._offered is None or self._codes(source, target) is not None

    def language_pairs(self) -> list[tuple[str, str]]:
        """The pairs the server offered when last asked (nothing before it was asked)."""
        if self._offered is None:
            return []
        pairs = []
        for source_code, targets in self._offered.values():
            for target_key in sorted(targets):
                target_code = self._offered.get(target_key, (target_key, set()))[0]
                if self._allowed(source_code, target_code):
                    pairs.append((source_code, target_code))
        return sorted(pairs)

    async def describe(self, source: str = "en") -> EngineInfo:
        """Asks the server for its languages; an unreachable server is reported in ``notes``."""
        notes: list[str] = []
        try:
            await self.refresh_languages(force=True)
        except TranslationError as exc:
            notes.append(str(exc))
        languages = sorted(
            {_TO_BCP47.get(t.lower(), t) for s, t in self.language_pairs() if _pick(source, {s.lower()})}
        )
        if self._restrict is not None:
            notes.append(f"restricted to: {', '.join(self.options.languages or [])}")
        return EngineInfo(
            languages=tuple(languages),
            licence="LibreTranslate server (AGPL-3.0); models as installed on the server",
            source=self.url,
            notes=tuple(notes),
        )

    # -- translating ----------------------------------------------------------------------
    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        """``POST /translate`` with ``q`` as a list, in chunks of ``batch_size``."""
        batch = list(texts)
        if not batch:
            return []
        if not self._allowed(source, target):
            raise TranslationError(
                f"libretranslate: {source}→{target} is outside translation.engine_settings."
                "libretranslate.languages",
                reason="unsupported",
            )
        await self.refresh_languages()
        codes = self._codes(source, target)
        if codes is None:
            raise TranslationError(
                f"libretranslate at {self.url} does not offer {source}→{target}", reason="unsupported"
            )
        out: list[str] = []
        size = self.options.batch_size
        for start in range(0, len(batch), size):
            chunk = batch[start : start + size]
            payload: dict[str, Any] = {"q": chunk, "source": codes[0], "target": codes[1], "format": "text"}
            if self.options.api_key is not None:
                payload["api_key"] = self.options.api_key.get_secret_value()
            what = f"POST /translate {source}→{target}"
            data = await self._request("POST", "/translate", payload, what)
            translated = data.get("translatedText") if isinstance(data, dict) else None
            if not isinstance(translated, list) or len(translated) != len(chunk):
                got = len(translated) if isinstance(translated, list) else type(translated).__name__
                raise TranslationError(
                    f"libretranslate at {self.url}: {what} returned {got} for {len(chunk)} texts",
                    reason="bad answer",
                )
            out.extend(str(text) for text in translated)
        return out

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 1] + "…"


def _error_text(body: bytes) -> str:
    """The server's ``{"error": ...}`` text, else the start of its body."""
    raw = body.decode("utf-8", "replace")
    try:
        data = json.loads(raw)
    except ValueError:
        return _short(raw) or "(empty body)"
    if isinstance(data, dict) and data.get("error") is not None:
        return _short(str(data["error"]))
    return _short(raw)


@hookimpl
def gateway_translation_engines() -> list[type]:
    """The engine this plugin provides."""
    return [LibreTranslateEngine]
