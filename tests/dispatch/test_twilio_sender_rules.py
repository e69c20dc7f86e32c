"""Twilio sender rules, measured at the local Twilio server through the real ``twilio`` client:
the sender type's default rate, multi-segment messages that never overfill a 1-second window,
21408 as one configuration alert (not a retry per message), 30003 sent again once after at
least 30 minutes."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from dispatch_support import TimedTwilioServer, phone, twilio_channel
from gateway_plugins.twilio_sms.channel import SENDER_RATES
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, select, update

from gateway.errors import ConfigError
from gateway.sms import count_segments
from gateway.storage.models import Broadcast, OutboxMessage, StatusEvent, utcnow
from gateway.testing.harness import open_gateway, write_config
from gateway.web.app import create_app


async def _seed(config: Path, bodies: list[str], first: int = 0) -> None:
    """One queued message per body, to distinct numbers, in this order."""
    async with open_gateway(config, start=False) as gw, gw.db.session() as session:
        broadcast = Broadcast(template="test", status="queued", audience="")
        session.add(broadcast)
        await session.flush()
        now = utcnow()
        rows = [
            {
                "broadcast_id": broadcast.id,
                "channel": "sms",
                "address": phone(first + i),
                "language": "en",
                "body": body,
                "payload": {},
                "status": "queued",
                "due_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for i, body in enumerate(bodies)
        ]
        await session.execute(insert(OutboxMessage), rows)
        await session.commit()


def _segments_in_busiest_window(twilio: TimedTwilioServer) -> int:
    """The most SMS segments the provider received within any 1-second window."""
    arrivals = sorted((a.at, count_segments(a.body).segments) for a in twilio.arrivals)
    best = 0
    for i, (start, _) in enumerate(arrivals):
        best = max(best, sum(units for at, units in arrivals[i:] if at - start < 1.0))
    return best


@pytest.mark.parametrize(
    ("sender_type", "settings"),
    [
        ("long_code", {}),
        ("toll_free", {}),
        ("short_code", {}),
        ("messaging_service", {"from_number": None, "messaging_service_sid": "MG" + "1" * 32}),
    ],
)
async def test_sender_type_sets_the_default_rate(
    tmp_path: Path, twilio: TimedTwilioServer, sender_type: str, settings: dict[str, Any]
) -> None:
    sms = {**twilio_channel(twilio), **settings, "sender_type": sender_type}
    config = write_config(tmp_path / "gw", channels={"sms": {k: v for k, v in sms.items() if v is not None}})
    async with open_gateway(config, start=False) as gw:
        assert gw.channel("sms").rate_per_second == SENDER_RATES[sender_type]
    assert SENDER_RATES == {"long_code": 1, "toll_free": 3, "short_code": 100, "messaging_service": 1}
    explicit = write_config(
        tmp_path / "explicit", channels={"sms": {**twilio_channel(twilio), "rate_per_second": 7}}
    )
    async with open_gateway(explicit, start=False) as gw:
        assert gw.channel("sms").rate_per_second == 7


async def test_a_messaging_service_type_needs_a_messaging_service(
    tmp_path: Path, twilio: TimedTwilioServer
) -> None:
    config = write_config(
        tmp_path / "gw", channels={"sms": {**twilio_channel(twilio), "sender_type": "messaging_service"}}
    )
    with pytest.raises(ConfigError, match="sender_type messaging_service goes with messaging_service_sid"):
        async with open_gateway(config, start=False):
            pass


async def test_toll_free_default_rate_holds_at_the_provider(
    tmp_path: Path, twilio: TimedTwilioServer
) -> None:
    config = write_config(
        tmp_path / "gw", channels={"sms": {**twilio_channel(twilio), "sender_type": "toll_free"}}
    )
    await _seed(config, [f"Reminder {i}" for i in range(8)])
    async with open_gateway(config) as gw:
        await gw.dispatcher.run_until_idle()
    assert len(twilio.messages) == 8
    assert _segments_in_busiest_window(twilio) <= 3


async def test_multi_segment_messages_never_overfill_a_window(
    tmp_path: Path, twilio: TimedTwilioServer
) -> None:
    rate = 10
    # Nine one-segment messages then a four-segment one, and mixed sizes after: with the cost
    # of a message counted only after it, the first second would hold 13 segments.
    sizes = [1] * 9 + [4] + [3, 1, 2, 5, 1, 1, 3, 2, 1, 4, 1, 1, 1]
    bodies = [(f"{i:03d} " + "x" * (153 * n - 4)) if n > 1 else f"{i:03d} short" for i, n in enumerate(sizes)]
    assert [count_segments(b).segments for b in bodies] == sizes
    config = write_config(
        tmp_path / "gw",
        channels={"sms": {**twilio_channel(twilio), "rate_per_second": rate, "concurrency": 4}},
    )
    await _seed(config, bodies)
    async with open_gateway(config) as gw:
        await gw.dispatcher.run_until_idle()
    assert sorted(m.body for m in twilio.messages) == sorted(bodies)
    busiest = _segments_in_busiest_window(twilio)
    print(f"\nbusiest 1-s window at the provider: {busiest} segments (rate {rate})")
    assert busiest <= rate


async def test_21408_is_one_configuration_alert_not_a_retry_per_message(
    tmp_path: Path, twilio: TimedTwilioServer, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_config(tmp_path / "gw", channels={"sms": twilio_channel(twilio)})
    await _seed(config, [f"Notice {i}" for i in range(3)])
    for i in range(3):
        twilio.fail_for(
            phone(i),
            400,
            21408,
            message="Permission to send an SMS has not been enabled for the region indicated by "
            f"the 'To' number: {phone(i)}",
        )
    caplog.set_level(logging.INFO)
    async with open_gateway(config) as gw:
        await gw.dispatcher.run_until_idle()
        async with gw.db.session() as session:
            rows = list(await session.scalars(select(OutboxMessage)))
        client = TestClient(TestServer(create_app(gw)))
        await client.start_server()
        try:
            health = await (await client.get("/healthz")).json()
            metrics = await (await client.get("/metrics")).text()
        finally:
            await client.close()
    assert twilio.requests == 3  # one attempt each, no retry
    for row in rows:
        assert (row.status, row.error_code, row.attempts) == ("failed", "21408", 1)
        assert "Geo permissions" in (row.error_reason or "")
    [alert] = health["alerts"]
    assert (alert["channel"], alert["code"], alert["count"]) == ("sms", "21408", 3)
    assert "enable the destination country" in alert["message"]
    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    gauge = families["gateway_channel_config_alert"]
    assert gauge.type == "gauge"
    assert [(s.labels, s.value) for s in gauge.samples] == [({"channel": "sms", "code": "21408"}, 1.0)]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "Geo permissions" in errors[0].getMessage()


async def test_30003_is_sent_again_once_after_30_minutes_then_final(
    tmp_path: Path, twilio: TimedTwilioServer
) -> None:
    config = write_config(
        tmp_path / "gw", channels={"sms": {**twilio_channel(twilio), "status_callback": True}}
    )
    await _seed(config, ["Bus 12 is late today"])
    async with open_gateway(config) as gw:
        server = TestServer(create_app(gw))
        client = TestClient(server)
        await client.start_server()
        via = str(server.make_url("")).rstrip("/")
        try:
            await gw.dispatcher.run_until_idle()
            [first] = twilio.messages
            assert await twilio.post_status_callbacks(
                first.sid, ["undelivered"], error_code=30003, via=via
            ) == [204]
            # Twilio repeats a callback it got no answer to in time: the repeat changes nothing.
            assert await twilio.post_status_callbacks(
                first.sid, ["undelivered"], error_code=30003, via=via
            ) == [204]
            async with gw.db.session() as session:
                row = await session.scalar(select(OutboxMessage))
            assert row is not None and row.status == "queued" and row.error_code == "30003"
            assert row.due_at - utcnow() >= timedelta(minutes=29, seconds=50)
            # Not before its time...
            await gw.dispatcher.run_until_idle()
            assert len(twilio.messages) == 1
            # ... and once it is due (the clock moved on 30 minutes), sent again.
            async with gw.db.session() as session:
                await session.execute(update(OutboxMessage).values(due_at=utcnow()))
                await session.commit()
            await gw.dispatcher.run_until_idle()
            assert len(twilio.messages) == 2
            second = twilio.messages[1]
            assert second.body == first.body and second.to == first.to
            assert await twilio.post_status_callbacks(
                second.sid, ["undelivered"], error_code=30003, via=via
            ) == [204]
            await gw.dispatcher.run_until_idle()
            async with gw.db.session() as session:
                row = await session.scalar(select(OutboxMessage))
                events = list(await session.scalars(select(StatusEvent.status).order_by(StatusEvent.id)))
        finally:
            await client.close()
    assert len(twilio.messages) == 2  # once again, then final
    assert row is not None and (row.status, row.error_code) == ("undelivered", "30003")
    assert row.provider_message_id == second.sid
    assert events.count("undelivered") == 2
