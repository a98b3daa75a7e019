"""Prometheus metrics computed from the hub's latest snapshot.

A scrape reads what the WatchStatus stream already delivered; it never makes
the server inspect the cluster, so scrape frequency does not load Celery.
Gauges and counters are produced by a custom collector at scrape time; the
inspection-duration histogram is the one stateful metric, observed once for
each new inspection round the stream shows.

While the bridge has no stream from the status service it reports only
``celery_status_backend_up 0``: the cluster series go absent rather than
dropping to zero, so "no workers" alerts do not fire for a bridge outage.

The snapshot's series are rendered once per snapshot (and stream state) and
exposition format, and kept as bytes. What moves between two snapshots (the
snapshot's age, the process's CPU, memory and garbage collector) is a small
registry of its own, rendered per scrape and appended.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from celerystatus.models import CeleryStatus
from celerystatus.scaling import DEFAULT_TARGET_UTILISATION, ClusterLoad, desired_workers

from .alerts import AlertHub
from .hub import EncodedStatus, StatusHub

# Inspection rounds wait about a second for worker replies; buckets straddle that.
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

# A `_created` series per histogram and counter doubles the output for
# nothing a dashboard reads; the switch is process-wide in prometheus_client.
disable_created_metrics()  # type: ignore[no-untyped-call]


def _desired_workers(data: dict[str, Any]) -> int:
    # The counters are enough for the whole cluster; converting the task lists
    # on every scrape would cost for nothing.
    counters = CeleryStatus.from_dict({k: v for k, v in data.items() if k != "queue_details"})
    return desired_workers(ClusterLoad.of(counters), utilisation=DEFAULT_TARGET_UTILISATION)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class SnapshotCollector(Collector):
    def __init__(self, hub: StatusHub) -> None:
        self._hub = hub

    def collect(self) -> Iterator[Metric]:
        hub = self._hub
        yield GaugeMetricFamily(
            "celery_status_backend_up",
            "1 while the bridge's stream from the status service is open.",
            value=1.0 if hub.stream_connected else 0.0,
        )
        snapshot = hub.latest
        if snapshot is None or not snapshot.from_backend or not hub.stream_connected:
            return
        data = snapshot.data
        for name, key, help_text in (
            ("celery_workers", "workers", "Live Celery workers."),
            ("celery_active_tasks", "active_tasks", "Tasks executing now."),
            ("celery_scheduled_tasks", "scheduled_tasks", "Tasks waiting for their ETA."),
            ("celery_reserved_tasks", "reserved_tasks", "Tasks prefetched by workers."),
        ):
            yield GaugeMetricFamily(name, help_text, value=_number(data.get(key)) or 0.0)
        yield GaugeMetricFamily(
            "celery_workers_desired",
            "Workers the backlog needs (active + reserved + waiting in the broker) at 80% of the mean pool"
            " concurrency: celerystatus.scaling.desired_workers, as scaling_advice computes it before its"
            " min/max clamp.",
            value=float(_desired_workers(data)),
        )
        yield GaugeMetricFamily(
            "celery_connected",
            "1 when the last inspection round reached the broker.",
            value=1.0 if data.get("connected") else 0.0,
        )
        yield GaugeMetricFamily(
            "celery_status_stale",
            "1 when the latest round failed and an older snapshot is served.",
            value=1.0 if data.get("stale") else 0.0,
        )

        # Exposed as celery_worker_total: a counter that resets when the worker
        # restarts, which rate() handles, so the spec's
        # rate(celery_worker_total[5m]) keeps working.
        per_worker = CounterMetricFamily(
            "celery_worker",
            "Tasks accepted by the worker since it started.",
            labels=["worker"],
        )
        for worker, stats in sorted((data.get("worker_stats") or {}).items()):
            per_worker.add_metric([worker], _number(stats.get("total")) or 0.0)
        yield per_worker

        # Per-worker pool figures, for saturation and crashed-process alerts in Prometheus.
        active = GaugeMetricFamily("celery_worker_active_tasks", "Tasks executing on the worker.", labels=["worker"])
        slots = GaugeMetricFamily(
            "celery_worker_pool_max_concurrency", "Pool slots of the worker (max-concurrency).", labels=["worker"]
        )
        processes = GaugeMetricFamily(
            "celery_worker_pool_processes", "Live pool processes of a prefork worker.", labels=["worker"]
        )
        for worker, stats in sorted((data.get("worker_stats") or {}).items()):
            pool = stats.get("pool") or {}
            active.add_metric([worker], _number(stats.get("active_tasks")) or 0.0)
            slots.add_metric([worker], _number(pool.get("max-concurrency")) or 0.0)
            if pool.get("processes"):
                processes.add_metric([worker], float(len(pool["processes"])))
        yield active
        yield slots
        yield processes

        depth = GaugeMetricFamily("celery_queue_messages", "Messages waiting in the broker.", labels=["queue"])
        for queue, info in sorted((data.get("queues") or {}).items()):
            depth.add_metric([queue], _number((info or {}).get("messages")) or 0.0)
        yield depth

        replica = data.get("replica")
        if isinstance(replica, dict):
            # Only replicated servers (--coordination-url) report these.
            yield GaugeMetricFamily(
                "celery_status_replica_leader",
                "1 when the replica serving this bridge holds the lease and runs the collector.",
                value=1.0 if replica.get("role") == "leader" else 0.0,
            )
            yield GaugeMetricFamily(
                "celery_status_replica_degraded",
                "1 when the replica cannot reach its coordination store and collects on its own.",
                value=1.0 if replica.get("degraded") else 0.0,
            )

        inspection = data.get("inspection") or {}
        rounds = _number(inspection.get("round"))
        if rounds is not None:
            yield CounterMetricFamily(
                "celery_inspection_rounds",
                "Inspection rounds run by the status server since it started.",
                value=rounds,
            )
        errors = _number(inspection.get("errors"))
        if errors is not None:
            yield CounterMetricFamily(
                "celery_inspection_errors",
                "Inspection rounds that failed since the status server started.",
                value=errors,
            )

        history = data.get("history") or {}
        if history.get("state"):
            yield CounterMetricFamily(
                "celery_status_history_dropped",
                "History samples and task runs dropped because the store could not keep up.",
                value=_number(history.get("dropped")) or 0.0,
            )
            yield GaugeMetricFamily(
                "celery_status_history_degraded",
                "1 while the history store is slow or unreachable.",
                value=1.0 if history.get("state") == "degraded" else 0.0,
            )


class AlertCollector(Collector):
    """``celery_status_alerts`` and notification counters, from the alert stream."""

    def __init__(self, hub: AlertHub) -> None:
        self._hub = hub

    def collect(self) -> Iterator[Metric]:
        update = self._hub.latest
        if update is None:
            return
        alerts = GaugeMetricFamily(
            "celery_status_alerts",
            "Alerts of the status service, by name, severity and state (pending, firing, resolved).",
            labels=["alertname", "severity", "state"],
        )
        counts: dict[tuple[str, str, str], int] = {}
        for alert in update.alerts:
            key = (alert.name, alert.severity, alert.state.value)
            counts[key] = counts.get(key, 0) + 1
        for key, count in sorted(counts.items()):
            alerts.add_metric(list(key), float(count))
        yield alerts
        sent = CounterMetricFamily(
            "celery_status_alert_notifications",
            "Notifications delivered by each receiver since the status server started.",
            labels=["receiver", "kind"],
        )
        failed = CounterMetricFamily(
            "celery_status_alert_notification_failures",
            "Notifications a receiver gave up on (after retries) or dropped (queue full).",
            labels=["receiver", "kind", "reason"],
        )
        for receiver in update.receivers:
            sent.add_metric([receiver.name, receiver.kind], float(receiver.sent))
            failed.add_metric([receiver.name, receiver.kind, "failed"], float(receiver.failed))
            failed.add_metric([receiver.name, receiver.kind, "dropped"], float(receiver.dropped))
        yield sent
        yield failed


class AgeCollector(Collector):
    """The latest snapshot's age, the one cluster series that moves between snapshots."""

    def __init__(self, hub: StatusHub) -> None:
        self._hub = hub

    def collect(self) -> Iterator[Metric]:
        hub = self._hub
        snapshot = hub.latest
        if snapshot is None or not snapshot.from_backend or not hub.stream_connected:
            return
        age = _number(snapshot.data.get("age"))
        if age is not None:
            # Aged locally since receipt rather than from observed_at, so a
            # clock difference between bridge and server does not show up.
            yield GaugeMetricFamily(
                "celery_snapshot_age_seconds",
                "Age of the latest snapshot.",
                value=age + (time.monotonic() - snapshot.received_at),
            )


_EOF = b"# EOF\n"
# Renderings kept per snapshot: one per exposition format a scraper asked for.
# The Accept header chooses the format (and version), so the number is capped.
_MAX_FORMATS = 4


class BridgeMetrics:
    """The metrics of one bridge app, in registries of their own."""

    def __init__(self, hub: StatusHub, alerts: AlertHub | None = None) -> None:
        #: What changes only with a new snapshot: rendered once per snapshot and format.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SnapshotCollector(hub))
        self.inspection_duration = Histogram(
            "celery_inspection_duration_seconds",
            "Wall time of an inspection round, once per round seen by the bridge.",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        # The standard process_* / python_* series, in registries of this
        # bridge rather than the global one so that two bridges in a process
        # do not collide. The platform never changes; the rest is per scrape.
        PlatformCollector(registry=self.registry)
        #: What moves between snapshots: rendered per scrape, after the snapshot's series.
        self.runtime = CollectorRegistry(auto_describe=False)
        self.runtime.register(AgeCollector(hub))
        ProcessCollector(registry=self.runtime)
        GCCollector(registry=self.runtime)
        if alerts is not None:
            # Alerts change between snapshots (a `for` runs out), so they are per scrape too.
            self.runtime.register(AlertCollector(alerts))
        self._last_round: float | None = None
        self._hub = hub
        #: What the cached renderings were made from, and the bytes per content type.
        self._rendered_for: tuple[EncodedStatus | None, bool] | None = None
        self._rendered: dict[str, bytes] = {}
        #: Renderings of the snapshot's series so far (tests check it does not grow per scrape).
        self.renders = 0
        hub.add_listener(self.observe)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition the ``Accept`` header asks for (OpenMetrics or the text format), and its content type."""
        encode, content_type = choose_encoder(accept)
        key = (self._hub.latest, self._hub.stream_connected)
        cached = self._rendered_for
        if cached is None or cached[0] is not key[0] or cached[1] != key[1]:
            self._rendered_for = key
            self._rendered = {}
        body = self._rendered.get(content_type)
        if body is None:
            body = encode(self.registry).removesuffix(_EOF)
            self.renders += 1
            if len(self._rendered) < _MAX_FORMATS:
                self._rendered[content_type] = body
        # The runtime part ends the exposition, with OpenMetrics' "# EOF" when that is the format.
        return body + encode(self.runtime), content_type

    def observe(self, snapshot: EncodedStatus) -> None:
        inspection = snapshot.data.get("inspection") or {}
        round_number = _number(inspection.get("round"))
        duration = _number(inspection.get("duration"))
        if not snapshot.from_backend or round_number is None or duration is None:
            return
        # The stream repeats a round when it reconnects or when only the age
        # changed; observing it again would count the same round twice.
        if round_number == self._last_round or round_number <= 0:
            return
        self._last_round = round_number
        self.inspection_duration.observe(duration)
