"""The translation service: the one place that decides which text a family reads.

Order for free text (event titles and descriptions, question text, staff replies, family
replies for the inbox): same language → as is; the translation memory (a reviewed entry wins
over a machine one); else the engines in ``translation.engines`` order, with names, dates, URLs,
numbers, HTML and glossary terms masked so engines never see them; a translation that loses a
placeholder is rejected and the fallback policy applies (``next_engine``, ``source_language``
with a note, or ``hold`` for review). Each distinct string is sent to an engine once per
language, ever: the result is kept in the memory.
"""

from __future__ import annotations

import hashlib
import logging
import time
import unicodedata
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.domain.languages import fallback_chain
from gateway.errors import TranslationError
from gateway.storage.db import Database
from gateway.storage.models import TranslationMemoryEntry, TranslationStat, utcnow
from gateway.translation.engine import TranslationEngine
from gateway.translation.glossary import Glossary

__all__ = ["Translated", "TranslationService", "source_key"]

log = logging.getLogger("gateway.translation")
ORIGINS = ("reviewed", "memory", "machine", "fallback")


def normalize_text(text: str) -> str:
    """How memory keys compare: NFC, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def source_key(text: str) -> str:
    """The memory key of a source string."""
    return hashlib.sha256(normalize_text(text).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Translated:
    """A text in the family's language and where it came from.

    ``origin``: ``source`` (no translation needed), ``reviewed``, ``memory``, ``machine``,
    ``fallback`` (source text shown, with a note), ``held`` (waiting for a human).
    ``reason`` (fallback and held only): why no engine's translation was used, as the last
    engine tried reported it: ``no engine`` (none covers the pair), ``unreachable``,
    ``timeout``, ``refused``, ``placeholder lost``, ``placeholder broken``, ``failed``.
    """

    text: str
    origin: str
    engine: str | None = None
    reason: str | None = None


class TranslationService:
    """Memory + engines + placeholder guard + fallback policy + counters."""

    def __init__(
        self,
        db: Database,
        engines: Sequence[TranslationEngine],
        *,
        source_language: str = "en",
        fallback: str = "source_language",
        glossary: Glossary | None = None,
        select_engine: Any = None,
    ) -> None:
        self.db = db
        self.engines = list(engines)
        self.source_language = source_language
        self.fallback = fallback
        self.glossary = glossary or Glossary()
        self._select = select_engine
        self.engine_calls = 0
        self.hits = 0
        self.misses = 0
        self._pending_stats: Counter[tuple[str, str]] = Counter()
        self._last_flush = 0.0

    # -- engines ------------------------------------------------------------------------
    def engines_for(self, source: str, target: str) -> list[TranslationEngine]:
        """Engines that can translate the pair, the selected one first."""
        capable = [e for e in self.engines if e.available() and _can(e, source, target)]
        chosen = self._select(engines=self.engines, source=source, target=target) if self._select else None
        if chosen is not None and chosen in capable:
            capable.remove(chosen)
            capable.insert(0, chosen)
        return capable

    def can_translate(self, source: str, target: str) -> bool:
        """Whether any configured engine handles the pair."""
        return bool(self.engines_for(source, target))

    # -- the main entry point -------------------------------------------------------------
    async def translate_many(
        self,
        texts: Sequence[str],
        target: str,
        source: str | None = None,
        session: AsyncSession | None = None,
        names: Sequence[str] = (),
    ) -> list[Translated]:
        """Translate a batch of texts into ``target``; never raises for a failed engine.

        With ``session``, memory reads and writes join the caller's transaction (on SQLite a
        second connection could not write while the caller holds the write lock). ``names``
        (people, places) are masked like dates and links, so engines never see them.
        """
        source = source or self.source_language
        if _same_language(source, target):
            return [Translated(t, "source") for t in texts]
        results: dict[str, Translated] = {}
        wanted = {source_key(t): t for t in texts if t.strip()}
        memory = await self._lookup(source, target, list(wanted), session)
        for key, entry in memory.items():
            origin = "reviewed" if entry.origin == "reviewed" else "memory"
            results[key] = Translated(entry.translated_text, origin, entry.engine)
        self.hits += len(memory)
        misses = [k for k in wanted if k not in memory]
        self.misses += len(misses)
        if misses:
            translated = await self._machine(source, target, [wanted[k] for k in misses], session, names)
            for key, result in zip(misses, translated, strict=True):
                results[key] = result
        out: list[Translated] = []
        for text in texts:
            if not text.strip():
                out.append(Translated(text, "source"))
                continue
            result = results[source_key(text)]
            out.append(result)
            self._pending_stats[(target, result.origin)] += 1
        return out

    async def translate(
        self,
        text: str,
        target: str,
        source: str | None = None,
        session: AsyncSession | None = None,
        names: Sequence[str] = (),
    ) -> Translated:
        """One text."""
        return (await self.translate_many([text], target, source, session, names))[0]

    async def _machine(
        self,
        source: str,
        target: str,
        texts: list[str],
        session: AsyncSession | None,
        names: Sequence[str] = (),
    ) -> list[Translated]:
        engines = self.engines_for(source, target)
        if self.fallback != "next_engine":
            engines = engines[:1]
        pending = list(range(len(texts)))
        results: dict[int, Translated] = {}
        reasons: dict[int, str] = {}
        for engine in engines:
            if not pending:
                break
            done = await self._try_engine(engine, source, target, [texts[i] for i in pending], names)
            still: list[int] = []
            for index, result in zip(pending, done, strict=True):
                if isinstance(result, str):
                    reasons[index] = result
                    still.append(index)
                else:
                    results[index] = result
            pending = still
        for index in pending:
            origin = "held" if self.fallback == "hold" else "fallback"
            results[index] = Translated(texts[index], origin, reason=reasons.get(index, "no engine"))
        stored = [(texts[i], r) for i, r in results.items() if r.origin == "machine"]
        if stored:
            await self._store(source, target, stored, session)
        return [results[i] for i in range(len(texts))]

    async def _try_engine(
        self,
        engine: TranslationEngine,
        source: str,
        target: str,
        texts: list[str],
        names: Sequence[str] = (),
    ) -> list[Translated | str]:
        """The engine's translations; a failed text is given as its reason instead."""
        from gateway.translation import placeholders

        terms = self.glossary.for_language(target)
        masked = [placeholders.mask(t, names=names, glossary_terms=terms) for t in texts]
        # Text that is only tokens, digits and punctuation once masked (a date, a URL, a term
        # kept as is) needs no engine: its originals are put back as they are.
        wanted = [i for i, m in enumerate(masked) if m.needs_translation]
        if not wanted:
            return [Translated(placeholders.unmask(m.text, m), "machine", engine.name) for m in masked]
        try:
            self.engine_calls += 1
            answered = await engine.translate([masked[i].text for i in wanted], source, target)
            if len(answered) != len(wanted):
                raise TranslationError(
                    f"returned {len(answered)} texts for {len(wanted)}", reason="bad answer"
                )
            raw = [m.text for m in masked]
            for index, text in zip(wanted, answered, strict=True):
                raw[index] = text
        except TranslationError as exc:
            # Engines' messages name the server, the status and its error text, never the texts.
            log.warning(
                "engine %s %s→%s: %s (%d texts): %s",
                engine.name,
                source,
                target,
                exc.reason,
                len(wanted),
                exc,
            )
            return [exc.reason] * len(texts)
        except Exception:  # an engine plugin must not sink a broadcast
            log.exception("engine %s %s→%s: crashed (%d texts)", engine.name, source, target, len(wanted))
            return ["failed"] * len(texts)
        out: list[Translated | str] = []
        for text, m in zip(raw, masked, strict=True):
            try:
                out.append(Translated(placeholders.unmask(text, m), "machine", engine.name))
            except TranslationError as exc:
                log.warning("engine %s %s→%s: %s: %s", engine.name, source, target, exc.reason, exc)
                out.append(exc.reason)
        return out

    # -- memory ---------------------------------------------------------------------------
    async def _lookup(
        self, source: str, target: str, keys: list[str], outer: AsyncSession | None
    ) -> dict[str, TranslationMemoryEntry]:
        if not keys:
            return {}
        found: dict[str, TranslationMemoryEntry] = {}
        async with _session(self.db, outer) as session:
            for start in range(0, len(keys), 500):
                rows = await session.scalars(
                    select(TranslationMemoryEntry).where(
                        TranslationMemoryEntry.source_language == source,
                        TranslationMemoryEntry.target_language.in_(fallback_chain(target)),
                        TranslationMemoryEntry.source_key.in_(keys[start : start + 500]),
                    )
                )
                for row in rows:
                    best = found.get(row.source_key)
                    if best is None or _rank(row, target) > _rank(best, target):
                        found[row.source_key] = row
            if found:
                await session.execute(
                    update(TranslationMemoryEntry)
                    .where(TranslationMemoryEntry.id.in_([r.id for r in found.values()]))
                    .values(hits=TranslationMemoryEntry.hits + 1)
                )
        return found

    async def _store(
        self, source: str, target: str, items: list[tuple[str, Translated]], outer: AsyncSession | None
    ) -> None:
        rows = [
            {
                "source_language": source,
                "target_language": target,
                "source_key": source_key(text),
                "source_text": normalize_text(text),
                "translated_text": result.text,
                "origin": "machine",
                "engine": result.engine,
                "hits": 0,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
            for text, result in items
        ]
        async with _session(self.db, outer) as session:
            # Another process may have stored the same string meanwhile: keep its entry rather
            # than fail the caller's whole transaction (a broadcast) on the unique key.
            if self.db.engine.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert
            else:
                from sqlalchemy.dialects.sqlite import insert
            await session.execute(insert(TranslationMemoryEntry).values(rows).on_conflict_do_nothing())

    async def add_reviewed(self, source: str, target: str, pairs: Sequence[tuple[str, str]]) -> int:
        """Store human-reviewed translations; they win over machine ones from now on."""
        count = 0
        async with self.db.session() as session:
            for text, translation in pairs:
                key = source_key(text)
                existing = await session.scalar(
                    select(TranslationMemoryEntry).where(
                        TranslationMemoryEntry.source_language == source,
                        TranslationMemoryEntry.target_language == target,
                        TranslationMemoryEntry.source_key == key,
                    )
                )
                if existing is None:
                    session.add(
                        TranslationMemoryEntry(
                            source_language=source,
                            target_language=target,
                            source_key=key,
                            source_text=normalize_text(text),
                            translated_text=translation,
                            origin="reviewed",
                        )
                    )
                else:
                    existing.translated_text = translation
                    existing.origin = "reviewed"
                    existing.updated_at = utcnow()
                count += 1
            await session.commit()
        return count

    async def machine_entries(self, target: str) -> list[TranslationMemoryEntry]:
        """Machine translations into ``target``, for human review."""
        async with self.db.session() as session:
            rows = await session.scalars(
                select(TranslationMemoryEntry)
                .where(
                    TranslationMemoryEntry.target_language == target,
                    TranslationMemoryEntry.origin == "machine",
                )
                .order_by(TranslationMemoryEntry.id)
            )
            return list(rows)

    # -- counters -------------------------------------------------------------------------
    def count(self, language: str, origin: str, n: int = 1) -> None:
        """Count texts of one origin read in ``language`` (e.g. reviewed catalog text)."""
        self._pending_stats[(language, origin)] += n

    async def flush_stats(self, min_interval: float = 0.0) -> None:
        """Write pending counters (and engine totals) to the database.

        With ``min_interval``, skip the write when the last one was more recent than that
        (hot paths such as replies call it often; shutdown flushes whatever is left).
        """
        now = time.monotonic()
        if min_interval and now - self._last_flush < min_interval:
            return
        self._last_flush = now
        pending = dict(self._pending_stats)
        for name, value in (
            ("engine_calls", self.engine_calls),
            ("hits", self.hits),
            ("misses", self.misses),
        ):
            pending[("*", name)] = value
        self._pending_stats.clear()
        self.engine_calls = self.hits = self.misses = 0
        pending = {k: v for k, v in pending.items() if v}
        if not pending:
            return
        async with self.db.session() as session:
            for (language, counter), value in pending.items():
                result = await session.execute(
                    update(TranslationStat)
                    .where(TranslationStat.language == language, TranslationStat.counter == counter)
                    .values(value=TranslationStat.value + value)
                )
                if result.rowcount == 0:  # type: ignore[attr-defined]
                    session.add(TranslationStat(language=language, counter=counter, value=value))
            await session.commit()

    async def status(self) -> dict[str, Any]:
        """The ``translate status --json`` shape."""
        await self.flush_stats()
        async with self.db.session() as session:
            from sqlalchemy import func

            entries = await session.scalar(select(func.count(TranslationMemoryEntry.id)))
            stats = list(await session.scalars(select(TranslationStat)))
        totals = {s.counter: s.value for s in stats if s.language == "*"}
        by_language: dict[str, dict[str, int]] = {}
        for stat in stats:
            if stat.language == "*" or stat.counter not in ORIGINS:
                continue
            by_language.setdefault(stat.language, dict.fromkeys(ORIGINS, 0))[stat.counter] = stat.value
        return {
            "memory_entries": entries or 0,
            "engine_calls": totals.get("engine_calls", 0),
            "hits": totals.get("hits", 0),
            "misses": totals.get("misses", 0),
            "by_language": dict(sorted(by_language.items())),
        }


@asynccontextmanager
async def _session(db: Database, outer: AsyncSession | None) -> AsyncIterator[AsyncSession]:
    """The caller's session (committed by the caller), or a new one committed on success."""
    if outer is not None:
        yield outer
        return
    async with db.session() as session:
        yield session
        await session.commit()


def _rank(entry: TranslationMemoryEntry, target: str) -> tuple[int, int]:
    return (1 if entry.origin == "reviewed" else 0, 1 if entry.target_language == target else 0)


def _same_language(source: str, target: str) -> bool:
    return source.split("-")[0].lower() == target.split("-")[0].lower()


def _can(engine: TranslationEngine, source: str, target: str) -> bool:
    try:
        return any(engine.can_translate(source, t) for t in fallback_chain(target))
    except Exception:  # a broken engine is just not capable
        log.exception("engine %s failed to list its languages", engine.name)
        return False
