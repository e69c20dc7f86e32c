"""A local server that speaks LibreTranslate's HTTP API, for the ``libretranslate`` engine's
tests and benchmarks.

Paths and shapes are LibreTranslate's own:

- ``GET /languages`` → ``[{"code", "name", "targets": [...]}]``;
- ``POST /translate`` (JSON or form) with ``q`` (a string or a list), ``source``, ``target``,
  ``format`` (``text`` or ``html``), ``api_key`` → ``{"translatedText": ...}`` shaped like ``q``;
- errors as ``{"error": "..."}`` with LibreTranslate's statuses: 400 (a missing parameter, an
  unsupported language), 403 (a missing or wrong API key when the server requires one), 429
  (rate limit), 500.

The "translation" is deterministic: ``[es] `` + the text, so a test sees which texts went
through. Behaviour is scripted through attributes:

- :attr:`hold` (an :class:`asyncio.Event` is awaited before answering): a slow server, until
  :meth:`release` (or the server stops);
- :meth:`fail_next` / :attr:`fail_status`: answer with an error status and ``{"error": ...}``;
- :attr:`drop_placeholders`: drop every placeholder-looking token (``[1]``) from translations;
- :attr:`short_answers`: answer a list with one text fewer than asked (a broken server);
- :attr:`requests`: every request received, as ``(method, path, body)`` with the API key
  replaced by ``"***"``; :attr:`clients` counts distinct client connections (by peer port).

Run it in the test's event loop (``async with FakeLibreTranslateServer() as server``) or in a
thread of its own for synchronous callers such as the CLI (:meth:`start_in_thread`).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

__all__ = ["DEFAULT_LANGUAGES", "FakeLibreTranslateServer"]

DEFAULT_LANGUAGES: Mapping[str, str] = {
    "en": "English",
    "es": "Spanish",
    "ar": "Arabic",
    "so": "Somali",
    "fr": "French",
    "zt": "Chinese (traditional)",
}
_TOKEN = re.compile(r"[\[［]\s*\d{1,4}\s*[\]］]")


class FakeLibreTranslateServer:
    """An in-process LibreTranslate on ``127.0.0.1``; see the module docstring."""

    def __init__(
        self,
        languages: Mapping[str, str] | Iterable[str] = DEFAULT_LANGUAGES,
        *,
        api_key: str | None = None,
        targets: Mapping[str, Iterable[str]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.languages = dict(languages) if isinstance(languages, Mapping) else {c: c for c in languages}
        self.targets = {k: list(v) for k, v in (targets or {}).items()}
        self.api_key = api_key
        self.host = host
        self.port = port
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.peers: set[tuple[str, int]] = set()
        self.drop_placeholders = False
        self.short_answers = False
        self.fail_status: int | None = None
        self.fail_error = "Internal error"
        self._failures: deque[tuple[int, str]] = deque()
        self.hold: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The base URL (``translation.engine_settings.libretranslate.url``)."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> FakeLibreTranslateServer:
        """Listen in the running loop."""
        app = web.Application()
        app.router.add_get("/languages", self._languages)
        app.router.add_post("/translate", self._translate)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._loop = asyncio.get_running_loop()
        return self

    async def stop(self) -> None:
        """Stop listening (a held request is let go first)."""
        if self.hold is not None:
            self.hold.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeLibreTranslateServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def start_in_thread(self) -> FakeLibreTranslateServer:
        """Listen from a thread with its own event loop (for synchronous callers)."""
        started = threading.Event()
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start())
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-libretranslate", daemon=True)
        self._thread.start()
        if not started.wait(30):
            raise RuntimeError("the LibreTranslate test server did not start")
        return self

    def stop_thread(self) -> None:
        """Stop a server started with :meth:`start_in_thread`."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._thread = None

    # -- scripting ------------------------------------------------------------------------
    def fail_next(self, status: int, error: str, *, times: int = 1) -> None:
        """Answer the next ``times`` translate requests with ``status`` and ``{"error": error}``."""
        for _ in range(times):
            self._failures.append((status, error))

    def slow_down(self) -> None:
        """Hold every request until :meth:`release` (a server that does not answer in time)."""
        self.hold = asyncio.Event()

    def release(self) -> None:
        """Let held requests go (thread-safe)."""
        if self.hold is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self.hold.set)

    def translate_requests(self) -> list[dict[str, Any]]:
        """The bodies of every ``POST /translate`` received."""
        return [body for method, path, body in self.requests if path == "/translate"]

    # -- handlers -------------------------------------------------------------------------
    def _record(self, request: web.Request, body: dict[str, Any]) -> None:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            self.peers.add((str(peer[0]), int(peer[1])))
        shown = {k: ("***" if k == "api_key" else v) for k, v in body.items()}
        self.requests.append((request.method, request.path, shown))

    async def _wait(self) -> None:
        if self.hold is not None:
            await self.hold.wait()

    async def _languages(self, request: web.Request) -> web.Response:
        self._record(request, {})
        await self._wait()
        data = [
            {
                "code": code,
                "name": name,
                "targets": self.targets.get(code, [c for c in self.languages if c != code]),
            }
            for code, name in self.languages.items()
        ]
        return web.json_response(data)

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        return web.json_response({"error": message}, status=status)

    async def _translate(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                self._record(request, {})
                return self._error(400, "Invalid request: the body is not a JSON object")
        else:
            body = dict(await request.post())
        self._record(request, body)
        await self._wait()
        if self._failures:
            status, error = self._failures.popleft()
            return self._error(status, error)
        if self.fail_status is not None:
            return self._error(self.fail_status, self.fail_error)
        if self.api_key is not None:
            given = body.get("api_key")
            if not given:
                return self._error(403, "Please contact the server operator to get an API key")
            if given != self.api_key:
                return self._error(403, "Invalid API key")
        q, source, target = body.get("q"), body.get("source"), body.get("target")
        for name, value in (("q", q), ("source", source), ("target", target)):
            if not value:
                return self._error(400, f"Invalid request: missing {name} parameter")
        if body.get("format", "text") not in ("text", "html"):
            return self._error(400, "Invalid request: format must be text or html")
        if source != "auto" and source not in self.languages:
            return self._error(400, f"{source} is not supported")
        if target not in self.languages:
            return self._error(400, f"{target} is not supported")
        allowed = self.targets.get(str(source), [c for c in self.languages if c != source])
        if source != "auto" and target not in allowed:
            return self._error(400, f"{target} is not supported for {source}")
        texts = q if isinstance(q, list) else [q]
        translated = [self._render(str(text), str(target)) for text in texts]
        if self.short_answers and isinstance(q, list):
            translated = translated[:-1]
        answer: dict[str, Any] = {"translatedText": translated if isinstance(q, list) else translated[0]}
        if source == "auto":
            detected = {"confidence": 90.0, "language": "en"}
            answer["detectedLanguage"] = [detected] * len(texts) if isinstance(q, list) else detected
        return web.Response(text=json.dumps(answer, ensure_ascii=False), content_type="application/json")

    def _render(self, text: str, target: str) -> str:
        if self.drop_placeholders:
            text = " ".join(_TOKEN.sub("", text).split())
        return f"[{target}] {text}"
