"""A broadcast that would outlast the provider's queue is refused with the estimate; /metrics
shows send latency, retries and unknown outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from dispatch_support import TimedTwilioServer, seed_outbox, twilio_channel

from gateway.testing.harness import open_gateway, write_config
from gateway.web.app import create_app


def test_broadcast_over_the_queue_limit_is_refused_at_dry_run_and_send(
    tmp_path: Path, cli: Any, families_csv: Path
) -> None:
    # 0.0001 messages/s: even a handful of families takes far more than 10 hours.
    config = write_config(
        tmp_path / "gw",
        channels={
            "sms": {"plugin": "sandbox", "endpoint": "phone", "echo": False, "rate_per_second": 0.0001},
            "email": {"plugin": "sandbox", "endpoint": "email", "echo": False},
        },
    )
    assert cli(["families", "import", str(families_csv)], config).exit_code == 0
    for extra in (["--dry-run"], []):
        result = cli(["broadcast", "send", "opt_in_confirmation", *extra], config)
        assert result.exit_code != 0
        assert "would take about" in result.output and "queue limit of 10 hours" in result.output
    # Nothing was written by the refused send.
    status = cli(["broadcast", "status", "1"], config)
    assert status.exit_code != 0
    # The same broadcast passes when the channel allows a longer queue.
    config = write_config(
        tmp_path / "gw",
        channels={
            "sms": {
                "plugin": "sandbox",
                "endpoint": "phone",
                "echo": False,
                "rate_per_second": 0.0001,
                "max_queue_hours": 10_000,
            },
            "email": {"plugin": "sandbox", "endpoint": "email", "echo": False},
        },
    )
    assert cli(["broadcast", "send", "opt_in_confirmation", "--dry-run"], config).exit_code == 0


async def test_metrics_show_latency_retries_and_unknown(tmp_path: Path, twilio: TimedTwilioServer) -> None:
    config = write_config(
        tmp_path / "gw",
        channels={"sms": twilio_channel(twilio, timeout=0.5)},
        dispatch={"backoff_base_seconds": 0.01, "lease_seconds": 60},
    )
    await seed_outbox(config, 5)
    twilio.fail_next(503, times=1)
    twilio.hang_next(1.0, times=1)
    async with open_gateway(config) as gw:
        await gw.dispatcher.run_until_idle()
        client = TestClient(TestServer(create_app(gw)))
        await client.start_server()
        try:
            text = await (await client.get("/metrics")).text()
        finally:
            await client.close()
    assert 'gateway_messages_retried_total{channel="sms"} 1.0' in text
    assert 'gateway_messages_unknown_total{channel="sms"} 1.0' in text
    assert 'gateway_send_latency_seconds_count{channel="sms"} 6.0' in text
    assert 'gateway_send_latency_seconds_bucket{channel="sms",le="+Inf"} 6.0' in text
