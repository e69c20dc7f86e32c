"""A TCP proxy on ``127.0.0.1`` for outage tests: put it between the gateway and its database
(or any server), then make the server unreachable and reachable again.

:meth:`TcpProxy.cut` closes every open connection and stops listening, so new connections are
refused, as when the database host goes away; :meth:`TcpProxy.restore` listens again on the same
port. Runs on the caller's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib

from gateway.testing.fakes import free_port

__all__ = ["TcpProxy"]


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``target_host:target_port`` — or, when ``target_host`` is
    a path, to that Unix socket (a server reached only through one still gets a TCP path to
    cut)."""

    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = port or free_port()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    async def start(self) -> TcpProxy:
        """Listen (again)."""
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def cut(self) -> None:
        """Drop every connection and refuse new ones."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def restore(self) -> None:
        """Accept connections again."""
        await self.start()

    async def stop(self) -> None:
        """Cut and forget."""
        await self.cut()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.target_host.startswith("/"):
                upstream_reader, upstream_writer = await asyncio.open_unix_connection(self.target_host)
            else:
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    self.target_host, self.target_port
                )
        except OSError:
            writer.transport.abort()
            return
        self._writers.update({writer, upstream_writer})
        tasks = [
            asyncio.create_task(self._pipe(reader, upstream_writer)),
            asyncio.create_task(self._pipe(upstream_reader, writer)),
        ]
        self._pipes.update(tasks)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for w in (writer, upstream_writer):
                w.transport.abort()
                self._writers.discard(w)
            self._pipes.difference_update(tasks)

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
