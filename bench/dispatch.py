"""Dispatch benchmark: N queued outbox messages sent through an instant channel, dispatcher only
(claim, send, record), no planning.

    .venv/bin/python bench/dispatch.py [--messages 10000] [--database URL] [--profile]
                                       [--batch-size 1000] [--concurrency 64]

Prints messages/s and peak RSS. Target (docs/benchmarks.md): ≥ 5,000 messages/s on SQLite.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import NullChannelPlugin, peak_rss_mb, report, seed_outbox

from gateway import event_loop
from gateway.testing.harness import open_gateway, write_config


async def run(
    messages: int,
    database: str | None,
    folder: Path,
    profile: bool,
    batch_size: int = 1000,
    concurrency: int = 64,
) -> dict[str, object]:
    """Queue ``messages`` rows, then dispatch them all; returns the figures."""
    config = write_config(
        folder,
        database,
        channels={"sms": {"plugin": "null", "endpoint": "phone", "concurrency": concurrency}},
        dispatch={"batch_size": batch_size},
    )
    async with open_gateway(config, extra_plugins=(NullChannelPlugin(),)) as gw:
        await seed_outbox(gw, messages, channel="sms")
        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        result = await gw.dispatcher.run_until_idle()
        if profiler:
            profiler.disable()
        elapsed = time.perf_counter() - started
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    return {
        "messages": messages,
        "sent": result.sent,
        "dispatch seconds": round(elapsed, 2),
        "messages/s": round(result.sent / elapsed),
        "peak RSS MB": round(peak_rss_mb(), 1),
    }


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--database", default=None, help="database URL (default: SQLite in a temp folder)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the dispatch")
    parser.add_argument("--batch-size", type=int, default=1000, help="dispatch.batch_size")
    parser.add_argument("--concurrency", type=int, default=64, help="the channel's concurrency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = event_loop.run(
            run(args.messages, args.database, Path(tmp), args.profile, args.batch_size, args.concurrency)
        )
    report(f"dispatch of {args.messages} queued messages through an instant channel", figures)


if __name__ == "__main__":
    main()
