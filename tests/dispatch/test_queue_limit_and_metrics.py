"""A broadcast that would outlast the provider's queue is refused with the estimate; /metrics
exports typed counters, histograms and gauges (send latency, retries, unknown outcomes, webhook
signature failures) from a registry per gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from dispatch_support import TimedTwilioServer, seed_outbox, twilio_channel
from prometheus_client.parser import text_string_to_metric_families

from gateway.testing.harness import open_gateway, write_config
from gateway.testing.telegram_server import TelegramBotAPIServer
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


def _scrape(text: str) -> dict[str, Any]:
    """``{family name: Metric}`` as Prometheus's own parser reads the exposition."""
    return {family.name: family for family in text_string_to_metric_families(text)}


def _sample(families: dict[str, Any], family: str, sample: str, **labels: str) -> float | None:
    for s in families[family].samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    return None


async def test_metrics_are_typed_and_count_sends_retries_and_signature_failures(
    tmp_path: Path, twilio: TimedTwilioServer
) -> None:
    async with TelegramBotAPIServer() as telegram:
        config = write_config(
            tmp_path / "gw",
            channels={
                "sms": twilio_channel(twilio, timeout=2.0),
                "telegram": {
                    "plugin": "telegram",
                    "token": telegram.token,
                    "api_base_url": telegram.base_url,
                    "mode": "webhook",
                    "webhook_secret": "right-secret",
                },
            },
            dispatch={"backoff_base_seconds": 0.01, "lease_seconds": 60},
        )
        await seed_outbox(config, 5)
        twilio.fail_next(503, times=1)
        twilio.hang_next(10.0, times=1)  # well past the timeout: one unknown outcome
        async with open_gateway(config) as gw:
            await gw.dispatcher.run_until_idle()
            client = TestClient(TestServer(create_app(gw)))
            await client.start_server()
            try:
                form = {"MessageSid": "SM" + "0" * 32, "From": "+19135550101", "Body": "hi"}
                unsigned = await client.post("/webhooks/sms/inbound", data=form)
                forged = await client.post(
                    "/webhooks/sms/inbound", data=form, headers={"X-Twilio-Signature": "Zm9yZ2Vk"}
                )
                wrong_secret = await client.post(
                    "/webhooks/telegram/update",
                    json={"update_id": 1, "message": {}},
                    headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"},
                )
                assert (unsigned.status, forged.status, wrong_secret.status) == (403, 403, 403)
                scraped = await client.get("/metrics")
                assert scraped.headers["Content-Type"].startswith("text/plain; version=")
                text = await scraped.text()
            finally:
                await client.close()
    families = _scrape(text)
    kinds = {name: families[name].type for name in families if name.startswith("gateway_")}
    for name in (
        "gateway_messages_sent",
        "gateway_messages_failed",
        "gateway_messages_retried",
        "gateway_messages_unknown",
        "gateway_messages_reconciled",
        "gateway_webhook_signature_failures",
        "gateway_translation_engine_calls",
    ):
        assert kinds[name] == "counter", name
    assert kinds["gateway_send_latency_seconds"] == "histogram"
    assert kinds["gateway_queue_depth"] == "gauge"
    assert kinds["gateway_queue_lag_seconds"] == "gauge"
    total = "gateway_messages_{}_total"
    assert _sample(families, "gateway_messages_retried", total.format("retried"), channel="sms") == 1
    assert _sample(families, "gateway_messages_unknown", total.format("unknown"), channel="sms") == 1
    assert _sample(families, "gateway_messages_sent", total.format("sent"), channel="sms") == 4
    latency = "gateway_send_latency_seconds"
    assert _sample(families, latency, f"{latency}_count", channel="sms") == 6
    assert _sample(families, latency, f"{latency}_bucket", channel="sms", le="+Inf") == 6
    failures = "gateway_webhook_signature_failures"
    assert _sample(families, failures, f"{failures}_total", channel="sms") == 2
    assert _sample(families, failures, f"{failures}_total", channel="telegram") == 1
    assert _sample(families, "gateway_queue_depth", "gateway_queue_depth", channel="telegram") == 0


async def test_two_gateways_in_one_process_keep_their_own_figures(tmp_path: Path) -> None:
    first = write_config(tmp_path / "one")
    second = write_config(tmp_path / "two")
    async with open_gateway(first) as one, open_gateway(second) as two:
        one.metrics.message("sent", "sms")
        one.metrics.signature_failure("sms")
        assert one.metrics.value("gateway_messages_sent_total", channel="sms") == 1
        assert two.metrics.value("gateway_messages_sent_total", channel="sms") == 0
        assert two.metrics.value("gateway_webhook_signature_failures_total", channel="sms") == 0
