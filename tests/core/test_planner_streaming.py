"""The planner streams its audience: every query's parameter count is bounded by the chunk
sizes, not by the number of families (a district-sized broadcast with an RSVP once failed on
SQLite with "too many SQL variables"), and chunking loses or repeats nobody."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from gateway.broadcasts import send_broadcast
from gateway.domain.events import upcoming_event_file
from gateway.outbox import planner
from gateway.resources import SHIPPED_EXAMPLES
from gateway.storage.models import Endpoint, Family, Guardian, OutboxMessage, Student, SurveySession
from gateway.testing.harness import open_gateway, write_config

EVENT = SHIPPED_EXAMPLES / "reading-workshop.yaml"


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Chunks far smaller than the audiences below."""
    monkeypatch.setattr(planner, "FAMILY_CHUNK", 5)
    monkeypatch.setattr(planner, "INSERT_CHUNK", 4)
    monkeypatch.setattr(planner, "LISTED_IN_QUERY", 3)
    yield


async def _seed(gw: Any, count: int) -> None:
    """``count`` families in Lincoln grade 6, one guardian (two in every third family), each
    with a phone."""
    async with gw.db.session() as session:
        for i in range(count):
            family = Family(external_id=f"S{i:04d}")
            session.add(family)
            await session.flush()
            session.add(
                Student(
                    family_id=family.id,
                    name=f"Kid {i}",
                    name_key=f"kid {i}",
                    school="Lincoln",
                    grade="6",
                    tags=[],
                )
            )
            for g in range(2 if i % 3 == 0 else 1):
                guardian = Guardian(
                    family_id=family.id,
                    name=f"Parent {i}-{g}",
                    name_key=f"parent {i}-{g}",
                    language=("en", "es", "so")[i % 3],
                    timezone="America/Chicago",
                )
                session.add(guardian)
                await session.flush()
                session.add(
                    Endpoint(guardian_id=guardian.id, kind="phone", address=f"+1816555{i:02d}{g:02d}")
                )
        await session.commit()


class ParameterCounter:
    """The largest number of bound parameters any one statement (or any one row of an
    executemany) carried."""

    def __init__(self) -> None:
        self.largest = 0
        self.statements = 0

    def __call__(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        sets = parameters if executemany else [parameters]
        for params in sets:
            self.largest = max(self.largest, len(params or ()))
        self.statements += 1


async def _broadcast(tmp_path: Path, db_url: str | None, families: int, audience: str = "") -> dict[str, Any]:
    """An invitation with an RSVP to ``families`` families; parameters counted while planning."""
    config = write_config(tmp_path / f"gw{families}", db_url)
    event_file = upcoming_event_file(EVENT, tmp_path / "event.yaml")
    async with open_gateway(config) as gw:
        await _seed(gw, families)
        counter = ParameterCounter()
        event.listen(gw.db.engine.sync_engine, "before_cursor_execute", counter)
        try:
            summary = await send_broadcast(
                gw, "workshop_invitation", event_file=event_file, audience=audience
            )
        finally:
            event.remove(gw.db.engine.sync_engine, "before_cursor_execute", counter)
        async with gw.db.session() as session:
            outbox = await session.scalar(select(func.count()).select_from(OutboxMessage))
            distinct = await session.scalar(select(func.count(func.distinct(OutboxMessage.guardian_id))))
            sessions = await session.scalar(select(func.count()).select_from(SurveySession))
    return {
        "summary": summary,
        "largest": counter.largest,
        "outbox": outbox,
        "distinct": distinct,
        "sessions": sessions,
    }


async def test_parameter_count_does_not_grow_with_the_audience(tmp_path: Path, small_chunks: None) -> None:
    small = await _broadcast(tmp_path / "small", None, 12)
    large = await _broadcast(tmp_path / "large", None, 40)
    # 12 families: 16 guardians; 40 families: 54 guardians. Every one planned once, with a session.
    assert (small["outbox"], small["distinct"], small["sessions"]) == (16, 16, 16)
    assert (large["outbox"], large["distinct"], large["sessions"]) == (54, 54, 54)
    assert large["summary"]["families"] == 40
    # The widest statement is the same at both sizes: bounded by the chunks, not the audience.
    assert large["largest"] == small["largest"]
    assert large["largest"] < 54


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_long_family_list_is_matched_in_chunks(
    tmp_path: Path, db_url: str, small_chunks: None
) -> None:
    """``family:`` with more families than go into a query: matched chunk by chunk, still
    bounded, and only those families get the message."""
    wanted = [f"S{i:04d}" for i in range(1, 30, 3)]  # 10 families, more than LISTED_IN_QUERY
    result = await _broadcast(tmp_path, db_url, 30, audience="family:" + ",".join(wanted))
    assert result["summary"]["families"] == 10
    # S0001, S0004, ...: i % 3 == 1, one guardian each.
    assert (result["outbox"], result["sessions"]) == (10, 10)
    assert result["largest"] < 30


async def test_a_second_invitation_reopens_sessions_in_chunks(tmp_path: Path, small_chunks: None) -> None:
    """Sending the invitation again keeps one session per guardian (open ones updated)."""
    config = write_config(tmp_path / "gw")
    event_file = upcoming_event_file(EVENT, tmp_path / "event.yaml")
    async with open_gateway(config) as gw:
        await _seed(gw, 9)
        for _ in range(2):
            await send_broadcast(gw, "workshop_invitation", event_file=event_file, audience="")
        async with gw.db.session() as session:
            rows = list(
                await session.execute(
                    select(SurveySession.guardian_id, func.count()).group_by(SurveySession.guardian_id)
                )
            )
    assert len(rows) == 12 and all(count == 1 for _, count in rows)
