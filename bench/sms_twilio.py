"""SMS benchmark: queued messages dispatched through the ``twilio_sms`` channel (the real
``twilio`` library's async client) to a local Twilio-protocol server (FakeTwilioServer, in its
own process) with no rate limit.

    .venv/bin/python bench/sms_twilio.py [--messages 5000] [--concurrency 32]

Prints messages/s (dispatch: claim, send, record) and what the server accepted; every message
must arrive exactly once. Target: ≥ 500 messages/s.
"""

from __future__ import annotations

import argparse
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


def twilio_channel(info: dict[str, Any], concurrency: int, **overrides: Any) -> dict[str, Any]:
    """``channels.sms`` of a twilio_sms channel pointed at the provider process ``info``."""
    return {
        "plugin": "twilio_sms",
        "account_sid": info["account_sid"],
        "auth_token": info["auth_token"],
        "from_number": "+19135550100",
        "api_base_url": info["url"],
        "status_callback": False,
        "timeout": 10,
        "concurrency": concurrency,
        **overrides,
    }


async def run(messages: int, concurrency: int, folder: Path) -> dict[str, Any]:
    """Queue and dispatch ``messages`` SMS; returns the figures."""
    with ProviderProcess("twilio") as twilio:
        config = write_config(
            folder,
            channels={"sms": twilio_channel(twilio.info, concurrency)},
            dispatch={"batch_size": 1000},
        )
        async with open_gateway(config) as gw:
            await seed_outbox(gw, messages, channel="sms", unique_bodies=True)
            started = time.perf_counter()
            result = await gw.dispatcher.run_until_idle()
            elapsed = time.perf_counter() - started
        stats = twilio.ask("stats")
    return {
        "messages": messages,
        "concurrency": concurrency,
        "sent (outbox)": result.sent,
        "accepted (server)": stats["messages"],
        "duplicates (server)": stats["duplicates"],
        "dispatch seconds": round(elapsed, 2),
        "messages/s": round(result.sent / elapsed),
        "peak RSS MB (gateway process)": round(peak_rss_mb(), 1),
    }


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = event_loop.run(run(args.messages, args.concurrency, Path(tmp)))
    report(f"SMS through the twilio client to a local Twilio server, {args.messages} messages", figures)


if __name__ == "__main__":
    main()
