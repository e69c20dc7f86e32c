"""Family use cases: CSV import (with a progress bar) and onboarding links."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import select

from gateway.domain.family_csv import parse_families_csv
from gateway.errors import GatewayError
from gateway.storage.endpoints import create_link_token
from gateway.storage.families import FamilyRepository
from gateway.storage.models import Family, Guardian

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["import_families", "onboarding_links"]

PROGRESS_THRESHOLD = 2000


async def import_families(
    gw: Gateway, path: Path, *, dry_run: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Import a families CSV; the ``families import --json`` report. Atomic: all valid rows or none."""
    cfg = gw.config.families
    parsed = parse_families_csv(
        await asyncio.to_thread(path.read_bytes),
        default_region=cfg.default_region,
        default_language=cfg.default_language,
        default_timezone=cfg.default_timezone,
        channels=frozenset(gw.channels) | frozenset({"sms", "email", "telegram", "phone"}),
    )
    records = list(parsed.families.values())
    bar = None
    if progress and parsed.rows >= PROGRESS_THRESHOLD:
        bar = Progress(
            TextColumn("importing families"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
        )
    async with gw.db.session() as session:
        repo = FamilyRepository(session)
        if bar is not None:
            with bar:
                task = bar.add_task("import", total=len(records))
                counts = await repo.upsert(records, progress=lambda n: bar.advance(task, n))
        else:
            counts = await repo.upsert(records)
        if dry_run:
            await session.rollback()
        else:
            await session.commit()
    return {
        "file": str(path),
        "dry_run": dry_run,
        "rows": parsed.rows,
        "families_imported": counts.created,
        "families_updated": counts.updated,
        "families_unchanged": counts.unchanged,
        "students": counts.students,
        "errors": [p.as_dict() for p in parsed.errors],
        "warnings": [p.as_dict() for p in parsed.warnings],
    }


async def onboarding_links(
    gw: Gateway, family_id: str, channel_name: str = "telegram"
) -> list[dict[str, Any]]:
    """A fresh single-use deep link per guardian of a family."""
    channel = gw.channel(channel_name)
    bot = getattr(channel, "bot_username", None) or channel.settings.model_dump().get("bot_username")
    resolve = getattr(channel, "resolve_bot_username", None)
    if not bot and resolve is not None:
        bot = await resolve()  # e.g. Telegram's getMe when the channel is not started
    async with gw.db.session() as session:
        family = await session.scalar(select(Family).where(Family.external_id == family_id))
        if family is None:
            raise GatewayError(f"no family {family_id!r}")
        guardians = list(await session.scalars(select(Guardian).where(Guardian.family_id == family.id)))
    links = []
    for guardian in guardians:
        token = await create_link_token(gw.db, guardian.id, channel.kind)
        url = f"https://t.me/{bot}?start={token}" if bot else f"/start {token}"
        links.append({"guardian": guardian.name, "language": guardian.language, "token": token, "url": url})
    return links
