"""Prometheus metrics: sends, failures, retries per channel (this process) and queue depth."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge, generate_latest

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
    }
    for key, value in gw.dispatcher.metrics.items():
        kind, _, channel = key.partition(":")
        if kind in counters:
            counters[kind].labels(channel=channel).set(value)
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
