"""Creation is atomic and the reminder is never lost: a survey (or an invitation) and its
scheduled jobs are committed together with the broadcast, or not at all.

``POST /api/surveys`` on an SQLite file another program holds locked answers a clean 503 and
leaves nothing behind (no survey, no broadcast, no queued message, no job); the retry creates it
all once, and the running scheduler picks the reminder up from the job table and runs it. A job
left ``running`` by a process that died runs again after a restart without sending twice.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, update

from gateway.families import import_families
from gateway.resources import SHIPPED_EXAMPLES
from gateway.scheduling.scheduler import start_scheduler
from gateway.staff import add_staff
from gateway.storage.models import (
    Broadcast,
    OutboxMessage,
    ScheduledJob,
    Survey,
    SurveySession,
    utcnow,
)
from gateway.testing.harness import open_gateway, write_config
from gateway.web.app import create_app

SURVEY = {
    "survey": {
        "id": "bus-routes",
        "title": "Bus routes",
        "remind_unanswered_after": "1m",
        "questions": [
            {
                "id": "rides_bus",
                "type": "choice",
                "text": "Does your child ride the school bus?",
                "choices": [{"value": "yes", "label": "Yes"}, {"value": "no", "label": "No"}],
            }
        ],
    },
    "audience": "school:Lincoln",
}


async def _counts(gw: Any) -> dict[str, int]:
    async with gw.db.session() as session:
        return {
            model.__tablename__: int(await session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Survey, Broadcast, OutboxMessage, SurveySession, ScheduledJob)
        }


async def _until(check: Any, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_survey_under_a_locked_database_leaves_nothing_and_its_reminder_is_never_lost(
    tmp_path: Path,
) -> None:
    db_file = tmp_path / "db" / "gateway.db"
    config = write_config(
        tmp_path / "gw",
        f"sqlite+aiosqlite:///{db_file}",
        database={"busy_timeout_seconds": 1},
        scheduler={"enabled": True},
    )
    async with open_gateway(config) as gw:
        await import_families(gw, SHIPPED_EXAMPLES / "families.csv", progress=False)
        token = (await add_staff(gw, "admin@district.example", "admin", [], token=True))["token"]
        headers = {"Authorization": f"Bearer {token}"}
        runner = await start_scheduler(gw)
        before = await _counts(gw)
        async with TestClient(TestServer(create_app(gw))) as client:
            blocker = sqlite3.connect(db_file, isolation_level=None, timeout=0)
            blocker.execute("BEGIN EXCLUSIVE")  # another program writes
            try:
                refused = await client.post("/api/surveys", json=SURVEY, headers=headers)
                assert refused.status == 503, await refused.text()
                body = await refused.json()
                assert "nothing was saved or sent" in body["error"]
                assert refused.headers["Retry-After"]
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            assert await _counts(gw) == before  # no half-sent survey, no orphan job

            created = await client.post("/api/surveys", json=SURVEY, headers=headers)
            assert created.status in (200, 201), await created.text()
            summary = await created.json()
            assert summary["messages"] > 0
        counts = await _counts(gw)
        assert counts["surveys"] == before["surveys"] + 1
        assert counts["outbox_messages"] == before["outbox_messages"] + summary["messages"]
        async with gw.db.session() as session:
            survey_pk = await session.scalar(select(Survey.id).where(Survey.external_id == "bus-routes"))
            job = await session.get(ScheduledJob, f"survey-{survey_pk}-reminder")
        assert job is not None and job.status == "pending"
        assert timedelta(seconds=50) < job.run_at - utcnow() <= timedelta(minutes=1)

        # The running scheduler heard of it at the commit, with its time.
        async def registered() -> bool:
            found = runner.scheduler.get_job(job.id)
            return found is not None and found.next_run_time == job.run_at

        await _until(registered, "the scheduler did not pick the job up from the table")

        # Its minute passes: it runs once, reminding those who have not answered.
        async with gw.db.session() as session:
            await session.execute(
                update(ScheduledJob).where(ScheduledJob.id == job.id).values(run_at=utcnow())
            )
            await session.commit()
        runner.wake()

        async def done() -> bool:
            async with gw.db.session() as session:
                return (await session.get(ScheduledJob, job.id)).status == "done"  # type: ignore[union-attr]

        await _until(done, "the reminder job did not run")
        async with gw.db.session() as session:
            query = select(Broadcast).where(Broadcast.kind == "survey-reminder")
            reminders = list(await session.scalars(query))
        assert len(reminders) == 1 and reminders[0].idempotency_key == f"job:{job.id}"
        runner.shutdown()


async def test_a_job_interrupted_by_a_crash_runs_again_without_sending_twice(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gw", scheduler={"enabled": True})
    async with open_gateway(config) as gw:
        await import_families(gw, SHIPPED_EXAMPLES / "families.csv", progress=False)
        from gateway.broadcasts import send_survey
        from gateway.domain.surveys import SurveySpec

        spec = SurveySpec.model_validate(SURVEY["survey"])
        await send_survey(gw, spec=spec, audience="school:Lincoln")
        async with gw.db.session() as session:
            job = (await session.scalars(select(ScheduledJob))).one()
        for _ in range(2):
            # Due now; the first time the process "dies" after the reminder was committed
            # (simulated by putting the job back to running), then a new leader starts.
            async with gw.db.session() as session:
                await session.execute(
                    update(ScheduledJob)
                    .where(ScheduledJob.id == job.id)
                    .values(run_at=utcnow(), status="running")
                )
                await session.commit()
            runner = await start_scheduler(gw)

            async def done() -> bool:
                async with gw.db.session() as session:
                    return (await session.get(ScheduledJob, job.id)).status == "done"  # type: ignore[union-attr]

            try:
                await _until(done, "the interrupted job did not run again")
            finally:
                runner.shutdown()
        async with gw.db.session() as session:
            reminders = await session.scalar(
                select(func.count()).select_from(Broadcast).where(Broadcast.kind == "survey-reminder")
            )
        assert reminders == 1
