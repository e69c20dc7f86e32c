"""Reminder jobs, called as APScheduler would call them with the running gateway registered:
survey reminders reach only non-respondents, event reminders skip families who declined."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from twoway_support import EXAMPLES, jcall, outbox_rows, reply, with_gateway

from gateway.scheduling.jobs import close_survey, event_reminder, set_current_gateway, survey_reminder
from gateway.storage.models import Broadcast, Event, Survey
from gateway.testing.harness import upcoming_example

MARIA, AMINA, LAN, FATIMA, SARAH = (
    "+19135550101",
    "+19135550102",
    "lan.nguyen@example.net",
    "552201",
    "+19135550109",
)


def _run_job(config: Path, job: Any, model: Any, external_id: str, *args: Any) -> tuple[Any, list[str]]:
    """Call ``job(row id, *args)`` with the gateway registered; returns its result and the
    addresses its broadcast wrote to."""

    async def fn(gw: Any) -> tuple[Any, int | None]:
        set_current_gateway(gw)
        try:
            async with gw.db.session() as session:
                row_id = await session.scalar(select(model.id).where(model.external_id == external_id))
            result = await job(row_id, *args)
            return result, (result or {}).get("broadcast_id") if isinstance(result, dict) else None
        finally:
            set_current_gateway(None)

    result, broadcast_id = with_gateway(config, fn)
    addresses = [r.address for r in outbox_rows(config, broadcast_id=broadcast_id)] if broadcast_id else []
    return result, addresses


def test_survey_reminder_only_to_non_respondents(cli: Any, families: Path) -> None:
    config = families
    sent = jcall(cli, ["survey", "send", str(EXAMPLES / "transport-survey.yaml"), "--json"], config)
    assert sent["messages"] == 11
    reply(cli, config, MARIA, "sí")  # answered
    reply(cli, config, LAN, "không")  # answered (and branched)
    reply(cli, config, FATIMA, "banana")  # only an unmatched attempt: still a non-respondent
    result, addresses = _run_job(config, survey_reminder, Survey, "transport-survey")
    assert result["messages"] == 9
    assert MARIA not in addresses and LAN not in addresses
    assert FATIMA in addresses and AMINA in addresses and SARAH in addresses

    async def kind(gw: Any) -> str | None:
        async with gw.db.session() as session:
            return await session.scalar(select(Broadcast.kind).where(Broadcast.id == result["broadcast_id"]))

    assert with_gateway(config, kind) == "survey-reminder"
    # After the close job nobody is waiting any more: the next reminder sends nothing.
    closed, _ = _run_job(config, close_survey, Survey, "transport-survey")
    assert closed == 11  # every session still open, answered or not
    again, addresses = _run_job(config, survey_reminder, Survey, "transport-survey")
    assert again == {"messages": 0} and addresses == []


def test_event_reminder_skips_families_who_declined(cli: Any, families: Path, tmp_path: Path) -> None:
    config = families
    event = upcoming_example(tmp_path, reminders=[])
    invite = jcall(cli, ["broadcast", "send", "workshop_invitation", "--event", str(event), "--json"], config)
    invited = {r.address for r in outbox_rows(config, broadcast_id=invite["broadcast_id"])}
    assert {MARIA, AMINA, LAN, FATIMA} <= invited
    assert reply(cli, config, MARIA, "Sí")["classification"] == "rsvp"
    assert reply(cli, config, AMINA, "maya")["classification"] == "rsvp"  # Somali "no"
    assert reply(cli, config, LAN, "2")["classification"] == "rsvp"  # choice 2 = no
    assert reply(cli, config, "claire.dubois@example.net", "peut-être")["classification"] == "rsvp"

    result, addresses = _run_job(config, event_reminder, Event, "reading-workshop-2027-03", "2h")
    assert AMINA not in addresses and LAN not in addresses
    assert MARIA in addresses and FATIMA in addresses and "claire.dubois@example.net" in addresses
    assert set(addresses) == invited - {AMINA, LAN}
    assert result["messages"] == len(invited) - 2
    # The reminder is the event reminder template, in each family's language.
    rows = outbox_rows(config, broadcast_id=result["broadcast_id"])
    assert {r.language for r in rows if r.address == MARIA} == {"es"}
    assert all((r.payload or {}).get("template", "event_reminder") == "event_reminder" for r in rows)
