"""E-mail benchmark: messages through the ``smtp_email`` channel and the dispatcher to a local
aiosmtpd server (RecordingSmtpServer, in its own process), over reused connections (the
channel's pool) and over one connection per message, in one run.

    .venv/bin/python bench/email_smtp.py [--messages 2000] [--pool-size 8] [--starttls]

"One connection per message" is the same channel with every connection closed (QUIT) after
its message, so each message pays connect + greeting + EHLO + QUIT on top of MAIL/RCPT/DATA;
everything else (composition, dispatcher, database) is identical. ``--starttls`` makes the
server require STARTTLS (the channel's default, port 587 submission), so each new connection
also pays a TLS handshake. Prints both rates, the ratio and the TCP connections the server
saw. Targets: ≥ 500 msg/s reused, ≥ 5× one-per-message.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import peak_rss_mb, report, seed_outbox
from servers import ProviderProcess

from gateway import event_loop
from gateway.testing.harness import open_gateway, write_config

HTML = (
    "<p>Dear family,</p><p>The <b>reading workshop</b> is on Thursday at 6 pm in the library."
    " Reply YES to come.</p>"
)


def _one_connection_per_message(pool: Any) -> None:
    """Make the channel's pool QUIT and drop its connection after every message."""
    deliver_on = pool._deliver_on

    async def deliver_and_hang_up(slot: Any, sender: str, recipient: str, data: bytes) -> None:
        try:
            await deliver_on(slot, sender, recipient, data)
        finally:
            client = slot.client
            if client is not None and client.is_connected:
                with contextlib.suppress(Exception):
                    await client.quit()
            slot.discard()

    pool._deliver_on = deliver_and_hang_up


async def run_mode(
    folder: Path, smtp: ProviderProcess, messages: int, pool_size: int, reuse: bool, starttls: bool = False
) -> dict[str, Any]:
    """Send ``messages`` e-mails in one mode; returns rate and server-side counts."""
    config = write_config(
        folder,
        channels={
            "email": {
                "plugin": "smtp_email",
                "concurrency": pool_size * 2,
                "smtp": {
                    "host": smtp.info["host"],
                    "port": smtp.info["port"],
                    "starttls": starttls,
                    "validate_certs": False,
                    "from_address": "news@lincoln.district.example",
                    "from_name": "Lincoln Middle School",
                    "pool_size": pool_size,
                    "timeout": 10,
                },
            }
        },
        dispatch={"batch_size": 500},
    )
    smtp.ask("reset")
    async with open_gateway(config) as gw:
        await seed_outbox(
            gw,
            messages,
            channel="email",
            address=lambda i: f"family{i}@example.org",
            subject="Reading workshop",
            html=HTML,
        )
        if not reuse:
            _one_connection_per_message(gw.channels["email"].pool)
        started = time.perf_counter()
        result = await gw.dispatcher.run_until_idle()
        elapsed = time.perf_counter() - started
    stats = smtp.ask("stats")
    # aiosmtpd starts a second protocol instance on the upgraded transport after STARTTLS.
    connections = stats["connections"] // 2 if starttls else stats["connections"]
    return {
        "sent": result.sent,
        "seconds": elapsed,
        "rate": result.sent / elapsed,
        "server messages": stats["messages"],
        "server connections": connections,
        "duplicates": stats["duplicates"],
    }


async def run(messages: int, pool_size: int, folder: Path, starttls: bool = False) -> dict[str, Any]:
    """Both modes against one server; returns the figures."""
    with ProviderProcess("smtp", starttls=starttls) as smtp:
        reused = await run_mode(folder / "reused", smtp, messages, pool_size, True, starttls)
        single = await run_mode(folder / "single", smtp, messages, pool_size, False, starttls)
    return {
        "messages per mode": messages,
        "STARTTLS": starttls,
        "pool size / concurrency": f"{pool_size} / {pool_size * 2}",
        "reused: messages/s": round(reused["rate"]),
        "reused: server connections": reused["server connections"],
        "one per message: messages/s": round(single["rate"]),
        "one per message: server connections": single["server connections"],
        "ratio (reused / one per message)": round(reused["rate"] / single["rate"], 2),
        "all accepted once": all(
            r["sent"] == r["server messages"] == messages and r["duplicates"] == 0 for r in (reused, single)
        ),
        "peak RSS MB (gateway process)": round(peak_rss_mb(), 1),
    }


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages per mode")
    parser.add_argument("--pool-size", type=int, default=8)
    parser.add_argument("--starttls", action="store_true", help="the server requires STARTTLS")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = event_loop.run(run(args.messages, args.pool_size, Path(tmp), args.starttls))
    report(f"e-mail to a local aiosmtpd, {args.messages} messages per mode", figures)


if __name__ == "__main__":
    main()
