"""Family use cases: CSV import (with a progress bar) and onboarding links."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.domain.family_csv import parse_families_csv
from gateway.errors import GatewayError
from gateway.staff_text import S_, english
from gateway.storage.db import FAMILY_TABLES
from gateway.storage.endpoints import (
    channel_states,
    create_link_token,
    effective_state,
    opt_in_on_channel,
    set_channel_state,
)
from gateway.storage.families import FamilyRepository
from gateway.storage.models import Endpoint, EndpointConsent, Family, Guardian, utcnow

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = [
    "audience_problems",
    "endpoint_details",
    "import_families",
    "legacy_preferred_channels",
    "onboarding_links",
    "set_consent",
]

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
        channels=frozenset(gw.channels),
        kinds=gw.address_kinds,
        legacy_preferred=legacy_preferred_channels(gw),
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
    if not dry_run:
        await gw.db.refresh_statistics(FAMILY_TABLES, len(records))
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


def legacy_preferred_channels(gw: Gateway) -> dict[str, str | None]:
    """Older ``preferred_channel`` values (an address kind, ``sms``) that are not channel names,
    and the channel each now means: the first configured channel of the kind (None: none is
    configured)."""
    found: dict[str, str | None] = {}
    for value in (*gw.address_kinds, "sms"):
        if value in gw.channels:
            continue
        channel = gw.resolve_preferred(value)
        found[value] = channel if channel in gw.channels else None
    return found


async def endpoint_details(
    gw: Gateway, session: AsyncSession, guardians: list[Guardian]
) -> dict[int, dict[str, Any]]:
    """Per endpoint id: ``opted_out`` / ``invalid`` on the channel the listing names (the first
    of the endpoint's kind), ``masked`` (the address as its kind shows it), ``label`` (the kind) and
    ``channels``: for every configured channel that reaches the endpoint, its consent there
    (``state``: ``subscribed`` | ``opted_out`` | ``invalid``, ``everywhere`` when the mark is
    on every channel, ``since``)."""
    endpoints = [e for g in guardians for e in g.endpoints]
    own = await channel_states(session, [e.id for e in endpoints])
    since = {
        (row.endpoint_id, row.channel): row.opted_out_at
        for row in await session.scalars(
            select(EndpointConsent).where(EndpointConsent.endpoint_id.in_([e.id for e in endpoints]))
        )
    }
    details: dict[int, dict[str, Any]] = {}
    for guardian in guardians:
        kinds_held = {e.kind for e in guardian.endpoints}
        for endpoint in guardian.endpoints:
            kind = gw.address_kinds.get(endpoint.kind)
            channels = []
            for channel in gw.channels_for_endpoint(endpoint.kind):
                if channel.kind != endpoint.kind and channel.kind in kinds_held:
                    continue  # the guardian gave this channel an address of its own
                state = effective_state(
                    endpoint.opted_out,
                    endpoint.invalid,
                    endpoint.invalid_reason,
                    own.get(endpoint.id),
                    channel.name,
                )
                at = endpoint.opted_out_at if state.everywhere else since.get((endpoint.id, channel.name))
                channels.append(
                    {
                        "channel": channel.name,
                        "state": "opted_out"
                        if state.opted_out
                        else "invalid"
                        if state.invalid
                        else "subscribed",
                        "everywhere": state.everywhere,
                        "since": at.isoformat() if at and not state.usable else None,
                    }
                )
            listed = gw.channel_name_for_kind(endpoint.kind)
            on_listed = next((c for c in channels if c["channel"] == listed), None)
            details[endpoint.id] = {
                # The older keys read "on the listed channel" (the first of the endpoint's kind).
                "opted_out": endpoint.opted_out or bool(on_listed and on_listed["state"] == "opted_out"),
                "invalid": endpoint.invalid or bool(on_listed and on_listed["state"] == "invalid"),
                "label": (kind.label or kind.name) if kind else endpoint.kind,
                "masked": gw.address_kinds.mask(endpoint.kind, endpoint.address),
                "channels": channels,
            }
    return details


async def set_consent(
    gw: Gateway, session: AsyncSession, endpoint: Endpoint, channel: str | None, opted_out: bool
) -> None:
    """Staff change a family's consent for them: on one channel, or (``channel`` None) on every
    channel reaching the endpoint. Opting in on one channel leaves the others as they are."""
    reaching = [c.name for c in gw.channels_for_endpoint(endpoint.kind)]
    if channel is not None and channel not in reaching:
        raise GatewayError(
            f"channel {channel!r} does not reach this address (channels: {', '.join(reaching)})"
        )
    if channel is None:
        if opted_out:
            endpoint.opted_out, endpoint.opted_out_at = True, utcnow()
        else:
            endpoint.opted_out, endpoint.opted_out_at = False, None
            for name in reaching:
                await set_channel_state(session, [endpoint.id], name, None)
    elif opted_out:
        await set_channel_state(session, [endpoint.id], channel, "opted_out")
    else:
        await opt_in_on_channel(session, [endpoint.id], channel, reaching)
    await session.flush()


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


#: An audience term that matches nothing, by kind of term (read by staff, in their language).
NO_MATCH = {
    "school": S_("%(term)s matches no school of your families"),
    "grade": S_("%(term)s matches no grade of your families"),
    "language": S_("%(term)s matches no language of your families"),
    "tag": S_("%(term)s matches no tag of your families"),
}
DID_YOU_MEAN = S_("%(problem)s (did you mean “%(name)s”?)")
NO_FAMILY = S_("%(term)s is no family of the district")


async def audience_problems(
    gw: Gateway, expression: str, scope: list[str] | None = None, say: Callable[..., str] = english
) -> list[str]:
    """Terms of an audience expression that match no school, grade, language, tag or family the
    district has (within ``scope``): a typo would otherwise silently mean nobody. In English, or
    in the interface language of ``say`` (a ``gettext``)."""
    import difflib
    import json

    from sqlalchemy import Text, cast, func

    from gateway.domain.audience import _grade_key, _key, parse_audience
    from gateway.storage.models import Student

    audience = parse_audience(expression)
    problems: list[str] = []
    async with gw.db.session() as session:
        in_scope = (
            func.lower(Student.school).in_([s.casefold() for s in scope]) if scope is not None else None
        )
        schools: dict[str, str] = {}
        grades: dict[str, str] = {}
        tags: dict[str, str] = {}
        pairs = select(Student.school, Student.grade).distinct()
        tag_lists = select(cast(Student.tags, Text)).where(Student.tags.is_not(None)).distinct()
        if in_scope is not None:
            pairs, tag_lists = pairs.where(in_scope), tag_lists.where(in_scope)
        for school, grade in (await session.execute(pairs)).all():
            if school:
                schools[_key(school)] = school
            if grade:
                grades[_grade_key(grade)] = grade
        for raw in await session.scalars(tag_lists):
            for tag in json.loads(raw or "[]") or []:
                tags[_key(str(tag))] = str(tag)
        languages = {
            str(code).casefold() for code in await session.scalars(select(Guardian.language).distinct())
        }
        families = set()
        if audience.families:
            families = set(
                await session.scalars(
                    select(Family.external_id).where(Family.external_id.in_(sorted(audience.families)))
                )
            )

    def unknown(kind: str, wanted: frozenset[str], known: dict[str, str] | set[str]) -> None:
        names = known if isinstance(known, dict) else {k: k for k in known}
        for value in sorted(wanted):
            if value in names or (
                kind == "language" and value.split("-")[0] in {k.split("-")[0] for k in names}
            ):
                continue
            close = difflib.get_close_matches(value, list(names), n=1, cutoff=0.6)
            problem = say(NO_MATCH[kind], term=f"{kind}:{value}")
            if close:
                problem = say(DID_YOU_MEAN, problem=problem, name=names[close[0]])
            problems.append(problem)

    unknown("school", audience.schools, schools)
    unknown("grade", audience.grades, grades)
    unknown("language", audience.languages, languages)
    unknown("tag", audience.tags, tags)
    for family_id in sorted(audience.families - families):
        problems.append(say(NO_FAMILY, term=f"family:{family_id}"))
    return problems
