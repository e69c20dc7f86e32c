"""Families repository: idempotent upsert from parsed CSV records, listings, lookups."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from gateway.domain.family_csv import FamilyRecord, name_key
from gateway.domain.search_text import family_search_key, fold
from gateway.storage.models import Endpoint, EndpointConsent, Family, Guardian, Student, utcnow

__all__ = ["FamilyRepository", "UpsertCounts", "family_as_dict", "search_key_of"]

CHUNK = 500


@dataclass
class UpsertCounts:
    """What an import changed."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    students: int = 0


class FamilyRepository:
    """Reads and writes households."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(
        self,
        records: Sequence[FamilyRecord],
        progress: Callable[[int], None] | None = None,
    ) -> UpsertCounts:
        """Create or update families; the file is authoritative for what it mentions."""
        counts = UpsertCounts()
        for start in range(0, len(records), CHUNK):
            chunk = records[start : start + CHUNK]
            existing = await self._load([r.family_id for r in chunk])
            touched: list[Family] = []
            for record in chunk:
                family = existing.get(record.family_id)
                if family is None:
                    family = Family(external_id=record.family_id, guardians=[], students=[])
                    self.session.add(family)
                    _merge(family, record)
                    existing[record.family_id] = family
                    counts.created += 1
                elif _merge(family, record):
                    family.updated_at = utcnow()
                    counts.updated += 1
                else:
                    counts.unchanged += 1
                key = search_key_of(family)
                if family.search_key != key:
                    family.search_key = key
                counts.students += len(record.students)
                touched.append(family)
            new = [e for family in touched for g in family.guardians for e in g.endpoints if e.id is None]
            await self.session.flush()
            await self._inherit_consent(new)
            if progress:
                progress(len(chunk))
        return counts

    async def _inherit_consent(self, endpoints: Sequence[Endpoint]) -> None:
        """New ``endpoints`` (flushed) of an address that opted out, or proved not to work, under
        another guardian or family take that state, everywhere and per channel: consent belongs
        to the address, so a number that texted STOP is not written to again because it now
        appears in another family's row."""
        if not endpoints:
            return
        keys = {(e.kind, e.address) for e in endpoints}
        # Only endpoints with a state to pass on (a new endpoint has none yet).
        with_state = select(EndpointConsent.endpoint_id).where(
            EndpointConsent.opted_out | EndpointConsent.invalid
        )
        others = await self.session.scalars(
            select(Endpoint).where(
                Endpoint.kind.in_({kind for kind, _ in keys}),  # the (kind, address) index
                Endpoint.address.in_([address for _, address in keys]),
                Endpoint.opted_out | Endpoint.invalid | Endpoint.id.in_(with_state),
            )
        )
        known: dict[tuple[str, str], list[Endpoint]] = {}
        for other in others:
            if (other.kind, other.address) in keys:
                known.setdefault((other.kind, other.address), []).append(other)
        if not known:
            return
        consents: dict[int, list[EndpointConsent]] = {}
        rows = await self.session.scalars(
            select(EndpointConsent).where(
                EndpointConsent.endpoint_id.in_([o.id for group in known.values() for o in group]),
                EndpointConsent.opted_out | EndpointConsent.invalid,
            )
        )
        for row in rows:
            consents.setdefault(row.endpoint_id, []).append(row)
        for endpoint in endpoints:
            group = known.get((endpoint.kind, endpoint.address), [])
            for other in group:
                if other.opted_out and not endpoint.opted_out:
                    endpoint.opted_out, endpoint.opted_out_at = True, other.opted_out_at
                if other.invalid and not endpoint.invalid:
                    endpoint.invalid, endpoint.invalid_reason = True, other.invalid_reason
            taken: dict[str, EndpointConsent] = {}
            for other in group:
                for row in consents.get(other.id, []):
                    state = taken.get(row.channel)
                    if state is None:
                        state = EndpointConsent(endpoint_id=endpoint.id, channel=row.channel)
                        taken[row.channel] = state
                        self.session.add(state)
                    if row.opted_out:
                        state.opted_out, state.opted_out_at = True, row.opted_out_at
                    if row.invalid:
                        state.invalid, state.invalid_reason = True, row.invalid_reason
        await self.session.flush()

    async def _load(self, external_ids: Iterable[str]) -> dict[str, Family]:
        rows = await self.session.scalars(
            select(Family)
            .where(Family.external_id.in_(list(external_ids)))
            .options(
                selectinload(Family.guardians).selectinload(Guardian.endpoints),
                selectinload(Family.students),
            )
        )
        return {f.external_id: f for f in rows}

    async def get(self, external_id: str) -> Family | None:
        """One family with guardians, endpoints and students."""
        return (await self._load([external_id])).get(external_id)

    async def list(
        self,
        *,
        school: str | None = None,
        language: str | None = None,
        schools_scope: Sequence[str] | None = None,
        search: str | None = None,
        limit: int | None = None,
    ) -> list[Family]:
        """Families, optionally filtered by a student's school, a guardian's language, a search."""
        query = (
            select(Family)
            .options(
                selectinload(Family.guardians).selectinload(Guardian.endpoints),
                selectinload(Family.students),
            )
            .order_by(Family.external_id)
        )
        if school:
            query = query.where(Family.id.in_(select(Student.family_id).where(_ci(Student.school, school))))
        if schools_scope is not None:
            scope = [s.casefold() for s in schools_scope]
            from sqlalchemy import func

            query = query.where(
                Family.id.in_(select(Student.family_id).where(func.lower(Student.school).in_(scope)))
            )
        if language:
            lang = language.casefold()
            from sqlalchemy import func, or_

            query = query.where(
                Family.id.in_(
                    select(Guardian.family_id).where(
                        or_(
                            func.lower(Guardian.language) == lang,
                            func.lower(Guardian.language).like(f"{lang}-%"),
                        )
                    )
                )
            )
        if search and fold(search):
            query = query.where(Family.search_key.contains(fold(search), autoescape=True))
        if limit:
            query = query.limit(limit)
        return list(await self.session.scalars(query))


def search_key_of(family: Family) -> str:
    """The search key of a loaded family (its id, guardian and student names, folded)."""
    return family_search_key(
        family.external_id, [g.name for g in family.guardians] + [s.name for s in family.students]
    )


def _ci(column: Any, value: str) -> Any:
    from sqlalchemy import func

    return func.lower(column) == value.casefold()


def _merge(family: Family, record: FamilyRecord) -> bool:
    """Apply a record to a family; True when anything changed."""
    changed = False
    guardians = {g.name_key: g for g in family.guardians}
    for key, g in record.guardians.items():
        guardian = guardians.get(key)
        if guardian is None:
            guardian = Guardian(
                name=g.name,
                name_key=key,
                language=g.language,
                timezone=g.timezone,
                timezone_assumed=g.timezone_assumed,
                preferred_channel=g.preferred_channel,
                endpoints=[],
            )
            family.guardians.append(guardian)
            changed = True
        else:
            for attr, value in (
                ("name", g.name),
                ("language", g.language),
                ("timezone", g.timezone),
                ("timezone_assumed", g.timezone_assumed),
                ("preferred_channel", g.preferred_channel),
            ):
                if value is not None and getattr(guardian, attr) != value:
                    setattr(guardian, attr, value)
                    changed = True
        for kind, addresses in g.endpoints.items():
            current = [e for e in guardian.endpoints if e.kind == kind]
            for endpoint in current:
                if endpoint.address not in addresses:
                    guardian.endpoints.remove(endpoint)
                    changed = True
            known = {e.address for e in current}
            for address in addresses:
                if address not in known:
                    guardian.endpoints.append(Endpoint(kind=kind, address=address))
                    changed = True
    students = {s.name_key: s for s in family.students}
    for key, s in record.students.items():
        student = students.get(key)
        if student is None:
            family.students.append(
                Student(
                    name=s.name, name_key=name_key(s.name), school=s.school, grade=s.grade, tags=list(s.tags)
                )
            )
            changed = True
            continue
        for attr, value in (("name", s.name), ("school", s.school), ("grade", s.grade)):
            if value is not None and getattr(student, attr) != value:
                setattr(student, attr, value)
                changed = True
        if sorted(student.tags or []) != sorted(s.tags):
            student.tags = list(s.tags)
            changed = True
    return changed


def family_as_dict(
    family: Family,
    channel_for_kind: Callable[[str], str],
    extra: Mapping[int, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The ``families list --json`` shape; ``extra`` adds keys to endpoints by id (the masked
    address, the consent per channel: :func:`gateway.families.endpoint_details`)."""
    tags: list[str] = []
    for student in family.students:
        for tag in student.tags or []:
            if tag not in tags:
                tags.append(tag)
    return {
        "family_id": family.external_id,
        "guardians": [
            {
                "name": g.name,
                "language": g.language,
                "timezone": g.timezone,
                "timezone_assumed": g.timezone_assumed,
                "preferred_channel": g.preferred_channel,
                "endpoints": [
                    {
                        "channel": channel_for_kind(e.kind),
                        "kind": e.kind,
                        "address": e.address,
                        "opted_out": e.opted_out,
                        "invalid": e.invalid,
                        **(extra or {}).get(e.id, {}),
                    }
                    for e in g.endpoints
                ],
            }
            for g in family.guardians
        ],
        "students": [
            {"name": s.name, "school": s.school, "grade": s.grade, "tags": list(s.tags or [])}
            for s in family.students
        ],
        "tags": tags,
    }
