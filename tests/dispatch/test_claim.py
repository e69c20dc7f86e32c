"""Claiming and recording through SQLAlchemy Core: which rows a claim takes, in what order, what
it returns, and what recording writes back (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select

from gateway.outbox.dispatcher import ClaimedMessage, OutboxDispatcher
from gateway.storage.models import OutboxMessage, StatusEvent, utcnow


async def _rows(gw: Any, rows: list[dict[str, Any]]) -> None:
    base = {"channel": "sms", "language": "en", "payload": {}, "attempts": 0}
    async with gw.db.session() as session:
        await session.execute(insert(OutboxMessage), [{**base, **row} for row in rows])
        await session.commit()


async def _by_body(gw: Any) -> dict[str, OutboxMessage]:
    async with gw.db.session() as session:
        return {row.body: row for row in await session.scalars(select(OutboxMessage))}


async def test_claim_takes_expired_leases_and_due_messages_only(gateway: Any) -> None:
    now = utcnow()
    await _rows(
        gateway,
        [
            # A worker died holding these (sandbox cannot reconcile: they are claimed again).
            {
                "address": "+19135550101",
                "body": "expired",
                "status": "sending",
                "attempts": 1,
                "due_at": now - timedelta(minutes=5),
                "lease_owner": "dead",
                "lease_until": now - timedelta(seconds=1),
            },
            {
                "address": "+19135550102",
                "body": "leased",
                "status": "sending",
                "attempts": 1,
                "due_at": now - timedelta(minutes=5),
                "lease_owner": "alive",
                "lease_until": now + timedelta(minutes=1),
            },
            {
                "address": "+19135550103",
                "body": "due-2",
                "status": "queued",
                "due_at": now - timedelta(seconds=1),
            },
            {
                "address": "+19135550104",
                "body": "due-1",
                "status": "queued",
                "due_at": now - timedelta(seconds=2),
            },
            {
                "address": "+19135550105",
                "body": "later",
                "status": "queued",
                "due_at": now + timedelta(hours=1),
            },
            {"address": "+19135550106", "body": "done", "status": "sent", "due_at": now - timedelta(hours=1)},
        ],
    )
    dispatcher = OutboxDispatcher(gateway)
    first = await dispatcher.claim(2)
    assert all(isinstance(row, ClaimedMessage) for row in first)
    assert [row.body for row in first] == ["expired", "due-1"]
    assert {row.status for row in first} == {"sending"}
    assert {row.lease_owner for row in first} == {dispatcher.worker_id}
    assert [row.attempts for row in first] == [2, 1]
    assert all(row.lease_until is not None and row.lease_until > utcnow() for row in first)
    second = await dispatcher.claim(10)
    assert [row.body for row in second] == ["due-2"]
    assert await dispatcher.claim(10) == []
    stored = await _by_body(gateway)
    assert stored["leased"].lease_owner == "alive"
    assert stored["later"].status == "queued" and stored["done"].status == "sent"
    assert stored["expired"].lease_owner == dispatcher.worker_id and stored["expired"].attempts == 2
    # What a claim does not read back but fills in is what the database holds.
    for row in [*first, *second]:
        held = stored[row.body]
        assert (row.status, row.lease_owner) == (held.status, held.lease_owner)
        assert (row.lease_until, row.updated_at) == (held.lease_until, held.updated_at)
        assert (row.id, row.address, row.due_at, row.created_at) == (
            held.id, held.address, held.due_at, held.created_at
        )


async def test_one_batch_with_mixed_outcomes_is_recorded_row_by_row(gateway: Any) -> None:
    # Sandbox sends everything; an opted-out endpoint is cancelled: two groups of columns.
    from gateway.storage.models import Endpoint, Family, Guardian

    async with gateway.db.session() as session:
        family = Family(external_id="F1")
        session.add(family)
        await session.flush()
        guardian = Guardian(
            family_id=family.id, name="Maria", name_key="maria", language="es", timezone="America/Chicago"
        )
        session.add(guardian)
        await session.flush()
        endpoint = Endpoint(guardian_id=guardian.id, kind="phone", address="+19135550199", opted_out=True)
        session.add(endpoint)
        await session.commit()
        endpoint_id = endpoint.id
    now = utcnow()
    await _rows(
        gateway,
        [
            {"address": f"+1913555{i:04d}", "body": f"m{i}", "status": "queued", "due_at": now}
            for i in range(20)
        ]
        + [
            {
                "address": "+19135550199",
                "body": "stopped",
                "status": "queued",
                "due_at": now,
                "endpoint_id": endpoint_id,
            }
        ],
    )
    result = await gateway.dispatcher.run_until_idle()
    assert (result.sent, result.cancelled) == (20, 1)
    stored = await _by_body(gateway)
    cancelled = stored.pop("stopped")
    assert cancelled.status == "cancelled" and cancelled.provider_message_id is None
    assert cancelled.lease_owner is None and cancelled.sent_at is None
    for row in stored.values():
        assert row.status == "delivered" and row.provider_message_id == f"sandbox-{row.id}"
        assert row.sent_at is not None and row.lease_owner is None and row.lease_until is None
    async with gateway.db.session() as session:
        events = dict(
            (
                await session.execute(
                    select(StatusEvent.status, func.count(StatusEvent.id)).group_by(StatusEvent.status)
                )
            ).all()
        )
    assert events == {"delivered": 20, "cancelled": 1}


def test_the_fields_a_claim_sets_alike_come_last() -> None:
    from gateway.outbox.dispatcher import CLAIMED_AS_SET

    assert ClaimedMessage._fields[-len(CLAIMED_AS_SET) :] == CLAIMED_AS_SET
