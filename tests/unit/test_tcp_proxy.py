"""The outage tests' proxy forwards to a TCP address or a Unix socket, and cutting it drops
open connections and refuses new ones until it is restored."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest

from gateway.testing.tcp_proxy import TcpProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data.upper())
        await writer.drain()
    writer.close()


async def _round_trip(port: int, text: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(text)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(1024), 5)
    writer.close()
    return answer


async def test_forwards_to_a_unix_socket_and_cuts() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / ".s.PGSQL.5432")
        server = await asyncio.start_unix_server(_echo, path)
        proxy = await TcpProxy(path, 5432).start()
        try:
            assert await _round_trip(proxy.port, b"hello") == b"HELLO"
            await proxy.cut()
            with pytest.raises(OSError):
                await _round_trip(proxy.port, b"gone")
            await proxy.restore()
            assert await _round_trip(proxy.port, b"back") == b"BACK"
            assert proxy.connections == 2
        finally:
            await proxy.stop()
            server.close()
            await server.wait_closed()


async def test_forwards_to_a_tcp_address() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = await TcpProxy("127.0.0.1", port).start()
    try:
        assert await _round_trip(proxy.port, b"tcp") == b"TCP"
    finally:
        await proxy.stop()
        server.close()
        await server.wait_closed()
