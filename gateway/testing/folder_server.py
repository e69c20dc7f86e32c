"""A static HTTP server for a folder, on 127.0.0.1, in a thread of its own: a mirror of a
package index (Argos ``index.json`` and its ``.argosmodel`` files) for tests that drive the CLI.

    with FolderServer(folder) as server:
        server.url          # http://127.0.0.1:PORT
        server.requested    # ["/index.json", "/translate-en_es.argosmodel", ...]
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from aiohttp import web

__all__ = ["FolderServer"]


class FolderServer:
    """Serves ``folder``'s files (GET only) and records every path asked for."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self.requested: list[str] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.requested.append(request.path)
        name = request.match_info["name"]
        path = (self.folder / name).resolve()
        if self.folder.resolve() not in path.parents or not path.is_file():
            return web.Response(status=404, text="not found")
        return web.FileResponse(path)

    def start(self) -> FolderServer:
        """Listen (returns once the port is bound)."""
        started = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def setup() -> web.AppRunner:
            app = web.Application()
            app.router.add_get("/{name:.+}", self._serve)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = int(runner.addresses[0][1])
            return runner

        def run() -> None:
            asyncio.set_event_loop(loop)
            runner = loop.run_until_complete(setup())
            started.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="folder-server", daemon=True)
        self._thread.start()
        if not started.wait(30):
            raise RuntimeError("the folder server did not start")
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
        self._thread = None

    def __enter__(self) -> FolderServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
