"""The suite's own servers: when no PostgreSQL or Redis runs, the suite starts throwaway ones."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import redis

from gateway.testing.services import _start_redis, _ThrowawayPostgres, database_url


def test_a_throwaway_postgres_cluster_starts_answers_and_is_removed() -> None:
    cluster = _ThrowawayPostgres()
    url = cluster.start()
    try:

        async def use() -> str:
            conn = await asyncpg.connect(url)
            await conn.execute("CREATE DATABASE made_here")
            await conn.close()
            conn = await asyncpg.connect(database_url(url, "made_here"))
            name = await conn.fetchval("SELECT current_database()")
            await conn.close()
            return str(name)

        assert asyncio.run(use()) == "made_here"
        assert "host=" in url and "127.0.0.1" not in url  # a Unix socket: no port to race for
    finally:
        cluster.stop()
    assert not Path(cluster.folder).exists()


def test_a_throwaway_redis_answers_on_its_socket() -> None:
    url = _start_redis()
    client = redis.Redis.from_url(url)
    try:
        client.set("gateway-test", "1")
        assert client.get("gateway-test") == b"1"
    finally:
        client.close()
