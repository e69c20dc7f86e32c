"""Fan-out benchmark: one workshop invitation with a free-text description to N families in
12 languages (or ``--languages 60``) through an instant channel; plan (render + write the
outbox) and dispatch, through the deterministic table engine.

    .venv/bin/python bench/fanout.py [--families 30000] [--languages 12|60] [--database URL] [--json]
    .venv/bin/python bench/fanout.py --linearity [--sizes 30000 100000] [--postgres]

Prints messages/s, engine calls, the strings the engine translated against the expected
distinct strings × languages (template strings of the languages without a reviewed catalog,
plus the free text of every non-English language), the engine calls of a second, identical
broadcast (target 0), translation-memory hits and peak RSS. Targets (docs/benchmarks.md):
≥ 2,000 messages/s, engine strings = distinct strings × languages, peak RSS ≤ 300 MB.
``--linearity`` runs each size in a fresh process (so peak RSS is per size) and prints the
time per family of each and their ratio (target: within 20 %). ``--postgres`` runs on a fresh
database of the local PostgreSQL (cloned from a migrated template, dropped afterwards).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import LANGUAGES, LANGUAGES_60, NullChannelPlugin, peak_rss_mb, report, seed_families

from gateway import event_loop
from gateway.broadcasts import send_broadcast
from gateway.domain.events import load_event, upcoming_event_file
from gateway.resources import SHIPPED_EXAMPLES
from gateway.testing.engines import DeterministicEnginePlugin
from gateway.testing.harness import open_gateway, write_config

EXAMPLE_EVENT = SHIPPED_EXAMPLES / "reading-workshop.yaml"


def expected_engine_strings(gw: object, languages: list[str], event_file: Path) -> int:
    """Distinct strings × languages the engine must see once: every template string the catalog
    of a language lacks (invitation template + the composer's own notes and labels) and the
    event's free text (title, description, place; the RSVP question repeats the title)."""
    composer = gw.composer  # type: ignore[attr-defined]
    event = load_event(event_file)
    free_text = {t for t in (event.title, event.description, event.place) if t}
    msgids = set(gw.renderer.message_ids("workshop_invitation")) | set(composer.code_message_ids())  # type: ignore[attr-defined]
    total = 0
    for language in languages:
        strings = composer.renderer.strings(language)
        if strings.same_language:
            continue
        total += len(strings.missing(sorted(msgids))) + len(free_text)
    return total


async def run_postgres(families: int, folder: Path, languages: list[str]) -> dict[str, object]:
    """:func:`run` on a fresh PostgreSQL database of its own."""
    from common import fresh_pg_database

    from gateway.testing.harness import drop_pg_database

    url = await fresh_pg_database("gwfanout")
    try:
        return await run(families, url, folder, languages)
    finally:
        await drop_pg_database(url)


async def run(families: int, database: str | None, folder: Path, languages: list[str]) -> dict[str, object]:
    """One fan-out, then the same broadcast again; returns the figures."""
    event_file = upcoming_event_file(EXAMPLE_EVENT, folder / "event.yaml")
    config = write_config(
        folder,
        database,
        channels={"sms": {"plugin": "null", "endpoint": "phone", "concurrency": 64}},
        translation={"engines": ["table"]},
        dispatch={"batch_size": 1000},
    )
    engines = DeterministicEnginePlugin()
    async with open_gateway(config, extra_plugins=(NullChannelPlugin(), engines)) as gw:
        await seed_families(gw, families, languages)
        expected = expected_engine_strings(gw, languages, event_file)
        started = time.perf_counter()
        summary = await send_broadcast(gw, "workshop_invitation", event_file=event_file, audience="")
        planned = time.perf_counter()
        result = await gw.dispatcher.run_until_idle()
        finished = time.perf_counter()
        status = await gw.translation.status()
        first_calls, first_strings = engines.recorder.calls, len(engines.recorder.seen)
        engines.recorder.reset()
        gw.composer.forget()  # a new process would start with an empty cache, not an empty memory
        await send_broadcast(gw, "workshop_invitation", event_file=event_file, audience="", dry_run=True)
        second_calls = engines.recorder.calls
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
        "languages": len(languages),
        "engine calls": first_calls,
        "strings translated by the engine": first_strings,
        "expected distinct strings × languages": expected,
        "engine calls, second broadcast": second_calls,
        "memory hits": status["hits"],
        "peak RSS MB": round(peak_rss_mb(), 1),
    }


def linearity(sizes: list[int], languages: int, postgres: bool = False) -> dict[str, object]:
    """One fan-out per size, each in its own process; time per family and the ratio."""
    figures: dict[str, object] = {}
    per_family: list[float] = []
    for size in sizes:
        output = subprocess.run(
            [sys.executable, __file__, "--families", str(size), "--languages", str(languages), "--json"]
            + (["--postgres"] if postgres else []),
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
    parser.add_argument("--postgres", action="store_true", help="a fresh database on the local PostgreSQL")
    parser.add_argument("--linearity", action="store_true", help="compare --sizes, one process each")
    parser.add_argument("--sizes", type=int, nargs="+", default=[30_000, 100_000])
    parser.add_argument("--languages", type=int, choices=(12, 60), default=12)
    args = parser.parse_args()
    languages = list(LANGUAGES if args.languages == 12 else LANGUAGES_60)
    if args.linearity:
        report(
            f"fan-out linearity over {', '.join(map(str, args.sizes))} families"
            + (" (PostgreSQL)" if args.postgres else " (SQLite)"),
            linearity(args.sizes, args.languages, args.postgres),
        )
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.postgres:
            figures = event_loop.run(run_postgres(args.families, Path(tmp), languages))
        else:
            figures = event_loop.run(run(args.families, args.database, Path(tmp), languages))
    if args.json:
        print(json.dumps(figures))
        return
    report(f"fan-out to {args.families} families in {len(languages)} languages", figures)


if __name__ == "__main__":
    main()
