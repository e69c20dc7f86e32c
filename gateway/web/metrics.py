"""Prometheus metrics: sends, failures, retries per channel (this process) and queue depth."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["render_metrics"]


async def render_metrics(gw: Gateway) -> bytes:
    """The current metrics in the Prometheus text format."""
    registry = CollectorRegistry()
    counters = {
        "sent": Gauge(
            "gateway_messages_sent_total", "Messages handed to providers", ["channel"], registry=registry
        ),
        "failed": Gauge(
            "gateway_messages_failed_total", "Messages failed for good", ["channel"], registry=registry
        ),
        "retried": Gauge(
            "gateway_messages_retried_total", "Send attempts retried", ["channel"], registry=registry
        ),
        "unknown": Gauge(
            "gateway_messages_unknown_total", "Sends with an unknown outcome", ["channel"], registry=registry
        ),
        "reconciled": Gauge(
            "gateway_messages_reconciled_total",
            "Unknown outcomes the provider settled",
            ["channel"],
            registry=registry,
        ),
        "requeued_unknown": Gauge(
            "gateway_messages_requeued_unknown_total",
            "Unknown outcomes re-sent (possible duplicates)",
            ["channel"],
            registry=registry,
        ),
    }
    for key, value in gw.dispatcher.metrics.items():
        kind, _, channel = key.partition(":")
        if kind in counters:
            counters[kind].labels(channel=channel).set(value)
    registry.register(_LatencyCollector(gw))
    depth = Gauge("gateway_queue_depth", "Queued or in-flight messages", ["channel"], registry=registry)
    for channel, count in (await gw.dispatcher.queue_depth()).items():
        depth.labels(channel=channel).set(count)
    translation = Gauge(
        "gateway_translation_total",
        "Translation memory hits, misses, engine calls",
        ["counter"],
        registry=registry,
    )
    status = await gw.translation.status()
    for name in ("hits", "misses", "engine_calls", "memory_entries"):
        translation.labels(counter=name).set(status[name])
    return generate_latest(registry)


class _LatencyCollector(Collector):
    """``gateway_send_latency_seconds``: time each provider took to take a message."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(
            "gateway_send_latency_seconds", "Provider send latency per channel", labels=["channel"]
        )
        for channel, histogram in sorted(self.gw.dispatcher.latency.items()):
            family.add_metric([channel], histogram.cumulative(), histogram.total)
        yield family
