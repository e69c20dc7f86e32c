"""The gateway against its peers, in one run: the same N personalised messages to the same local
provider servers (each in a process of its own) sent by

(a) Apprise, one ``notify`` per family (its e-mail and Twilio plugins, as a district script
    would use it), on as many threads as the gateway used connections (``--apprise-threads 1``:
    one notify after another, as a plain script does);
(b) the raw client library over the same number of connections (``bench/raw_send.py``):
    ``aiosmtplib`` with the standard library's ``EmailMessage`` for e-mail, the ``twilio``
    library's async client for SMS (its HTTP calls, nothing else) — once inside this process
    (sending only) and once as a command of its own (interpreter start and imports included);
(c) the gateway end to end as a district runs it, with default settings: ``gateway families
    import`` (CSV), ``gateway broadcast send workshop_invitation`` (RSVP), then ``gateway worker``
    until the provider has every message.

    .venv/bin/python bench/peers.py [--messages 1000] [--only email,email-starttls,sms]
                                    [--latency 0.2] [--apprise-threads N]
                                    [--profile-worker FOLDER]

The messages of (a) and (b) are the ones the gateway rendered (read back from its outbox):
subject, text and HTML per family, to the same addresses. "Sending" rates are messages per
second between the first and the last arrival as the provider timed them; "as a command"
from launching the process (``gateway worker``, ``raw_send.py``) to the last arrival, so both
pay their interpreter start and imports. Ratios are the gateway's against raw and Apprise;
connections are what the server saw. ``--latency`` makes the SMS provider answer each message
after that many seconds (the real API's round trip from a district's server, instead of a
loopback's microseconds). ``--profile-worker`` runs the worker under cProfile and leaves
``worker-<kind>.prof`` there; ``PEERS_SAMPLE_WORKER="py-spy record -o FILE"`` attaches a
sampling profiler to the worker (given ``--pid``).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import process_env, report
from raw_send import FROM_ADDRESS, FROM_NUMBER, outbox_messages, send
from servers import ProviderProcess

from gateway.domain.events import upcoming_event_file
from gateway.resources import SHIPPED_EXAMPLES
from gateway.testing.harness import write_config

GATEWAY = [sys.executable, "-m", "gateway.cli"]
EVENT = SHIPPED_EXAMPLES / "reading-workshop.yaml"


def write_families(path: Path, count: int, kind: str) -> None:
    """``count`` families in Lincoln grade 6 (the invitation's audience), English and Spanish."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["family_id", "guardian_name", "language", "phone", "email", "school", "grade", "student_name"]
        )
        for i in range(count):
            phone = f"+1913{5550000 + i:07d}" if kind == "sms" else ""
            email = f"family{i}@example.org" if kind != "sms" else ""
            writer.writerow(
                [
                    f"P{i:06d}",
                    f"Parent {i} Name",
                    ("en", "es")[i % 2],
                    phone,
                    email,
                    "Lincoln",
                    "6",
                    f"Student{i} Family",
                ]
            )


def gateway_config(folder: Path, kind: str, info: dict[str, Any]) -> Path:
    """A config with one channel at its defaults (pool size, concurrency, batch, polling)."""
    if kind == "sms":
        channel = {
            "plugin": "twilio_sms",
            "account_sid": info["account_sid"],
            "auth_token": info["auth_token"],
            "from_number": FROM_NUMBER,
            "api_base_url": info["url"],
            "status_callback": False,  # the fake server would call an unreachable URL back
        }
        channels = {"sms": {"endpoint": "phone", **channel}}
    else:
        smtp = {
            "host": info["host"],
            "port": info["port"],
            "starttls": kind == "email-starttls",
            "validate_certs": False,
            "from_address": FROM_ADDRESS,
            "from_name": "Lincoln Middle School",
        }
        channels = {"email": {"plugin": "smtp_email", "endpoint": "email", "smtp": smtp}}
    # write_config's test defaults for dispatch (fast polling) are dropped: the defaults it is.
    path = write_config(folder, channels=channels, logging={"level": "WARNING"})
    text = path.read_text(encoding="utf-8")
    import yaml

    data = yaml.safe_load(text)
    data.pop("dispatch", None)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def wait_for(provider: ProviderProcess, count: int, deadline: float) -> tuple[float, float]:
    """Poll the provider until it holds ``count`` messages; the first and the last arrival,
    as the provider timed them (``time.monotonic``, one clock for every process)."""
    held = 0
    while time.monotonic() < deadline:
        held, first, last = provider.ask("progress")
        if held >= count:
            return first, last
        time.sleep(0.01)
    raise RuntimeError(f"the provider had {held} of {count} messages at the deadline")


def run_raw_command(
    kind: str, provider: ProviderProcess, database: Path, connections: int, count: int
) -> float:
    """``bench/raw_send.py`` as a command: seconds from launching it to the provider holding
    the last message (interpreter start, library import and sending, as for the worker)."""
    provider.ask("reset")
    command = [
        sys.executable,
        str(Path(__file__).with_name("raw_send.py")),
        kind,
        str(database),
        json.dumps(provider.info),
        str(connections),
    ]
    launched = time.monotonic()
    process = subprocess.Popen(command, env=process_env(), stderr=subprocess.PIPE)
    try:
        _, last = wait_for(provider, count, launched + 600)
    finally:
        _, errors = process.communicate(timeout=60)
    if process.returncode:
        raise RuntimeError(f"raw_send.py failed: {errors.decode(errors='replace')[-2000:]}")
    return last - launched


def run_gateway(
    folder: Path, kind: str, provider: ProviderProcess, count: int, profile: Path | None = None
) -> dict[str, Any]:
    """Import, broadcast send, then a worker until the provider has them all."""
    config = gateway_config(folder, kind, provider.info)
    env = process_env(GATEWAY_CONFIG=str(config))
    families = folder / "families.csv"
    write_families(families, count, kind)
    event = upcoming_event_file(EVENT, folder / "event.yaml")
    started = time.monotonic()
    subprocess.run(
        [*GATEWAY, "families", "import", str(families), "--json"], env=env, check=True, capture_output=True
    )
    imported = time.monotonic()
    subprocess.run(
        [*GATEWAY, "broadcast", "send", "workshop_invitation", "--event", str(event), "--json"],
        env=env,
        check=True,
        capture_output=True,
    )
    planned = time.monotonic()
    provider.ask("reset")
    command = [*GATEWAY, "worker"]
    if profile is not None:
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), *command[1:]]
    launched = time.monotonic()
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler = None
    if os.environ.get("PEERS_SAMPLE_WORKER"):  # a sampling profiler's command, given --pid PID
        sampler = subprocess.Popen([*os.environ["PEERS_SAMPLE_WORKER"].split(), "--pid", str(worker.pid)])
    try:
        first, last = wait_for(provider, count, launched + 600)
    finally:
        if sampler is not None:
            sampler.send_signal(signal.SIGINT)
            sampler.wait(60)
        worker.send_signal(signal.SIGTERM)
        _, errors = worker.communicate(timeout=60)
    stats = provider.ask("stats")
    assert first is not None
    return {
        "import s": imported - started,
        "broadcast send s": planned - imported,
        "worker start → first arrival s": first - launched,
        "worker start → last arrival s": last - launched,
        "first → last arrival s": last - first,
        "connections": stats["connections"] // 2 if kind == "email-starttls" else stats["connections"],
        "accepted": stats["messages"],
        "duplicates": stats["duplicates"],
        "database": config.parent / "data" / "gateway.db",
        "worker stderr": errors.decode(errors="replace")[-2000:],
    }


def apprise_run(
    notify: Callable[[dict[str, Any]], bool], messages: list[dict[str, Any]], threads: int
) -> float:
    """One Apprise notify per message on ``threads`` threads; seconds."""
    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(notify, messages))
    if not all(results):
        raise RuntimeError(f"Apprise failed {results.count(False)} of {len(results)} notifications")
    return time.monotonic() - started


def apprise_email(info: dict[str, Any], starttls: bool) -> Callable[[dict[str, Any]], bool]:
    """A notify function: one Apprise e-mail per message (text + HTML, as Apprise builds it)."""
    import apprise

    mode = "starttls&verify=no" if starttls else "insecure"

    def notify(message: dict[str, Any]) -> bool:
        sender = apprise.Apprise()
        sender.add(
            f"mailto://{info['host']}:{info['port']}?from={FROM_ADDRESS}&name=Lincoln+Middle+School"
            f"&to={message['address']}&mode={mode}"
        )
        return bool(
            sender.notify(
                title=message["subject"] or "",
                body=message["html"] or message["body"],
                body_format=apprise.NotifyFormat.HTML if message["html"] else None,
            )
        )

    return notify


def apprise_sms(info: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """A notify function: one Apprise Twilio SMS per message, its API URL pointed at the local
    server (Apprise has no setting for it)."""
    import apprise
    from apprise.plugins.twilio import NotifyTwilio

    NotifyTwilio.notify_sms_url = info["url"] + "/2010-04-01/Accounts/{sid}/Messages.json"

    def notify(message: dict[str, Any]) -> bool:
        sender = apprise.Apprise()
        sender.add(f"twilio://{info['account_sid']}:{info['auth_token']}@{FROM_NUMBER}/{message['address']}")
        return bool(sender.notify(body=message["body"]))

    return notify


def compare(
    kind: str,
    count: int,
    folder: Path,
    profile: Path | None = None,
    latency: float = 0.0,
    apprise_threads: int | None = None,
) -> dict[str, Any]:
    """The three senders against one provider process; the figures. Sending rates are taken
    between the provider's first and last arrival for every sender (its clock); "as a
    command" from launching the process to the last arrival."""
    options: dict[str, Any] = {"starttls": True} if kind == "email-starttls" else {}
    if kind == "sms" and latency:
        options["latency"] = latency
    with ProviderProcess("twilio" if kind == "sms" else "smtp", **options) as provider:
        gateway = run_gateway(folder, kind, provider, count, profile and profile / f"worker-{kind}.prof")
        messages = outbox_messages(gateway["database"])
        connections = max(1, gateway["connections"])
        provider.ask("reset")
        asyncio.run(send(kind, provider.info, messages, connections))
        _, first, last = provider.ask("progress")
        raw_sending = last - first
        raw_stats = provider.ask("stats")
        raw_command = run_raw_command(kind, provider, gateway["database"], connections, count)
        provider.ask("reset")
        notify = (
            apprise_sms(provider.info)
            if kind == "sms"
            else apprise_email(provider.info, kind == "email-starttls")
        )
        threads = apprise_threads or connections
        apprise_run(notify, messages, threads)
        _, first, last = provider.ask("progress")
        apprise_seconds = last - first
        apprise_stats = provider.ask("stats")

    def conns(stats: dict[str, Any]) -> int:
        return stats["connections"] // 2 if kind == "email-starttls" else stats["connections"]

    with_startup = count / gateway["worker start → last arrival s"]
    sending = count / gateway["first → last arrival s"]
    raw = count / raw_sending
    raw_as_command = count / raw_command
    peer = count / apprise_seconds
    if gateway["accepted"] != count or raw_stats["messages"] != count or apprise_stats["messages"] != count:
        print(gateway["worker stderr"], file=sys.stderr)
    return {
        "messages": count,
        "provider latency s": latency if kind == "sms" else 0.0,
        "(a) Apprise msg/s (connections; threads)": f"{peer:.0f} ({conns(apprise_stats)}; {threads})",
        "(b) raw library msg/s, sending (connections)": f"{raw:.0f} ({conns(raw_stats)})",
        "(b) raw library msg/s, as a command (launch → last arrival)": f"{raw_as_command:.0f}",
        "(c) gateway msg/s, sending (connections)": f"{sending:.0f} ({gateway['connections']})",
        "(c) gateway msg/s, `gateway worker` as a command (launch → last arrival)": f"{with_startup:.0f}",
        "worker start → first arrival s": round(gateway["worker start → first arrival s"], 2),
        "gateway / raw (sending; both as commands)": f"{sending / raw:.2f}; "
        f"{with_startup / raw_as_command:.2f}",
        "gateway / Apprise (sending; worker as a command)": f"{sending / peer:.1f}; "
        f"{with_startup / peer:.1f}",
        "import s / broadcast send s": f"{gateway['import s']:.1f} / {gateway['broadcast send s']:.1f}",
        "accepted (gateway, raw, Apprise)": f"{gateway['accepted']}, {raw_stats['messages']}, "
        f"{apprise_stats['messages']}",
        "duplicates (gateway)": gateway["duplicates"],
    }


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument(
        "--only", default="email,email-starttls,sms", help="comma-separated: email, email-starttls, sms"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile-worker", type=Path, help="cProfile the worker; .prof files here")
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="SMS: seconds the provider takes to answer each message (the real API's round trip)",
    )
    parser.add_argument(
        "--apprise-threads",
        type=int,
        help="threads for Apprise (default: the gateway's connections; 1 = one notify after another)",
    )
    args = parser.parse_args()
    results = {}
    for kind in args.only.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            results[kind] = compare(
                kind, args.messages, Path(tmp), args.profile_worker, args.latency, args.apprise_threads
            )
        if not args.json:
            report(
                f"{kind}: {args.messages} personalised messages, gateway vs raw library vs Apprise",
                results[kind],
            )
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
