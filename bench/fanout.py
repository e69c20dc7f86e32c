"""Fan-out benchmark: one workshop invitation with a free-text description to N families in
12 languages through an instant channel; plan (render + write the outbox) and dispatch.

    .venv/bin/python bench/fanout.py [--families 30000] [--database URL]

Prints messages/s, machine-translation engine calls, translation-memory hits and peak RSS.
Targets (docs/benchmarks.md): ≥ 2,000 messages/s, engine calls = distinct strings × languages,
peak RSS ≤ 300 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import LANGUAGES, NullChannelPlugin, peak_rss_mb, report, seed_families

from gateway.broadcasts import send_broadcast
from gateway.testing.engines import DeterministicEnginePlugin
from gateway.testing.harness import open_gateway, write_config

ROOT = Path(__file__).resolve().parent.parent
EVENT = ROOT / "examples" / "reading-workshop.yaml"


async def run(families: int, database: str | None, folder: Path) -> dict[str, object]:
    """One fan-out; returns its figures."""
    config = write_config(
        folder,
        database,
        channels={"sms": {"plugin": "null", "endpoint": "phone", "concurrency": 64}},
        translation={"engines": ["table"]},
        dispatch={"batch_size": 1000},
    )
    engines = DeterministicEnginePlugin()
    async with open_gateway(config, extra_plugins=(NullChannelPlugin(), engines)) as gw:
        await seed_families(gw, families, LANGUAGES)
        started = time.perf_counter()
        summary = await send_broadcast(gw, "workshop_invitation", event_file=EVENT, audience="")
        planned = time.perf_counter()
        result = await gw.dispatcher.run_until_idle()
        finished = time.perf_counter()
        status = await gw.translation.status()
    messages = int(summary.get("messages", 0)) if isinstance(summary, dict) else 0
    total = finished - started
    return {
        "families": families,
        "messages planned": messages,
        "messages sent": result.sent,
        "plan seconds": round(planned - started, 2),
        "dispatch seconds": round(finished - planned, 2),
        "total seconds": round(total, 2),
        "messages/s (plan + dispatch)": round(result.sent / total),
        "engine calls": engines.recorder.calls,
        "memory hits": status["hits"],
        "peak RSS MB": round(peak_rss_mb(), 1),
    }


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=30_000)
    parser.add_argument("--database", default=None, help="database URL (default: SQLite in a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(run(args.families, args.database, Path(tmp)))
    report(f"fan-out to {args.families} families in {len(LANGUAGES)} languages", figures)


if __name__ == "__main__":
    main()
