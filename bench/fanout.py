"""Fan-out benchmark: one workshop invitation with a free-text description to N families in
12 languages through an instant channel; plan (render + write the outbox) and dispatch.

    .venv/bin/python bench/fanout.py [--families 30000] [--database URL] [--json]
    .venv/bin/python bench/fanout.py --linearity [--sizes 30000 100000]

Prints messages/s, machine-translation engine calls, translation-memory hits and peak RSS.
Targets (docs/benchmarks.md): ≥ 2,000 messages/s, engine calls = distinct strings × languages,
peak RSS ≤ 300 MB. ``--linearity`` runs each size in a fresh process (so peak RSS is per size)
and prints the time per family of each and their ratio (target: within 20 %).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import LANGUAGES, NullChannelPlugin, peak_rss_mb, report, seed_families

from gateway.broadcasts import send_broadcast
from gateway.resources import SHIPPED_EXAMPLES
from gateway.testing.engines import DeterministicEnginePlugin
from gateway.testing.harness import open_gateway, write_config

EVENT = SHIPPED_EXAMPLES / "reading-workshop.yaml"


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


def linearity(sizes: list[int]) -> dict[str, object]:
    """One fan-out per size, each in its own process; time per family and the ratio."""
    figures: dict[str, object] = {}
    per_family: list[float] = []
    for size in sizes:
        output = subprocess.run(
            [sys.executable, __file__, "--families", str(size), "--json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(output.strip().splitlines()[-1])
        seconds = float(result["total seconds"])
        per_family.append(seconds / size)
        figures[f"{size} families"] = (
            f"{seconds:.1f} s (plan {result['plan seconds']} s + dispatch {result['dispatch seconds']} s), "
            f"{1e3 * seconds / size:.3f} ms/family, {result['messages/s (plan + dispatch)']} msg/s, "
            f"peak RSS {result['peak RSS MB']} MB, engine calls {result['engine calls']}"
        )
    figures["time per family, largest / smallest"] = round(per_family[-1] / per_family[0], 3)
    return figures


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=30_000)
    parser.add_argument("--database", default=None, help="database URL (default: SQLite in a temp folder)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    parser.add_argument("--linearity", action="store_true", help="compare --sizes, one process each")
    parser.add_argument("--sizes", type=int, nargs="+", default=[30_000, 100_000])
    args = parser.parse_args()
    if args.linearity:
        report(f"fan-out linearity over {', '.join(map(str, args.sizes))} families", linearity(args.sizes))
        return
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(run(args.families, args.database, Path(tmp)))
    if args.json:
        print(json.dumps(figures))
        return
    report(f"fan-out to {args.families} families in {len(LANGUAGES)} languages", figures)


if __name__ == "__main__":
    main()
