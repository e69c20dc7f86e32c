"""APScheduler with a persistent job store in the gateway's own database.

Jobs survive a restart; one missed while the gateway was down runs late within
``scheduler.misfire_grace_seconds`` rather than never; ``coalesce`` and ``max_instances=1``
keep a job from running twice. Commands that only *add* jobs (``broadcast send`` with
reminders) open the store with a paused scheduler, so only ``gateway serve`` ever runs jobs.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from gateway.domain.events import EventSpec, parse_duration
from gateway.domain.surveys import SurveySpec
from gateway.storage.db import sync_url
from gateway.storage.models import utcnow

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = [
    "cancel_jobs",
    "make_scheduler",
    "schedule_event_reminders",
    "schedule_job",
    "schedule_survey_jobs",
]

log = logging.getLogger("gateway.scheduler")
JOB_TABLE = "scheduler_jobs"


def make_scheduler(gw: Gateway) -> AsyncIOScheduler:
    """A scheduler over the gateway database's job table (not started)."""
    store = SQLAlchemyJobStore(url=sync_url(gw.config.database_url), tablename=JOB_TABLE)
    return AsyncIOScheduler(
        jobstores={"default": store, "volatile": MemoryJobStore()},
        job_defaults={
            "misfire_grace_time": gw.config.scheduler.misfire_grace_seconds,
            "coalesce": True,
            "max_instances": 1,
        },
        timezone=UTC,
    )


async def schedule_job(
    gw: Gateway, func: str, run_at: datetime, args: list[Any], job_id: str
) -> dict[str, Any]:
    """Store a one-off job (replacing one with the same id)."""
    running = getattr(gw, "scheduler", None)

    def add(scheduler: AsyncIOScheduler) -> None:
        scheduler.add_job(func, "date", run_date=run_at, args=args, id=job_id, replace_existing=True)

    if running is not None and running.running:
        add(running)
    else:
        scheduler = make_scheduler(gw)
        # Started paused: the job is written to the store, and nothing runs in this process.
        scheduler.start(paused=True)
        try:
            add(scheduler)
        finally:
            scheduler.shutdown(wait=False)
    return {"job_id": job_id, "run_at": run_at.isoformat()}


async def cancel_jobs(gw: Gateway, prefix: str) -> list[str]:
    """Remove every stored job whose id starts with ``prefix`` (a cancelled broadcast's
    reminders); returns the ids removed."""
    running = getattr(gw, "scheduler", None)

    def remove(scheduler: AsyncIOScheduler) -> list[str]:
        removed = []
        for job in scheduler.get_jobs():
            if job.id.startswith(prefix):
                scheduler.remove_job(job.id)
                removed.append(job.id)
        return removed

    if running is not None and running.running:
        return remove(running)
    scheduler = make_scheduler(gw)
    scheduler.start(paused=True)
    try:
        return remove(scheduler)
    finally:
        scheduler.shutdown(wait=False)


async def schedule_event_reminders(
    gw: Gateway, event_id: int, spec: EventSpec, not_before: datetime | None = None
) -> list[dict[str, Any]]:
    """One job per reminder offset still in the future — and after ``not_before`` (the
    invitation's send time): a reminder never goes before the invitation, or into the past."""
    planned = []
    now = max(utcnow(), not_before or utcnow())
    for offset in spec.reminders:
        run_at = spec.start.astimezone(UTC) - parse_duration(offset)
        if run_at <= now:
            log.info("event %s: reminder %s before start is already past; skipped", spec.id, offset)
            continue
        job = await schedule_job(
            gw,
            "gateway.scheduling.jobs:event_reminder",
            run_at,
            [event_id, offset],
            f"event-{event_id}-reminder-{offset}",
        )
        planned.append({"offset": offset, **job})
    return planned


async def schedule_survey_jobs(
    gw: Gateway, survey_id: int, spec: SurveySpec, sent_at: datetime
) -> list[dict[str, Any]]:
    """The non-respondent reminder and the close, when the survey asks for them."""
    jobs = []
    if spec.remind_unanswered_after:
        run_at = sent_at + parse_duration(spec.remind_unanswered_after)
        jobs.append(
            await schedule_job(
                gw,
                "gateway.scheduling.jobs:survey_reminder",
                run_at,
                [survey_id],
                f"survey-{survey_id}-reminder",
            )
        )
    if spec.close_at:
        close_at = spec.close_at if spec.close_at.tzinfo else spec.close_at.replace(tzinfo=UTC)
        jobs.append(
            await schedule_job(
                gw, "gateway.scheduling.jobs:close_survey", close_at, [survey_id], f"survey-{survey_id}-close"
            )
        )
    return jobs


async def start_scheduler(gw: Gateway) -> AsyncIOScheduler:
    """Start the job-running scheduler of this process (``gateway serve``)."""
    from gateway.scheduling.jobs import set_current_gateway

    set_current_gateway(gw)
    scheduler = make_scheduler(gw)
    scheduler.start()
    # Jobs added by other processes (CLI commands) are noticed at the next wake-up.
    scheduler.add_job(_noop, "interval", seconds=30, id="wakeup", replace_existing=True, jobstore="volatile")
    gw.scheduler = scheduler  # type: ignore[attr-defined]
    return scheduler


def _noop() -> None:
    """Wakes the scheduler so it re-reads the job store."""
