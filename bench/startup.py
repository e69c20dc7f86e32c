"""Worker start-up: from launching ``gateway worker`` to the first message arriving at the
provider (a local aiosmtpd in its own process), with one e-mail queued beforehand.

    .venv/bin/python bench/startup.py [--runs 5] [--profile FILE]

Prints, per run, the wall seconds from the process start to the message's arrival and the
CPU seconds the worker had used by then (user + system, from /proc), and the same for a bare
``python -c pass`` (what the machine's load does to any process start). Target: ready to send
within 1 s. After editing the gateway, ``make bytecode`` first: where PYTHONDONTWRITEBYTECODE
is set, stale bytecode makes every start compile the edited modules again.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import process_env, report, seed_outbox
from servers import ProviderProcess

from gateway.testing.harness import open_gateway, write_config

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def prepare(folder: Path, info: dict[str, object]) -> Path:
    """A migrated SQLite gateway with one queued e-mail."""
    config = write_config(
        folder,
        channels={
            "email": {
                "plugin": "smtp_email",
                "endpoint": "email",
                "smtp": {
                    "host": info["host"],
                    "port": info["port"],
                    "starttls": False,
                    "from_address": "news@district.example",
                },
            }
        },
        logging={"level": "WARNING"},
    )
    async with open_gateway(config, start=False) as gw:
        await seed_outbox(gw, 1, channel="email", address=lambda i: f"family{i}@example.org", subject="Hello")
    return config


def one_run(config: Path, smtp: ProviderProcess, profile: Path | None = None) -> tuple[float, float]:
    """Wall seconds to the first arrival and the worker's CPU seconds by then (under cProfile,
    written to ``profile``, when given)."""
    smtp.ask("reset")
    env = process_env(GATEWAY_CONFIG=str(config))
    started = time.monotonic()
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
    worker = subprocess.Popen(
        [sys.executable, *profiler, "-m", "gateway.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        while smtp.ask("stats")["messages"] < 1:
            if time.monotonic() - started > 60 or worker.poll() is not None:
                worker.kill()
                raise RuntimeError(f"no message within 60 s: {worker.communicate()[1].decode()[-3000:]}")
            time.sleep(0.005)
        wall = time.monotonic() - started
        cpu = cpu_seconds(worker.pid)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    return wall, cpu


def bare_python() -> float:
    """Wall seconds of ``python -c pass``."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.monotonic() - started


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", type=Path, help="also run once under cProfile, stats written here")
    args = parser.parse_args()
    figures: dict[str, object] = {"load average": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp, ProviderProcess("smtp") as smtp:
        walls, cpus = [], []
        for n in range(args.runs):
            config = asyncio.run(prepare(Path(tmp) / f"run{n}", smtp.info))
            wall, cpu = one_run(config, smtp)
            walls.append(wall)
            cpus.append(cpu)
        figures["start → first message arrived, s (each run)"] = ", ".join(f"{w:.2f}" for w in walls)
        figures["worker CPU by then, s (each run)"] = ", ".join(f"{c:.2f}" for c in cpus)
        figures["best / median wall s"] = f"{min(walls):.2f} / {sorted(walls)[len(walls) // 2]:.2f}"
        figures["bare `python -c pass` s"] = f"{bare_python():.2f}"
        figures["load average after"] = os.getloadavg()[0]
        if args.profile:
            config = asyncio.run(prepare(Path(tmp) / "profiled", smtp.info))
            wall, _ = one_run(config, smtp, args.profile.resolve())
            figures["profiled run (cProfile), s"] = f"{wall:.2f}; stats in {args.profile}"
    report("gateway worker start-up", figures)


if __name__ == "__main__":
    main()
