"""Following up a broadcast family by family: who was reached, who was not and why, who is
coming, and the call list of the families the messages missed or who have not answered.

Every row is one guardian the broadcast was for, narrowed to a liaison's schools.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from gateway.domain.statuses import MessageStatus
from gateway.exports import safe_cell
from gateway.responses import event_rsvps
from gateway.storage.models import Broadcast, Endpoint, Event, Family, Guardian, OutboxMessage

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["OUTCOMES", "broadcast_families", "call_list_csv", "survey_call_list_csv"]

#: Outcomes from best to worst: a guardian's outcome is the best of their messages.
OUTCOMES = ("delivered", "sent", "pending", "failed", "opted out", "not reached")
_OUTCOME_OF = {
    MessageStatus.DELIVERED: "delivered",
    MessageStatus.READ: "delivered",
    MessageStatus.SENT: "sent",
    MessageStatus.QUEUED: "pending",
    MessageStatus.HELD: "pending",
    MessageStatus.SENDING: "pending",
    MessageStatus.UNKNOWN: "pending",
    MessageStatus.FAILED: "failed",
    MessageStatus.UNDELIVERED: "failed",
    MessageStatus.CANCELLED: "not reached",
}


async def broadcast_families(
    gw: Gateway,
    broadcast_id: int,
    scope: list[str] | None,
    *,
    outcome: str | None = None,
    rsvp: str | None = None,
) -> dict[str, Any] | None:
    """``{"broadcast_id", "event_id", "rows": [...], "counts": {...}}``: one row per guardian
    (``family_id, guardian, language, channel, outcome, reason, rsvp, phone``), filtered by
    ``outcome`` and ``rsvp`` (``yes``, ``no``, ``maybe``, ``no_answer``)."""
    from gateway.web.queries import scoped_family_ids

    async with gw.db.session() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        if broadcast is None:
            return None
        query = (
            select(OutboxMessage, Family.external_id, Guardian.name)
            .join(Guardian, Guardian.id == OutboxMessage.guardian_id)
            .join(Family, Family.id == OutboxMessage.family_id)
            .where(OutboxMessage.broadcast_id == broadcast_id)
            .order_by(OutboxMessage.id)
        )
        if scope is not None:
            query = query.where(OutboxMessage.family_id.in_(scoped_family_ids(scope)))
        rows: dict[int, dict[str, Any]] = {}
        for message, family_id, guardian in (await session.execute(query)).all():
            found = _OUTCOME_OF.get(MessageStatus(message.status), "pending")
            row = rows.get(message.guardian_id)
            if row is None or OUTCOMES.index(found) < OUTCOMES.index(row["outcome"]):
                rows[message.guardian_id] = {
                    "guardian_id": message.guardian_id,
                    "family_id": family_id,
                    "guardian": guardian,
                    "language": message.language,
                    "channel": message.channel,
                    "outcome": found,
                    "reason": message.error_reason if found in ("failed", "not reached") else None,
                }
        extra: list[dict[str, Any]] = []
        skipped = (broadcast.summary or {}).get("skipped", [])
        visible = None
        if scope is not None:
            visible = set(
                await session.scalars(
                    select(Family.external_id).where(Family.id.in_(scoped_family_ids(scope)))
                )
            )
        for item in skipped:
            if visible is not None and item.get("family_id") not in visible:
                continue
            reason = str(item.get("reason") or "")
            extra.append(
                {
                    "guardian_id": None,
                    "family_id": item.get("family_id"),
                    "guardian": item.get("guardian"),
                    "language": None,
                    "channel": None,
                    "outcome": "opted out" if reason == "opted out" else "not reached",
                    "reason": reason,
                }
            )
        event_external = None
        if broadcast.event_id:
            event_external = await session.scalar(
                select(Event.external_id).where(Event.id == broadcast.event_id)
            )
        everyone = [*rows.values(), *extra]
        phones = await _phones(session, everyone)
    answers: dict[tuple[str, str], str] = {}
    if event_external and broadcast.kind == "invitation":
        listed = await event_rsvps(gw, event_external, scope)
        for bucket in ("yes", "no", "maybe", "no_answer"):
            for item in (listed or {}).get(bucket, []):
                answers[(item["family_id"], item["guardian"])] = bucket
    out = []
    for row in everyone:
        row["rsvp"] = answers.get((row["family_id"], row["guardian"])) if answers else None
        row["phone"] = phones.get((row["family_id"], row["guardian"]))
        out.append(row)
    counts = {o: sum(1 for r in out if r["outcome"] == o) for o in OUTCOMES}
    rsvp_counts = {b: sum(1 for r in out if r["rsvp"] == b) for b in ("yes", "no", "maybe", "no_answer")}
    if outcome:
        out = [r for r in out if r["outcome"] == outcome]
    if rsvp:
        out = [r for r in out if r["rsvp"] == rsvp]
    out.sort(key=lambda r: (OUTCOMES.index(r["outcome"]), r["family_id"] or "", r["guardian"] or ""))
    return {
        "broadcast_id": broadcast_id,
        "event_id": event_external,
        "rows": out,
        "counts": counts,
        "rsvp_counts": rsvp_counts if answers else {},
    }


async def guardian_phones(gw: Gateway, rows: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """Each listed guardian's phone number, by (family id, guardian name)."""
    async with gw.db.session() as session:
        return await _phones(session, rows)


async def _phones(session: Any, rows: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """Each guardian's phone number (a call reaches a family that texts and e-mails missed)."""
    families = sorted({r["family_id"] for r in rows if r["family_id"]})
    found: dict[tuple[str, str], str] = {}
    for start in range(0, len(families), 500):
        for family_id, guardian, address in await session.execute(
            select(Family.external_id, Guardian.name, Endpoint.address)
            .join(Guardian, Guardian.family_id == Family.id)
            .join(Endpoint, Endpoint.guardian_id == Guardian.id)
            .where(Family.external_id.in_(families[start : start + 500]), Endpoint.kind == "phone")
        ):
            found.setdefault((family_id, guardian), address)
    return found


def call_list_csv(data: dict[str, Any]) -> str:
    """The families to phone: no message reached them, or (for an invitation) they have not
    answered. Columns: guardian, language, phone, reason, family_id (spreadsheet-safe)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["guardian", "language", "phone", "reason", "family_id"])
    for row in data["rows"]:
        missed = row["outcome"] in ("failed", "opted out", "not reached")
        unanswered = row.get("rsvp") == "no_answer"
        if not (missed or unanswered):
            continue
        reason = row["reason"] or row["outcome"] if missed else "has not answered the RSVP"
        writer.writerow(
            [
                safe_cell(v)
                for v in (
                    row["guardian"],
                    row["language"] or "",
                    row["phone"] or "",
                    reason,
                    row["family_id"],
                )
            ]
        )
    return buffer.getvalue()


def survey_call_list_csv(gw: Any, responses: dict[str, Any], phones: dict[tuple[str, str], str]) -> str:
    """The guardians asked who have not answered a survey: guardian, language, phone, reason,
    family_id (spreadsheet-safe)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["guardian", "language", "phone", "reason", "family_id"])
    for row in responses["responses"]:
        if row["answers"]:
            continue
        phone = phones.get((row["family_id"], row["guardian"]), "")
        cells = (row["guardian"], row["language"], phone, "has not answered the survey", row["family_id"])
        writer.writerow([safe_cell(v) for v in cells])
    return buffer.getvalue()
