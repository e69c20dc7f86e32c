"""The gateway's Prometheus metrics, in a registry of its own per :class:`~gateway.app.Gateway`.

Counters are ``prometheus_client.Counter`` (exported with ``# TYPE ... counter``), the send
latency a ``Histogram``, levels ``Gauge``s. One registry per gateway, never the process-wide
default one, so several gateways in one process (tests, benchmarks) never share or clash.

=============================================  =========  ============================================
metric                                         type       what
=============================================  =========  ============================================
``gateway_messages_sent_total{channel}``       counter    messages handed to the provider
``gateway_messages_failed_total{channel}``     counter    messages failed for good
``gateway_messages_retried_total{channel}``    counter    send attempts rescheduled
``gateway_messages_unknown_total{channel}``    counter    sends with an unknown outcome
``gateway_messages_reconciled_total``          counter    unknown outcomes the provider settled
``gateway_messages_requeued_unknown_total``    counter    unknown outcomes re-sent (possible duplicates)
``gateway_rate_limit_late_slots_total``        counter    rate-limit slots given up (event loop late)
``gateway_webhook_signature_failures_total``   counter    webhooks refused: missing/wrong signature
``gateway_send_latency_seconds{channel}``      histogram  time the provider took to take a message
``gateway_queue_depth{channel}``               gauge      queued or in-flight messages
``gateway_queue_lag_seconds``                  gauge      age of the oldest message due and waiting
``gateway_channel_config_alert{channel,code}`` gauge      1 while a channel reports a setting to fix
``gateway_translation_memory_hits_total``      counter    translations served by the memory
``gateway_translation_memory_misses_total``    counter    translations the memory did not have
``gateway_translation_engine_calls_total``     counter    calls to translation engines
``gateway_translation_memory_entries``         gauge      entries in the translation memory
``gateway_status_reports_deferred_total``      counter    delivery reports kept: message id not stored yet
``gateway_status_reports_applied_late_total``  counter    kept delivery reports applied once the id came
``gateway_status_reports_dropped_total``       counter    kept reports dropped (reason: expired, overflow)
``gateway_intake_spooled_total{kind}``         counter    replies/reports spooled: database unavailable
``gateway_intake_spool_replayed_total{kind}``  counter    spooled records replayed into the database
``gateway_intake_spool_rejected_total``        counter    spooled records set aside (torn, not applicable)
``gateway_intake_spool_records``               gauge      records waiting in the spool
``gateway_inbound_processing_retries_total``   counter    replies whose processing raised, tried again
``gateway_inbound_processing_failed_total``    counter    replies that kept failing, put before staff
``gateway_inbound_truncated_total{channel}``   counter    replies cut at ``inbound.max_text_chars``
=============================================  =========  ============================================

Figures that live in the database (queue, translation totals) are read at scrape time
(:meth:`GatewayMetrics.render`); the others are counted as things happen in this process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["LATENCY_BUCKETS", "MESSAGE_OUTCOMES", "ConfigAlert", "GatewayMetrics"]

log = logging.getLogger("gateway.alerts")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: ``gateway_messages_<outcome>_total`` counters and their help text.
MESSAGE_OUTCOMES: dict[str, str] = {
    "sent": "Messages handed to providers",
    "failed": "Messages failed for good",
    "retried": "Send attempts retried",
    "unknown": "Sends with an unknown outcome",
    "reconciled": "Unknown outcomes the provider settled",
    "requeued_unknown": "Unknown outcomes re-sent (possible duplicates)",
}


@dataclass(frozen=True, slots=True)
class ConfigAlert:
    """A configuration problem a channel reported: staff must change a setting (at the provider)."""

    channel: str
    code: str
    message: str
    since: datetime
    count: int

    def as_dict(self) -> dict[str, Any]:
        """For ``/healthz``."""
        return {
            "channel": self.channel,
            "code": self.code,
            "message": self.message,
            "since": self.since.isoformat(),
            "count": self.count,
        }


class _TranslationCollector(Collector):
    """Translation-memory totals as last read from the database (see :meth:`GatewayMetrics.render`)."""

    def __init__(self) -> None:
        self.status: dict[str, Any] = {}

    def collect(self) -> Iterator[Metric]:
        counters = (
            ("gateway_translation_memory_hits_total", "Translations served by the memory", "hits"),
            ("gateway_translation_memory_misses_total", "Translations the memory did not have", "misses"),
            ("gateway_translation_engine_calls_total", "Calls to translation engines", "engine_calls"),
        )
        for name, documentation, key in counters:
            yield CounterMetricFamily(
                name.removesuffix("_total"), documentation, value=float(self.status.get(key, 0))
            )
        yield GaugeMetricFamily(
            "gateway_translation_memory_entries",
            "Entries in the translation memory",
            value=float(self.status.get("memory_entries", 0)),
        )


class GatewayMetrics:
    """Every metric of one gateway, in its own :class:`~prometheus_client.CollectorRegistry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        # Labelled children of the per-message metrics, looked up once (labels() is not free
        # at thousands of messages a second).
        self._message_children: dict[tuple[str, str], Any] = {}
        self._latency_children: dict[str, Any] = {}
        self.messages: dict[str, Counter] = {
            outcome: Counter(f"gateway_messages_{outcome}", help_text, ["channel"], registry=registry)
            for outcome, help_text in MESSAGE_OUTCOMES.items()
        }
        self.late_slots = Counter(
            "gateway_rate_limit_late_slots",
            "Rate-limit slots given up because this process reached them late",
            ["channel"],
            registry=registry,
        )
        self.webhook_signature_failures = Counter(
            "gateway_webhook_signature_failures",
            "Webhook requests refused for a missing or wrong signature or secret",
            ["channel"],
            registry=registry,
        )
        self.send_latency = Histogram(
            "gateway_send_latency_seconds",
            "Provider send latency per channel",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "gateway_queue_depth", "Queued or in-flight messages", ["channel"], registry=registry
        )
        self.queue_lag = Gauge(
            "gateway_queue_lag_seconds",
            "Age of the oldest message that is due and still waiting",
            registry=registry,
        )
        self.config_alert = Gauge(
            "gateway_channel_config_alert",
            "1 while a channel reports a configuration problem staff must fix",
            ["channel", "code"],
            registry=registry,
        )
        self.hook_failures = Counter(
            "gateway_plugin_hook_failures",
            "Observer hook implementations that raised (the others still ran)",
            ["hook", "plugin"],
            registry=registry,
        )
        self._add_intake_metrics(registry)
        self._translation = _TranslationCollector()
        registry.register(self._translation)
        self._alerts: dict[tuple[str, str], ConfigAlert] = {}

    def _add_intake_metrics(self, registry: CollectorRegistry) -> None:
        """Delivery reports kept for later, the intake spool, reply processing and limits."""
        self.status_reports_deferred = Counter(
            "gateway_status_reports_deferred",
            "Delivery reports kept until their provider message id is stored",
            ["channel"],
            registry=registry,
        )
        self.status_reports_applied_late = Counter(
            "gateway_status_reports_applied_late",
            "Kept delivery reports applied once their provider message id was stored",
            ["channel"],
            registry=registry,
        )
        self.status_reports_dropped = Counter(
            "gateway_status_reports_dropped",
            "Kept delivery reports dropped unapplied (reason: expired or overflow)",
            ["channel", "reason"],
            registry=registry,
        )
        self.spooled = Counter(
            "gateway_intake_spooled",
            "Replies and delivery reports written to the local spool because the database "
            "could not take them in time",
            ["kind"],
            registry=registry,
        )
        self.spool_replayed = Counter(
            "gateway_intake_spool_replayed",
            "Spooled records replayed into the database",
            ["kind"],
            registry=registry,
        )
        self.spool_rejected = Counter(
            "gateway_intake_spool_rejected",
            "Spooled records that could not be read or applied (kept aside for a person)",
            registry=registry,
        )
        self.spool_depth = Gauge(
            "gateway_intake_spool_records",
            "Records waiting in the local spool",
            registry=registry,
        )
        self.inbound_retries = Counter(
            "gateway_inbound_processing_retries",
            "Replies whose processing raised and will be tried again",
            ["channel"],
            registry=registry,
        )
        self.inbound_failed = Counter(
            "gateway_inbound_processing_failed",
            "Replies whose processing kept failing, put before staff in the inbox",
            ["channel"],
            registry=registry,
        )
        self.inbound_truncated = Counter(
            "gateway_inbound_truncated",
            "Replies cut at inbound.max_text_chars (the whole text kept in the raw payload)",
            ["channel"],
            registry=registry,
        )

    # -- counting ---------------------------------------------------------------------------
    def message(self, outcome: str, channel: str) -> None:
        """Count one message ``outcome`` (a key of :data:`MESSAGE_OUTCOMES`) on ``channel``."""
        child = self._message_children.get((outcome, channel))
        if child is None:
            child = self._message_children[outcome, channel] = self.messages[outcome].labels(channel=channel)
        child.inc()

    def observe_send_latency(self, channel: str, seconds: float) -> None:
        """Record how long ``channel``'s provider took to take one message."""
        child = self._latency_children.get(channel)
        if child is None:
            child = self._latency_children[channel] = self.send_latency.labels(channel=channel)
        child.observe(seconds)

    def hook_failure(self, hook: str, plugin: str) -> None:
        """Count an observer hook implementation that raised."""
        self.hook_failures.labels(hook=hook, plugin=plugin).inc()

    def signature_failure(self, channel: str) -> None:
        """Count a webhook refused for its signature or secret."""
        self.webhook_signature_failures.labels(channel=channel).inc()

    def alert(self, channel: str, code: str, message: str) -> ConfigAlert:
        """Raise (or repeat) a configuration alert: an error log line the first time, the
        ``gateway_channel_config_alert`` gauge and the ``alerts`` of ``/healthz`` until restart."""
        key = (channel, str(code))
        previous = self._alerts.get(key)
        if previous is None:
            log.error("channel %s needs a configuration change (%s): %s", channel, code, message)
            alert = ConfigAlert(channel, str(code), message, datetime.now(UTC), 1)
        else:
            alert = ConfigAlert(channel, str(code), message, previous.since, previous.count + 1)
        self._alerts[key] = alert
        self.config_alert.labels(channel=channel, code=str(code)).set(1)
        return alert

    def alerts(self) -> list[ConfigAlert]:
        """Configuration alerts raised since start."""
        return list(self._alerts.values())

    # -- reading ----------------------------------------------------------------------------
    def value(self, name: str, **labels: str) -> float:
        """One sample's current value (0 when never set): ``value("gateway_messages_sent_total",
        channel="sms")``."""
        return self.registry.get_sample_value(name, labels) or 0.0

    def totals(self, outcome: str) -> dict[str, float]:
        """``{channel: count}`` of one message outcome."""
        out: dict[str, float] = {}
        for family in self.messages[outcome].collect():
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    out[sample.labels["channel"]] = sample.value
        return out

    async def render(self, gw: Gateway) -> bytes:
        """Read the database figures, then everything in the Prometheus text format."""
        depth = await gw.dispatcher.queue_depth()
        self.queue_depth.clear()
        for channel in sorted(set(gw.channels) | set(depth)):
            self.queue_depth.labels(channel=channel).set(depth.get(channel, 0))
        self.queue_lag.set(await gw.dispatcher.queue_lag_seconds())
        self._translation.status = dict(await gw.translation.status())
        return generate_latest(self.registry)
