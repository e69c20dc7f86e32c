"""Upgrading a database whose reminders still sit in APScheduler's own job table (``scheduler_jobs``,
pickled, as the gateway wrote them before the ``scheduled_jobs`` table): the pending ones move
over with their run times, and the old table goes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import create_engine, inspect, select
from sqlalchemy.orm import Session

from gateway.storage.db import sync_url
from gateway.storage.migrate import upgrade
from gateway.storage.models import ScheduledJob


def test_pending_apscheduler_jobs_move_to_the_job_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    upgrade(url, "0004")
    run_at = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=sync_url(url), tablename="scheduler_jobs")},
        timezone=UTC,
    )
    scheduler.start(paused=True)
    func = "gateway.scheduling.jobs:event_reminder"
    scheduler.add_job(func, "date", run_date=run_at, args=[7, "3d"], id="event-7-reminder-3d")
    scheduler.shutdown(wait=False)

    upgrade(url)
    engine = create_engine(url)
    try:
        assert "scheduler_jobs" not in inspect(engine).get_table_names()
        with Session(engine) as session:
            [job] = session.scalars(select(ScheduledJob)).all()
        assert (job.id, job.func, job.args, job.status) == (
            "event-7-reminder-3d",
            "gateway.scheduling.jobs:event_reminder",
            [7, "3d"],
            "pending",
        )
        assert job.run_at == run_at
    finally:
        engine.dispose()
