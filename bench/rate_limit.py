"""Rate-limit benchmark: a Telegram broadcast at the channel's limits (30 messages/s overall,
1/s per chat) to a local Bot API server (TelegramBotAPIServer, in its own process), measured
where the provider sees the messages arrive.

    .venv/bin/python bench/rate_limit.py [--messages 3000] [--chats 1000] [--burst 1]

Message ``i`` goes to chat ``(i // burst) % chats``: with ``--burst 2`` or more, consecutive
messages share a chat, so the per-chat limit has to hold them apart. Prints the busiest
1-second window overall and per chat, and the average rate from the first to the last arrival.
Targets: never above 30 in any 1-second window; average at most 5 % below 30/s. The default
3,000 messages take about 100 s; ``--messages 300`` is a quick run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import max_in_window, report, seed_outbox
from servers import ProviderProcess

from gateway import event_loop
from gateway.testing.harness import open_gateway, write_config

RATE = 30
PER_CHAT = 1


async def run(messages: int, chats: int, burst: int, concurrency: int, folder: Path) -> dict[str, Any]:
    """One rate-limited broadcast; returns the figures measured at the server."""
    with ProviderProcess("telegram") as telegram:
        config = write_config(
            folder,
            channels={
                "telegram": {
                    "plugin": "telegram",
                    "token": telegram.info["token"],
                    "api_base_url": telegram.info["base_url"],
                    "mode": "webhook",
                    "webhook_secret": "bench-secret",
                    "bot_username": "school_gateway_bot",
                    "rate_per_second": RATE,
                    "rate_per_recipient_per_second": PER_CHAT,
                    "concurrency": concurrency,
                    "request_timeout": 10,
                }
            },
            dispatch={"batch_size": 500},
        )
        async with open_gateway(config) as gw:
            await seed_outbox(
                gw,
                messages,
                channel="telegram",
                address=lambda i: str(100_000 + (i // burst) % chats),
                unique_bodies=True,
            )
            telegram.ask("reset")  # setWebhook etc. at start are not part of the broadcast
            started = time.perf_counter()
            result = await gw.dispatcher.run_until_idle()
            elapsed = time.perf_counter() - started
            late = gw.metrics.value("gateway_rate_limit_late_slots_total", channel="telegram")
        stats = telegram.ask("stats")
    arrivals: list[tuple[str, float]] = stats["arrivals"]
    times = [at for _, at in arrivals]
    per_chat: dict[str, list[float]] = defaultdict(list)
    for chat, at in arrivals:
        per_chat[chat].append(at)
    span = max(times) - min(times) if len(times) > 1 else 0.0
    average = (len(times) - 1) / span if span else 0.0
    busiest = max_in_window(times)
    chat_busiest = max(max_in_window(t) for t in per_chat.values())
    return {
        "messages": messages,
        "chats / burst": f"{chats} / {burst}",
        "sent (outbox)": result.sent,
        "arrived (server)": len(times),
        "duplicates (server)": stats["duplicates"],
        "busiest 1-s window": f"{busiest} (limit {RATE})",
        "busiest 1-s window of one chat": f"{chat_busiest} (limit {PER_CHAT})",
        "average rate first→last arrival /s": round(average, 2),
        "below the limit %": round(100 * (1 - average / RATE), 1),
        "dispatch seconds": round(elapsed, 1),
        "slots given up (late)": late,
        "within limit": busiest <= RATE,
        "at most 5 % below": average >= 0.95 * RATE,
    }


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=1, help="consecutive messages to one chat")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = event_loop.run(run(args.messages, args.chats, args.burst, args.concurrency, Path(tmp)))
    report(f"Telegram at {RATE}/s overall and {PER_CHAT}/s per chat, {args.messages} messages", figures)


if __name__ == "__main__":
    main()
