"""Delivery reports: what ``update_status`` answers (applied / repeat / pending), reports kept
for a provider id not stored yet and applied in order when the send records it, and the bounds
(age, count) past which kept reports are dropped with a metric."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, update

from gateway import StatusOutcome, StatusUpdate
from gateway.storage.models import OutboxMessage, PendingStatusReport, StatusEvent, utcnow
from gateway.testing.harness import open_gateway, write_config


async def _message(gw, provider_id: str | None, status: str = "queued") -> int:  # type: ignore[no-untyped-def]
    async with gw.db.session() as session:
        row = OutboxMessage(
            channel="sms",
            address="+19135550101",
            language="en",
            body="hello",
            status=status,
            provider_message_id=provider_id,
        )
        session.add(row)
        await session.commit()
        return row.id


async def _history(gw, message_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    async with gw.db.session() as session:
        return list(
            await session.scalars(
                select(StatusEvent.status)
                .where(StatusEvent.message_id == message_id)
                .order_by(StatusEvent.id)
            )
        )


async def _kept(gw) -> int:  # type: ignore[no-untyped-def]
    async with gw.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(PendingStatusReport)) or 0)


def _report(provider_id: str, status: str, **kwargs) -> StatusUpdate:  # type: ignore[no-untyped-def]
    return StatusUpdate(channel="sms", provider_message_id=provider_id, status=status, **kwargs)


async def test_outcomes_tell_applied_repeat_and_not_seen_yet_apart(gateway) -> None:  # type: ignore[no-untyped-def]
    known = await _message(gateway, "SMknown", status="sent")
    assert await gateway.dispatcher.apply_status(_report("SMknown", "delivered")) is StatusOutcome.APPLIED
    assert await gateway.dispatcher.apply_status(_report("SMknown", "delivered")) is StatusOutcome.REPEAT
    # Backwards: never applied.
    assert await gateway.dispatcher.apply_status(_report("SMknown", "sent")) is StatusOutcome.REPEAT
    assert await _history(gateway, known) == ["delivered"]

    assert await gateway.dispatcher.apply_status(_report("SMlater", "delivered")) is StatusOutcome.PENDING
    assert await gateway.dispatcher.apply_status(_report("SMlater", "delivered")) is StatusOutcome.PENDING
    assert await _kept(gateway) == 1  # a repeated report is kept once
    assert not StatusOutcome.PENDING and not StatusOutcome.REPEAT and StatusOutcome.APPLIED


async def test_kept_reports_are_applied_in_order_when_the_send_stores_the_id(gateway) -> None:  # type: ignore[no-untyped-def]
    message_id = await _message(gateway, None)
    provider_id = f"sandbox-{message_id}"  # what the sandbox channel answers for this message
    # The provider calls back before the send returned: read first, then the failure of an
    # older attempt that arrives late, then read again.
    for status in ("read", "failed", "read"):
        assert await gateway.dispatcher.apply_status(_report(provider_id, status)) is StatusOutcome.PENDING
    await gateway.dispatcher.run_until_idle()
    async with gateway.db.session() as session:
        row = await session.get(OutboxMessage, message_id)
    assert row is not None and row.provider_message_id == provider_id
    # The send recorded "delivered"; of the kept reports only "read" moves it forward.
    assert row.status == "read"
    assert await _history(gateway, message_id) == ["delivered", "read"]
    assert await _kept(gateway) == 0


async def test_a_missed_hand_over_is_applied_by_the_sweep(gateway) -> None:  # type: ignore[no-untyped-def]
    message_id = await _message(gateway, None)
    assert await gateway.dispatcher.apply_status(_report("SMmissed", "delivered")) is StatusOutcome.PENDING
    async with gateway.db.session() as session:  # stored without the usual hand-over
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(provider_message_id="SMmissed", status="sent")
        )
        await session.commit()
    assert await gateway.dispatcher.sweep_pending_reports() == 1
    assert await _history(gateway, message_id) == ["delivered"]
    assert await _kept(gateway) == 0


async def test_kept_reports_are_bounded_in_age_and_count(tmp_path: Path, db_url: str) -> None:
    bounds = {"pending_reports_max": 3, "pending_reports_max_age_hours": 1}
    config = write_config(tmp_path / "gw", db_url, intake=bounds)
    async with open_gateway(config) as gw:
        for index in range(6):
            await gw.dispatcher.apply_status(_report(f"SM{index}", "delivered"))
        async with gw.db.session() as session:  # two of them arrived two hours ago
            await session.execute(
                update(PendingStatusReport)
                .where(PendingStatusReport.provider_message_id.in_(["SM4", "SM5"]))
                .values(received_at=utcnow() - timedelta(hours=2))
            )
            await session.commit()
        assert await gw.dispatcher.prune_pending_reports() == 3
        async with gw.db.session() as session:
            left = sorted(await session.scalars(select(PendingStatusReport.provider_message_id)))
        assert left == ["SM1", "SM2", "SM3"]  # the expired two, then the oldest beyond three
        text = (await gw.metrics.render(gw)).decode()
        assert 'gateway_status_reports_dropped_total{channel="sms",reason="expired"} 2.0' in text
        assert 'gateway_status_reports_dropped_total{channel="sms",reason="overflow"} 1.0' in text
