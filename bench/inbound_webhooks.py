"""Inbound webhook benchmark: signed Twilio incoming-SMS webhooks (replies from known families)
posted to ``gateway serve`` (its own process, SQLite) by an aiohttp client in this process with
a fixed number of requests in flight, over loopback.

    .venv/bin/python bench/inbound_webhooks.py [--requests 5000] [--concurrency 16] [--retries 0.05]

A share (``--retries``) of the webhooks is delivered a second time, as Twilio does when it
retries. Prints requests/s, p50/p99/max latency and checks that every reply is stored exactly
once (``inbound_messages`` rows). Targets: ≥ 1,000 requests/s, p99 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import fresh_pg_database, percentile, report, seed_families
from servers import ProviderProcess
from sms_twilio import twilio_channel

from gateway.storage.models import InboundRecord
from gateway.testing.fakes import free_port
from gateway.testing.harness import drop_pg_database, open_gateway, write_config
from gateway.testing.twilio_server import inbound_sms_form, sign_twilio_request

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_BIN = str(ROOT / ".venv" / "bin" / "gateway")
PUBLIC = "https://gateway.bench.example"
FROM_NUMBER = "+19135550100"
REPLIES = ("Yes, we will come", "sí", "Thank you!", "What time does it end?", "Merci", "2")


async def wait_healthy(url: str, seconds: float = 60) -> None:
    """Poll ``/healthz`` until it answers 200."""
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("gateway serve did not become healthy")


async def post_all(
    base_url: str, bodies: list[tuple[dict[str, str], str]], concurrency: int
) -> tuple[list[float], list[int], float]:
    """POST every (form, signature) with ``concurrency`` in flight; latencies, statuses, seconds."""
    latencies: list[float] = []
    statuses: list[int] = []
    queue = iter(bodies)
    url = base_url + "/webhooks/sms/inbound"
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def client() -> None:
            for form, signature in queue:
                started = time.perf_counter()
                async with http.post(url, data=form, headers={"X-Twilio-Signature": signature}) as r:
                    await r.read()
                    statuses.append(r.status)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, statuses, elapsed


async def run(
    requests: int,
    concurrency: int,
    retries: float,
    families: int,
    folder: Path,
    profile: str | None = None,
    database: str | None = None,
) -> dict[str, Any]:
    """Seed families, start ``gateway serve``, post the webhooks, count what was stored."""
    port = free_port()
    with ProviderProcess("twilio") as twilio:
        channel = twilio_channel(twilio.info, 8)
        config = write_config(
            folder,
            database,
            channels={"sms": channel},
            http={"host": "127.0.0.1", "port": port, "public_base_url": PUBLIC},
            logging={"level": "WARNING"},
        )
        async with open_gateway(config, start=False) as gw:
            await seed_families(gw, families)
        env = dict(os.environ)
        log = (folder / "serve.log").open("ab")
        command = [GATEWAY_BIN, "serve", "--config", str(config)]
        if profile:
            command = [sys.executable, "-m", "cProfile", "-o", profile, *command]
        server = await asyncio.create_subprocess_exec(*command, stdout=log, stderr=log, env=env)
        log.close()
        base_url = f"http://127.0.0.1:{port}"
        try:
            try:
                await wait_healthy(base_url)
            except RuntimeError:
                print((folder / "serve.log").read_text(errors="replace")[-3000:], file=sys.stderr)
                raise
            rng = random.Random(8)
            unique = []
            for i in range(requests):
                form = inbound_sms_form(
                    from_=f"+1816{i % families:07d}",
                    to=FROM_NUMBER,
                    body=rng.choice(REPLIES),
                    account_sid=channel["account_sid"],
                    message_sid=f"SMbench{i:026d}",
                )
                signature = sign_twilio_request(channel["auth_token"], PUBLIC + "/webhooks/sms/inbound", form)
                unique.append((form, signature))
            # Provider retries: some webhooks arrive twice, later in the run.
            repeats = rng.sample(unique, int(len(unique) * retries))
            bodies = unique + repeats
            rng.shuffle(bodies)
            latencies, statuses, elapsed = await post_all(base_url, bodies, concurrency)
        finally:
            if server.returncode is None:
                server.terminate()
            try:
                await asyncio.wait_for(server.wait(), 30)
            except TimeoutError:
                server.kill()
                await server.wait()
        async with open_gateway(config, start=False) as gw, gw.db.session() as session:
            stored = await session.scalar(select(func.count(InboundRecord.id)))
            distinct = await session.scalar(
                select(func.count(func.distinct(InboundRecord.provider_message_id)))
            )
    ok = sum(1 for s in statuses if s == 200)
    return {
        "requests (unique + provider retries)": f"{len(bodies)} ({requests} + {len(repeats)})",
        "client concurrency": concurrency,
        "answered 200": ok,
        "requests/s": round(len(bodies) / elapsed),
        "p50 ms": round(1000 * percentile(latencies, 0.50), 1),
        "p99 ms": round(1000 * percentile(latencies, 0.99), 1),
        "max ms": round(1000 * max(latencies), 1),
        "inbound_messages rows": stored,
        "every reply stored once": stored == distinct == requests,
    }


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="distinct webhooks")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--retries", type=float, default=0.05, help="share delivered twice")
    parser.add_argument("--families", type=int, default=2000)
    parser.add_argument("--profile", metavar="FILE", help="cProfile the server into FILE")
    parser.add_argument("--postgres", action="store_true", help="a fresh database on the local PostgreSQL")
    args = parser.parse_args()

    async def go(folder: Path) -> dict[str, Any]:
        database = await fresh_pg_database() if args.postgres else None
        try:
            return await run(
                args.requests, args.concurrency, args.retries, args.families, folder, args.profile, database
            )
        finally:
            if database:
                await drop_pg_database(database)

    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(go(Path(tmp)))
    figures["database"] = "PostgreSQL" if args.postgres else "SQLite"
    report(f"signed Twilio inbound webhooks to gateway serve, {args.requests} replies", figures)


if __name__ == "__main__":
    main()
