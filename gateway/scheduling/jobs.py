"""Job functions APScheduler runs. Module-level and with picklable arguments (ids, not
objects), as a persistent job store requires; they reach the running gateway through
:func:`current_gateway`."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = [
    "CURRENT_JOB_ID",
    "close_survey",
    "current_gateway",
    "event_reminder",
    "set_current_gateway",
    "survey_reminder",
]

log = logging.getLogger("gateway.scheduler")
_CURRENT: list[Gateway] = []
CURRENT_JOB_ID: ContextVar[str | None] = ContextVar("gateway_job_id", default=None)
"""The id of the ``scheduled_jobs`` row being run (set by the runner)."""


def _once_key() -> str | None:
    """An idempotency key for what this run creates: a job run again (its process died after
    creating the broadcast, before marking the job done) finds the first broadcast."""
    job_id = CURRENT_JOB_ID.get()
    return f"job:{job_id}" if job_id else None


def set_current_gateway(gateway: Gateway | None) -> None:
    """Register the gateway whose scheduler runs jobs in this process."""
    _CURRENT.clear()
    if gateway is not None:
        _CURRENT.append(gateway)


def current_gateway() -> Gateway:
    """The gateway jobs act on."""
    if not _CURRENT:
        raise RuntimeError("no running gateway in this process")
    return _CURRENT[0]


async def _sent_before(key: str | None) -> dict[str, Any] | None:
    """The status of the broadcast an earlier run of this job created, if it did."""
    if key is None:
        return None
    from sqlalchemy import select

    from gateway.storage.models import Broadcast

    gw = current_gateway()
    async with gw.db.session() as session:
        found = await session.scalar(select(Broadcast.id).where(Broadcast.idempotency_key == key))
    if found is None:
        return None
    log.info("job %s: its broadcast %s exists already (an earlier run); not sent again", key, found)
    return (await gw.planner.status(found)).as_dict()


async def event_reminder(event_id: int, offset: str) -> dict[str, Any] | None:
    """Remind invited families who have not declined."""
    from gateway.broadcasts import send_event_reminder

    key = _once_key()
    if (earlier := await _sent_before(key)) is not None:
        return earlier
    result = await send_event_reminder(current_gateway(), event_id, idempotency_key=key)
    log.info(
        "event %s reminder (%s before): %s messages", event_id, offset, (result or {}).get("messages", 0)
    )
    return result


async def survey_reminder(survey_id: int) -> dict[str, Any] | None:
    """Ask non-respondents again."""
    from gateway.broadcasts import send_survey_reminder

    key = _once_key()
    if (earlier := await _sent_before(key)) is not None:
        return earlier
    result = await send_survey_reminder(current_gateway(), survey_id, idempotency_key=key)
    log.info("survey %s reminder: %s messages", survey_id, (result or {}).get("messages", 0))
    return result


async def close_survey(survey_id: int) -> int:
    """Close a survey's open sessions."""
    from gateway.broadcasts import close_survey as close

    closed = await close(current_gateway(), survey_id)
    log.info("survey %s closed: %s open sessions closed", survey_id, closed)
    return closed
