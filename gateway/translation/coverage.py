"""Which of the district's languages are covered, and by what: ``gateway translate languages``.

For each language of the district's guardians (read from the families table, with the number
of guardians and families reading it) it says whether a reviewed catalog covers the template
text, which configured engines translate into it (and back into the staff language, for
replies), under which code and licence; the languages no engine covers are listed apart. It
also says what each configured engine covers, where its translations come from and under which
licence, as the engine itself reports it (:meth:`gateway.TranslationEngine.describe`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from gateway.domain.languages import display_name, fallback_chain
from gateway.errors import GatewayError
from gateway.storage.models import Guardian
from gateway.translation.engine import EngineInfo, TranslationEngine

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["district_languages", "language_coverage"]

log = logging.getLogger("gateway.translation")


async def district_languages(gateway: Gateway) -> list[tuple[str, int, int]]:
    """``(language, guardians, families)`` for every guardian language, most guardians first."""
    async with gateway.db.session() as session:
        rows = await session.execute(
            select(
                Guardian.language,
                func.count(Guardian.id),
                func.count(func.distinct(Guardian.family_id)),
            ).group_by(Guardian.language)
        )
        counted = [(str(language), int(guardians), int(families)) for language, guardians, families in rows]
    return sorted(counted, key=lambda row: (-row[1], row[0]))


def _same(a: str, b: str) -> bool:
    return a.split("-")[0].lower() == b.split("-")[0].lower()


def _covers(engine: TranslationEngine, source: str, target: str) -> bool:
    try:
        return engine.available() and any(engine.can_translate(source, t) for t in fallback_chain(target))
    except Exception:  # a broken engine covers nothing; it is reported, not fatal
        log.exception("engine %s failed to say whether it covers %s→%s", engine.name, source, target)
        return False


async def _describe(engine: TranslationEngine, source: str) -> EngineInfo:
    try:
        return await engine.describe(source)
    except GatewayError as exc:
        return EngineInfo(notes=(str(exc),))


async def language_coverage(gateway: Gateway) -> dict[str, Any]:
    """The ``translate languages --json`` document.

    Keys: ``source_language``, ``staff_language``, ``catalogs`` (languages with a reviewed
    catalog), ``engines`` (per configured engine: ``engine``, ``available``, ``pairs`` from the
    source language or into the staff language, ``languages``, ``codes``, ``licence``,
    ``source``, ``notes``), ``district`` (per guardian language: ``language``, ``name``,
    ``guardians``, ``families``, ``catalog`` (the reviewed catalog used, or null),
    ``engines`` (``[{"engine", "code", "licence"}]`` translating into it), ``replies`` (engines
    translating it into the staff language), ``status``: ``source`` | ``machine`` |
    ``catalog only`` | ``uncovered``) and ``uncovered`` (district languages no engine translates
    into; their free text reaches families in the source language).
    """
    translation = gateway.config.translation
    source, staff = translation.source_language, translation.staff_language
    catalogs = gateway.catalogs.available()
    engines: list[dict[str, Any]] = []
    infos: dict[str, EngineInfo] = {}
    for engine in gateway.engines:
        info = await _describe(engine, source)
        infos[engine.name] = info
        available = engine.available()
        pairs = await asyncio.to_thread(engine.language_pairs) if available else []
        shown = [(s, t) for s, t in pairs if _same(s, source) or _same(t, staff)]
        engines.append(
            {
                "engine": engine.name,
                "available": available,
                "pairs": [{"source": s, "target": t} for s, t in shown],
                **asdict(info),
            }
        )
    district: list[dict[str, Any]] = []
    uncovered: list[str] = []
    for language, guardians, families in await district_languages(gateway):
        catalog = next((c for c in fallback_chain(language) if c in catalogs), None)
        if _same(language, source):
            covering: list[dict[str, Any]] = []
            replies: list[str] = []
            status = "source"
        else:
            covering = []
            for engine in gateway.engines:
                if await asyncio.to_thread(_covers, engine, source, language):
                    info = infos[engine.name]
                    code = next((info.codes[t] for t in fallback_chain(language) if t in info.codes), None)
                    covering.append({"engine": engine.name, "code": code, "licence": info.licence})
            replies = []
            if not _same(language, staff):
                for engine in gateway.engines:
                    if await asyncio.to_thread(_covers, engine, language, staff):
                        replies.append(engine.name)
            status = "machine" if covering else "catalog only" if catalog else "uncovered"
            if not covering:
                uncovered.append(language)
        district.append(
            {
                "language": language,
                "name": display_name(language),
                "guardians": guardians,
                "families": families,
                "catalog": catalog,
                "engines": covering,
                "replies": replies,
                "status": status,
            }
        )
    return {
        "source_language": source,
        "staff_language": staff,
        "catalogs": catalogs,
        "engines": engines,
        "district": district,
        "uncovered": uncovered,
    }
