"""Scale-out benchmark: 1 → 2 → 4 ``gateway worker`` processes on one PostgreSQL outbox, sending
SMS through the real ``twilio`` client to a local Twilio server (its own process) that takes a
fixed time per request (default 20 ms), so the number of workers matters.

    .venv/bin/python bench/scale_out.py [--messages 3000] [--workers 1 2 4] [--latency 0.02]

For each worker count: a fresh batch of queued messages, the workers started together, the
throughput measured at the provider (first to last arrival), then the workers stopped with
SIGTERM. Verifies that every message was accepted exactly once and the outbox shows all sent.
Targets: throughput rises with workers (until the provider or the 2 cores limit it); zero
messages sent twice.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import fresh_pg_database, report, seed_outbox
from servers import ProviderProcess
from sms_twilio import twilio_channel

from gateway.storage.models import OutboxMessage
from gateway.testing.harness import drop_pg_database, open_gateway, write_config

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_BIN = str(ROOT / ".venv" / "bin" / "gateway")


async def _counts(gw: Any) -> dict[str, int]:
    async with gw.db.session() as session:
        rows = await session.execute(
            select(OutboxMessage.status, func.count(OutboxMessage.id)).group_by(OutboxMessage.status)
        )
        return {status: count for status, count in rows}


async def one_round(
    config: Path, twilio: ProviderProcess, workers: int, messages: int, folder: Path
) -> dict[str, Any]:
    """Queue ``messages``, run ``workers`` processes until all are sent; the figures."""
    twilio.ask("reset")
    async with open_gateway(config, start=False) as gw:
        sent_before = (await _counts(gw)).get("sent", 0)
        await seed_outbox(gw, messages, channel="sms", unique_bodies=True, tag=f"w{workers}-")
        processes = []
        log = (folder / f"workers-{workers}.log").open("ab")
        started = time.perf_counter()
        for _ in range(workers):
            processes.append(
                await asyncio.create_subprocess_exec(
                    GATEWAY_BIN,
                    "worker",
                    "--config",
                    str(config),
                    stdout=log,
                    stderr=log,
                    env=dict(os.environ),
                )
            )
        log.close()
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                counts = await _counts(gw)
                if not any(counts.get(s, 0) for s in ("queued", "sending", "unknown")):
                    break
                await asyncio.sleep(0.25)
            elapsed = time.perf_counter() - started
        finally:
            for process in processes:
                if process.returncode is None:
                    process.terminate()
            for process in processes:
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    process.kill()
                    await process.wait()
        counts = await _counts(gw)
    stats = twilio.ask("stats")
    arrivals = sorted(stats["arrivals"])
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    return {
        "workers": workers,
        "accepted": stats["messages"],
        "duplicates": stats["duplicates"],
        "rate": (len(arrivals) - 1) / span if span else 0.0,
        "wall seconds (incl. start-up)": elapsed,
        "outbox sent": counts.get("sent", 0) - sent_before,
    }


async def run(
    messages: int, worker_counts: list[int], latency: float, concurrency: int, folder: Path
) -> dict[str, Any]:
    """Every round on one fresh PostgreSQL database; returns the figures."""
    database = await fresh_pg_database()
    try:
        with ProviderProcess("twilio", latency=latency) as twilio:
            config = write_config(
                folder,
                database,
                channels={"sms": twilio_channel(twilio.info, concurrency)},
                dispatch={"batch_size": 100, "poll_seconds": 0.1, "lease_seconds": 30},
                logging={"level": "WARNING"},
            )
            rounds = [await one_round(config, twilio, n, messages, folder) for n in worker_counts]
    finally:
        await drop_pg_database(database)
    base = rounds[0]["rate"] or 1.0
    figures: dict[str, Any] = {
        "messages per round": messages,
        "provider latency ms": round(latency * 1000),
        "concurrency per worker": concurrency,
    }
    total_sent = 0
    for r in rounds:
        figures[f"{r['workers']} worker(s): messages/s"] = (
            f"{r['rate']:.0f} (×{r['rate'] / base:.2f}; {r['wall seconds (incl. start-up)']:.1f} s wall "
            "incl. start-up)"
        )
        total_sent += r["outbox sent"]
    figures["accepted exactly once, every round"] = all(
        r["accepted"] == messages and r["duplicates"] == 0 and r["outbox sent"] == messages for r in rounds
    )
    figures["messages sent twice"] = sum(r["duplicates"] for r in rounds)
    return figures


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000, help="messages per round")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--latency", type=float, default=0.02, help="provider seconds per request")
    parser.add_argument("--concurrency", type=int, default=8, help="sends in flight per worker")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(run(args.messages, args.workers, args.latency, args.concurrency, Path(tmp)))
    report("scale-out on PostgreSQL: gateway worker processes on one outbox", figures)


if __name__ == "__main__":
    main()
