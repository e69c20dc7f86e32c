"""Job functions APScheduler runs. Module-level and with picklable arguments (ids, not
objects), as a persistent job store requires; they reach the running gateway through
:func:`current_gateway`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["close_survey", "current_gateway", "event_reminder", "set_current_gateway", "survey_reminder"]

log = logging.getLogger("gateway.scheduler")
_CURRENT: list[Gateway] = []


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


async def event_reminder(event_id: int, offset: str) -> dict[str, Any] | None:
    """Remind invited families who have not declined."""
    from gateway.broadcasts import send_event_reminder

    result = await send_event_reminder(current_gateway(), event_id)
    log.info(
        "event %s reminder (%s before): %s messages", event_id, offset, (result or {}).get("messages", 0)
    )
    return result


async def survey_reminder(survey_id: int) -> dict[str, Any] | None:
    """Ask non-respondents again."""
    from gateway.broadcasts import send_survey_reminder

    result = await send_survey_reminder(current_gateway(), survey_id)
    log.info("survey %s reminder: %s messages", survey_id, (result or {}).get("messages", 0))
    return result


async def close_survey(survey_id: int) -> int:
    """Close a survey's open sessions."""
    from gateway.broadcasts import close_survey as close

    closed = await close(current_gateway(), survey_id)
    log.info("survey %s closed: %s open sessions closed", survey_id, closed)
    return closed
