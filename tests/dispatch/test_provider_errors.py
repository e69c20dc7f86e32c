"""Retries against a misbehaving provider: 429 with Retry-After, 500, 503 and hanging requests
all end delivered, once; Retry-After is honoured; permanent errors are never retried and fall
back to the guardian's next endpoint under policy ``preferred``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from dispatch_support import TimedTwilioServer, phone, seed_outbox, status_counts, twilio_channel
from sqlalchemy import select

from gateway.outbox.planner import BroadcastRequest
from gateway.storage.endpoints import endpoint_state
from gateway.storage.models import Endpoint, Family, Guardian, OutboxMessage
from gateway.testing.harness import open_gateway, write_config


async def _drain(gw: object, config: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await gw.dispatcher.run_until_idle()  # type: ignore[attr-defined]
        counts = await status_counts(config)
        if not {"queued", "sending", "unknown"} & set(counts):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not drained: {await status_counts(config)}")


async def test_transient_errors_all_delivered_once_retry_after_honoured(
    tmp_path: Path, db_url: str, twilio: TimedTwilioServer
) -> None:
    config = write_config(
        tmp_path / "gw",
        db_url,
        channels={"sms": twilio_channel(twilio, timeout=2, concurrency=4)},
        dispatch={"backoff_base_seconds": 0.05, "backoff_max_seconds": 0.5, "lease_seconds": 10},
    )
    await seed_outbox(config, 40)
    # A share (11 of the first requests) fail: 429 with Retry-After, 500, 503, and hangs
    # (the provider takes the message after our client gave up: an unknown outcome).
    twilio.fail_next(429, 20429, retry_after=2, times=3)
    twilio.fail_next(500, times=3)
    twilio.fail_next(503, times=3)
    twilio.hang_next(5, times=2)
    async with open_gateway(config) as gw:
        await _drain(gw, config)
        metrics = {
            outcome: gw.metrics.value(f"gateway_messages_{outcome}_total", channel="sms")
            for outcome in ("retried", "unknown", "reconciled")
        }
    accepted = twilio.accepted_bodies()
    assert len(accepted) == 40
    assert set(accepted.values()) == {1}, "a retry duplicated a message the provider had taken"
    assert await status_counts(config) == {"sent": 40}
    assert metrics["retried"] >= 9
    assert metrics["unknown"] == 2
    assert metrics["reconciled"] == 2  # found at Twilio by listing, not re-sent
    # No request for a throttled number came back before its Retry-After.
    by_number: dict[str, list] = {}
    for arrival in twilio.arrivals:
        by_number.setdefault(arrival.to, []).append(arrival)
    throttled = [a for a in twilio.arrivals if a.outcome == "429"]
    assert len(throttled) == 3
    for first in throttled:
        later = [a for a in by_number[first.to] if a.at > first.at]
        assert later, "throttled message never retried"
        assert later[0].at - first.at >= 2.0 - 0.05


async def test_permanent_errors_not_retried_and_fall_back(
    tmp_path: Path, db_url: str, twilio: TimedTwilioServer
) -> None:
    config = write_config(
        tmp_path / "gw",
        db_url,
        channels={
            "sms": twilio_channel(twilio),
            "email": {"plugin": "sandbox", "endpoint": "email", "echo": False},
        },
    )
    invalid, opted_out, fine = phone(1), phone(2), phone(3)
    twilio.fail_for(invalid, 400, 21211)
    twilio.fail_for(opted_out, 400, 21610)
    async with open_gateway(config) as gw:
        async with gw.db.session() as session:
            for index, number in enumerate((invalid, opted_out, fine)):
                family = Family(external_id=f"F{index}")
                guardian = Guardian(
                    name=f"Guardian {index}",
                    name_key=f"guardian {index}",
                    language="en",
                    timezone="America/Chicago",
                    preferred_channel="sms",
                )
                guardian.endpoints = [
                    Endpoint(kind="phone", address=number),
                    Endpoint(kind="email", address=f"g{index}@example.org"),
                ]
                family.guardians = [guardian]
                session.add(family)
            await session.commit()
        summary = await gw.planner.plan(BroadcastRequest(template="opt_in_confirmation", policy="preferred"))
        assert summary.by_channel == {"sms": 3}
        await gw.dispatcher.run_until_idle()
        await gw.dispatcher.run_until_idle()  # the fallbacks queued by the first pass
        async with gw.db.session() as session:
            rows = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
            endpoints = {
                e.address: await endpoint_state(session, e.id, "sms")
                for e in await session.scalars(select(Endpoint))
            }
    requests = [a.to for a in twilio.arrivals]
    assert requests.count(invalid) == 1 and requests.count(opted_out) == 1, "a permanent error was retried"
    sms = {r.address: r for r in rows if r.channel == "sms"}
    assert (sms[invalid].status, sms[invalid].error_code) == ("failed", "21211")
    assert (sms[opted_out].status, sms[opted_out].error_code) == ("failed", "21610")
    assert sms[fine].status == "sent"
    assert endpoints[invalid].invalid and endpoints[opted_out].opted_out
    emails = sorted(r.address for r in rows if r.channel == "email")
    assert emails == ["g0@example.org", "g1@example.org"]
    assert all(r.status == "delivered" for r in rows if r.channel == "email")


async def test_max_attempts_lead_to_failed(tmp_path: Path, db_url: str, twilio: TimedTwilioServer) -> None:
    config = write_config(
        tmp_path / "gw",
        db_url,
        channels={"sms": twilio_channel(twilio)},
        dispatch={"max_attempts": 3, "backoff_base_seconds": 0.01, "backoff_max_seconds": 0.02},
    )
    await seed_outbox(config, 1)
    twilio.fail_next(503, times=10)
    async with open_gateway(config) as gw:
        await _drain(gw, config)
        async with gw.db.session() as session:
            row = await session.scalar(select(OutboxMessage))
    assert twilio.requests == 3
    assert row is not None and row.status == "failed" and row.attempts == 3
    assert "gave up after 3 attempts" in (row.error_reason or "")
