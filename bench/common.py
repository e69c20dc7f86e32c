"""Shared pieces of the benchmarks: an instant "null" channel plugin, bulk family seeding,
peak memory and a figure printer."""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select

from gateway import Channel, OutboundMessage, SendResult, hookimpl
from gateway.storage.db import FAMILY_TABLES
from gateway.storage.models import Endpoint, Family, Guardian, OutboxMessage, Student, utcnow

LANGUAGES: Sequence[str] = ("en", "es", "so", "ar", "vi", "zh", "fr", "pt", "ru", "sw", "uk", "ne")
#: Sixty home languages of a large district: the nine with reviewed catalogs, the rest without.
LANGUAGES_60: Sequence[str] = (
    "en", "es", "so", "ar", "vi", "zh-Hans", "fr", "sw", "my", "ne", "prs", "ps", "ht", "rw", "ti",
    "am", "om", "pt", "ru", "uk", "ur", "hi", "bn", "pa", "gu", "ta", "te", "ko", "ja", "tl", "id",
    "ms", "th", "km", "lo", "hmn", "kar", "fa", "tr", "ku", "ckb", "ka", "hy", "ro", "pl", "de", "it",
    "el", "he", "ha", "yo", "ig", "ff", "wo", "ln", "sn", "zu", "mg", "zh-Hant", "chk",
)  # fmt: skip


class NullChannel(Channel):
    """Accepts every message at once: measures the gateway, not a provider."""

    plugin = "null"

    async def send(self, message: OutboundMessage) -> SendResult:
        """Take it."""
        return SendResult(provider_message_id=f"null-{message.message_id}", status="sent")


class NullChannelPlugin:
    """Registers :class:`NullChannel` through the real hook."""

    @hookimpl
    def gateway_channel_types(self) -> list[type[Channel]]:
        """The null channel."""
        return [NullChannel]


async def seed_families(
    gw: Any, count: int, languages: Sequence[str] = LANGUAGES, kind: str = "phone"
) -> None:
    """``count`` families, one guardian and one student each, languages round-robin; each
    chunk reads back only its own rows (linear in ``count``). Statistics are refreshed after,
    as the import command does."""
    chunk = 5000
    async with gw.db.session() as session:
        for start in range(0, count, chunk):
            stop = min(count, start + chunk)
            await session.execute(insert(Family), [{"external_id": f"B{i:07d}"} for i in range(start, stop)])
            ids = dict(
                (ext, fid)
                for ext, fid in await session.execute(
                    select(Family.external_id, Family.id).where(
                        Family.external_id.between(f"B{start:07d}", f"B{stop - 1:07d}")
                    )
                )
            )
            guardians = [
                {
                    "family_id": ids[f"B{i:07d}"],
                    "name": f"Guardian {i}",
                    "name_key": f"guardian {i}",
                    "language": languages[i % len(languages)],
                    "timezone": "America/Chicago",
                    "preferred_channel": None,
                }
                for i in range(start, stop)
            ]
            await session.execute(insert(Guardian), guardians)
            gids = dict(
                (fid, gid)
                for fid, gid in await session.execute(
                    select(Guardian.family_id, Guardian.id).where(
                        Guardian.family_id.between(min(ids.values()), max(ids.values()))
                    )
                )
            )
            address = (lambda i: f"+1816{i:07d}") if kind == "phone" else (lambda i: f"family{i}@example.org")
            await session.execute(
                insert(Endpoint),
                [
                    {"guardian_id": gids[ids[f"B{i:07d}"]], "kind": kind, "address": address(i)}
                    for i in range(start, stop)
                ],
            )
            await session.execute(
                insert(Student),
                [
                    {
                        "family_id": ids[f"B{i:07d}"],
                        "name": f"Student {i}",
                        "name_key": f"student {i}",
                        "school": "Lincoln",
                        "grade": "6",
                        "tags": [],
                    }
                    for i in range(start, stop)
                ],
            )
        await session.commit()
    # What `gateway families import` does after writing this many rows (gateway/families.py).
    await gw.db.refresh_statistics(FAMILY_TABLES, count)


async def seed_outbox(
    gw: Any,
    count: int,
    channel: str = "sms",
    address: Any = None,
    body: str = "Reading workshop on Thursday at 6 pm in the library. Reply YES to come.",
    html: str | None = None,
    subject: str | None = None,
    unique_bodies: bool = False,
    tag: str = "",
) -> None:
    """``count`` queued outbox messages on ``channel``, due now, written with Core inserts.
    ``address(i)`` gives the i-th recipient (default: distinct phone numbers);
    ``unique_bodies`` appends ``#i`` to each body (to count duplicates at the provider);
    ``tag`` tells several seedings of one database apart."""
    make = address or (lambda i: f"+1816{i:07d}")
    now = utcnow()
    chunk = 5000
    async with gw.db.session() as session:
        for start in range(0, count, chunk):
            await session.execute(
                insert(OutboxMessage),
                [
                    {
                        "channel": channel,
                        "address": make(i),
                        "language": LANGUAGES[i % len(LANGUAGES)],
                        "body": f"{body} #{tag}{i}" if unique_bodies else body,
                        "subject": subject,
                        "html": html,
                        "payload": {"family_id": None},
                        "status": "queued",
                        "due_at": now,
                        "reply_token": f"bench-{tag}{i:08d}",
                    }
                    for i in range(start, min(count, start + chunk))
                ],
            )
        await session.commit()


def process_env(**extra: str) -> dict[str, str]:
    """The environment for a ``gateway`` command under measurement: as installed, with its
    bytecode. ``pip install`` byte-compiles a wheel; a shell with ``PYTHONDONTWRITEBYTECODE``
    (this machine's) would make every start-up compile the gateway's own modules from source
    again (0.15 s of CPU per start), which no installation does."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra)
    return env


def max_in_window(times: Sequence[float], window: float = 1.0) -> int:
    """The largest number of timestamps inside any half-open window of ``window`` seconds."""
    ordered = sorted(times)
    best = left = 0
    for right, t in enumerate(ordered):
        while t - ordered[left] >= window:
            left += 1
        best = max(best, right - left + 1)
    return best


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` (0..1) percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[rank]


async def fresh_pg_database(prefix: str = "gwbench") -> str:
    """A migrated database of its own on the local PostgreSQL (drop it with
    :func:`gateway.testing.harness.drop_pg_database`); returns its URL."""
    from gateway.testing.harness import clone_pg_database, create_pg_template, drop_pg_database, pg_url

    template = await create_pg_template(f"{prefix}tmpl")
    try:
        return await clone_pg_database(template, prefix=prefix)
    finally:
        await drop_pg_database(pg_url(template))


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def report(title: str, figures: dict[str, Any]) -> None:
    """Print one benchmark's figures."""
    print(f"== {title}")
    for key, value in figures.items():
        print(f"   {key}: {value}")
