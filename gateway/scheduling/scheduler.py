"""Timed jobs (event reminders, survey reminders and closes): the gateway's own
``scheduled_jobs`` table is the source of truth; APScheduler runs them on time in the one
process that leads (:mod:`gateway.scheduling.leader`).

Writing a job is a row in the caller's transaction (:func:`stage_job`): a broadcast or survey
and its jobs are committed together, or not at all, and nothing blocks the event loop or takes
a second SQLite connection (APScheduler's own SQLAlchemy job store did both: a survey answered
500 on ``database is locked`` after its messages were queued, and its reminder was lost).

:class:`JobRunner` feeds an in-memory APScheduler from the table: at start, when a job is
written in this process (after its commit), and every :data:`RECONCILE_SECONDS` for jobs
written by other processes (CLI commands). A job that comes due is claimed
(``pending`` → ``running``, one conditional ``UPDATE``, so it starts once) and marked ``done``
when it has run; one that raised is tried again later (:data:`MAX_ATTEMPTS`), then ``failed``.
A job whose time passed while no gateway ran still runs once, late, within
``scheduler.misfire_grace_seconds``; beyond that it is marked ``missed`` and logged. A job left
``running`` by a process that died is run again by the next leader: the job functions are
idempotent (reminders carry an idempotency key derived from the job id, closing is a no-op the
second time).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.util import ref_to_obj
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.domain.events import EventSpec, parse_duration
from gateway.domain.surveys import SurveySpec
from gateway.storage.models import ScheduledJob, utcnow

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = [
    "JOB_TABLE",
    "JobRunner",
    "cancel_jobs",
    "schedule_job",
    "stage_event_reminders",
    "stage_job",
    "stage_survey_jobs",
    "start_scheduler",
]

log = logging.getLogger("gateway.scheduler")
JOB_TABLE = ScheduledJob.__tablename__
#: Seconds between looks at the table for jobs other processes wrote.
RECONCILE_SECONDS = 10.0
#: Runs of a job that raises before it is marked failed; the waits between them grow.
MAX_ATTEMPTS = 4
RETRY_SECONDS = 60.0
PENDING, RUNNING, DONE, FAILED, MISSED = "pending", "running", "done", "failed", "missed"
CANCELLED = "cancelled"


# -- writing jobs (in the caller's transaction) ---------------------------------------------------
async def stage_job(
    session: AsyncSession, func: str, run_at: datetime, args: list[Any], job_id: str
) -> dict[str, Any]:
    """Write a one-off job in ``session`` (replacing one with the same id, whatever its state);
    it exists once the caller commits, and the running scheduler of this process hears of it
    then."""
    if run_at.tzinfo is None:
        run_at = run_at.replace(tzinfo=UTC)
    row = await session.get(ScheduledJob, job_id)
    if row is None:
        session.add(ScheduledJob(id=job_id, func=func, args=list(args), run_at=run_at, status=PENDING))
    elif (row.func, list(row.args or []), row.run_at) != (func, list(args), run_at):
        row.func, row.args, row.run_at, row.status = func, list(args), run_at, PENDING
        row.attempts, row.error, row.started_at, row.finished_at = 0, None, None, None
    # else: the same job again (a retried request): it keeps its state, done stays done.
    runner = _local_runner(session)
    if runner is not None:
        event.listen(session.sync_session, "after_commit", lambda _s: runner.wake(), once=True)
    return {"job_id": job_id, "run_at": run_at.isoformat()}


def _local_runner(session: AsyncSession) -> JobRunner | None:
    bind = session.bind
    return _RUNNERS.get(id(getattr(bind, "sync_engine", bind))) if bind is not None else None


async def schedule_job(
    gw: Gateway, func: str, run_at: datetime, args: list[Any], job_id: str
) -> dict[str, Any]:
    """Store a one-off job in a transaction of its own."""
    async with gw.db.session() as session:
        job = await stage_job(session, func, run_at, args, job_id)
        await session.commit()
    return job


async def cancel_jobs(gw: Gateway, prefix: str) -> list[str]:
    """Cancel every pending job whose id starts with ``prefix`` (a cancelled broadcast's
    reminders): they stay in the table, marked ``cancelled``, and never run; returns their ids."""
    async with gw.db.session() as session:
        ids = list(
            await session.scalars(
                select(ScheduledJob.id).where(
                    ScheduledJob.id.startswith(prefix, autoescape=True), ScheduledJob.status == PENDING
                )
            )
        )
        if ids:
            await session.execute(
                update(ScheduledJob)
                .where(ScheduledJob.id.in_(ids), ScheduledJob.status == PENDING)
                .values(status=CANCELLED, finished_at=utcnow())
            )
            runner = _local_runner(session)
            if runner is not None:
                event.listen(session.sync_session, "after_commit", lambda _s: runner.wake(), once=True)
        await session.commit()
    return ids


async def stage_event_reminders(
    session: AsyncSession, event_id: int, spec: EventSpec, not_before: datetime | None = None
) -> list[dict[str, Any]]:
    """One job per reminder offset still in the future — and after ``not_before`` (the
    invitation's send time): a reminder never goes before the invitation, or into the past
    (in ``session``)."""
    planned = []
    now = max(utcnow(), not_before or utcnow())
    for offset in spec.reminders:
        run_at = spec.start.astimezone(UTC) - parse_duration(offset)
        if run_at <= now:
            log.info("event %s: reminder %s before start is already past; skipped", spec.id, offset)
            continue
        job = await stage_job(
            session,
            "gateway.scheduling.jobs:event_reminder",
            run_at,
            [event_id, offset],
            f"event-{event_id}-reminder-{offset}",
        )
        planned.append({"offset": offset, **job})
    return planned


async def stage_survey_jobs(
    session: AsyncSession, survey_id: int, spec: SurveySpec, sent_at: datetime
) -> list[dict[str, Any]]:
    """The non-respondent reminder and the close, when the survey asks for them (in ``session``)."""
    jobs = []
    if spec.remind_unanswered_after:
        run_at = sent_at + parse_duration(spec.remind_unanswered_after)
        jobs.append(
            await stage_job(
                session,
                "gateway.scheduling.jobs:survey_reminder",
                run_at,
                [survey_id],
                f"survey-{survey_id}-reminder",
            )
        )
    if spec.close_at:
        close_at = spec.close_at if spec.close_at.tzinfo else spec.close_at.replace(tzinfo=UTC)
        jobs.append(
            await stage_job(
                session,
                "gateway.scheduling.jobs:close_survey",
                close_at,
                [survey_id],
                f"survey-{survey_id}-close",
            )
        )
    return jobs


# -- running jobs (the leader) ----------------------------------------------------------------------
#: The runner of this process by database engine (so a commit on that engine can wake it).
_RUNNERS: dict[int, JobRunner] = {}


class JobRunner:
    """Runs the jobs of ``scheduled_jobs`` on an in-memory APScheduler (see the module doc)."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.grace = gw.config.scheduler.misfire_grace_seconds
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": MemoryJobStore()},
            job_defaults={"misfire_grace_time": self.grace, "coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[Any]] = set()

    @property
    def running(self) -> bool:
        """Whether the scheduler is started."""
        return bool(self.scheduler.running)

    async def start(self) -> None:
        """Start APScheduler, take over jobs a dead leader left running, load the table."""
        self.scheduler.start()
        _RUNNERS[id(self.gw.db.engine.sync_engine)] = self
        async with self.gw.db.session() as session:
            interrupted = await session.execute(
                update(ScheduledJob).where(ScheduledJob.status == RUNNING).values(status=PENDING)
            )
            await session.commit()
        count = int(interrupted.rowcount or 0)  # type: ignore[attr-defined]
        if count:
            log.warning("%d job(s) interrupted by a stop will run again", count)
        await self.reconcile()
        self._loop_task = asyncio.create_task(self._reconcile_loop(), name="scheduler-reconcile")

    def shutdown(self) -> None:
        """Stop running jobs (jobs in progress finish on their own)."""
        self._stop.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
        _RUNNERS.pop(id(self.gw.db.engine.sync_engine), None)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def wake(self) -> None:
        """Something was written to the table: look at it soon."""
        self._wake.set()

    async def _reconcile_loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=RECONCILE_SECONDS)
            self._wake.clear()
            try:
                await self.reconcile()
            except Exception:
                log.exception("reading scheduled jobs failed; trying again")

    async def reconcile(self) -> None:
        """Make APScheduler's jobs the table's pending ones (run times included); mark the
        ones past the grace time ``missed``."""
        now = utcnow()
        async with self.gw.db.session() as session:
            rows = list(
                await session.execute(
                    select(ScheduledJob.id, ScheduledJob.run_at).where(ScheduledJob.status == PENDING)
                )
            )
            missed = [job_id for job_id, run_at in rows if run_at < now - timedelta(seconds=self.grace)]
            if missed:
                await session.execute(
                    update(ScheduledJob)
                    .where(ScheduledJob.id.in_(missed), ScheduledJob.status == PENDING)
                    .values(status=MISSED, finished_at=now, error="missed by more than the grace time")
                )
                await session.commit()
        for job_id in missed:
            log.warning(
                "job %s missed: its time passed more than %s s ago while no gateway ran", job_id, self.grace
            )
        wanted = {job_id: run_at for job_id, run_at in rows if job_id not in missed}
        for job in self.scheduler.get_jobs():
            if job.id not in wanted:
                job.remove()
        for job_id, run_at in wanted.items():
            current = self.scheduler.get_job(job_id)
            if current is not None and current.next_run_time == run_at:
                continue
            self.scheduler.add_job(
                self._run, "date", run_date=run_at, args=[job_id], id=job_id, replace_existing=True
            )

    async def _run(self, job_id: str) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            await run_job(self.gw, job_id)
        finally:
            if task is not None:
                self._running.discard(task)


async def run_job(gw: Gateway, job_id: str) -> Any:
    """Claim one due job, run it, record the outcome; None when it was not pending."""
    from gateway.scheduling.jobs import CURRENT_JOB_ID

    async with gw.db.session() as session:
        claimed = await session.execute(
            update(ScheduledJob)
            .where(ScheduledJob.id == job_id, ScheduledJob.status == PENDING)
            .values(status=RUNNING, started_at=utcnow(), attempts=ScheduledJob.attempts + 1)
            .returning(ScheduledJob.func, ScheduledJob.args, ScheduledJob.attempts)
        )
        row = claimed.first()
        await session.commit()
    if row is None:
        return None
    func_ref, args, attempts = row
    token = CURRENT_JOB_ID.set(job_id)
    try:
        func = ref_to_obj(func_ref)
        result = func(*(args or []))
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        await _record_failure(gw, job_id, attempts, exc)
        return None
    finally:
        CURRENT_JOB_ID.reset(token)
    async with gw.db.session() as session:
        await session.execute(
            update(ScheduledJob)
            .where(ScheduledJob.id == job_id)
            .values(status=DONE, finished_at=utcnow(), error=None)
        )
        await session.commit()
    return result


async def _record_failure(gw: Gateway, job_id: str, attempts: int, exc: Exception) -> None:
    error = f"{type(exc).__name__}: {exc}"[:1000]
    if attempts >= MAX_ATTEMPTS:
        values: dict[str, Any] = {"status": FAILED, "finished_at": utcnow(), "error": error}
        log.error("job %s failed %d times; giving up", job_id, attempts, exc_info=exc)
    else:
        retry_at = utcnow() + timedelta(seconds=RETRY_SECONDS * 2 ** (attempts - 1))
        values = {"status": PENDING, "run_at": retry_at, "error": error}
        log.warning("job %s failed (attempt %d); runs again at %s", job_id, attempts, retry_at, exc_info=exc)
    try:
        async with gw.db.session() as session:
            await session.execute(update(ScheduledJob).where(ScheduledJob.id == job_id).values(**values))
            await session.commit()
    except Exception:
        log.exception("job %s: could not record its failure; it runs again after a restart", job_id)
    runner = gw.scheduler
    if runner is not None:
        runner.wake()


async def start_scheduler(gw: Gateway) -> JobRunner:
    """Start the job-running scheduler of this process (the leader)."""
    from gateway.scheduling.jobs import set_current_gateway

    set_current_gateway(gw)
    runner = JobRunner(gw)
    await runner.start()
    gw.scheduler = runner
    return runner
