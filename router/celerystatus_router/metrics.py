"""Prometheus metrics of one router (registry passed in, or a private one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .breaker import BreakerState

__all__ = ["RouterMetrics"]

# A healthy publish takes well under a millisecond; the deadline is usually 0.1-2 s.
SEND_BUCKETS = (0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class RouterMetrics:
    """``registry=None`` keeps the metrics private (several routers in one process)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, namespace: str = "celery_router") -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.routed = Counter(
            "jobs", "Jobs routed, by backend and reason.", ["backend", "reason"],
            namespace=namespace, registry=self.registry,
        )  # fmt: skip
        self.send_seconds = Histogram(
            "send_seconds", "Time to publish one job, by backend and outcome.", ["backend", "outcome"],
            namespace=namespace, registry=self.registry, buckets=SEND_BUCKETS,
        )  # fmt: skip
        self.breaker_state = Gauge(
            "breaker_state", "0 closed (Celery), 1 half-open (probing), 2 open (legacy queue).",
            namespace=namespace, registry=self.registry,
        )  # fmt: skip
        self.breaker_transitions = Counter(
            "breaker_transitions", "Breaker state changes, by the state entered.", ["state"],
            namespace=namespace, registry=self.registry,
        )  # fmt: skip
        self.drained = Counter(
            "drained_jobs", "Jobs moved from the legacy queue to Celery.",
            namespace=namespace, registry=self.registry,
        )  # fmt: skip
        self.breaker_state.set(BreakerState.OPEN.gauge_value)
        # Label children resolved once: .labels() costs a dict lookup and a lock per call.
        self._routed: dict[tuple[str, str], Counter] = {}
        self._sends: dict[tuple[str, str], Histogram] = {}

    def count(self, backend: str, reason: str) -> None:
        child = self._routed.get((backend, reason))
        if child is None:
            child = self._routed[(backend, reason)] = self.routed.labels(backend, reason)
        child.inc()

    def observe_send(self, backend: str, outcome: str, seconds: float) -> None:
        child = self._sends.get((backend, outcome))
        if child is None:
            child = self._sends[(backend, outcome)] = self.send_seconds.labels(backend, outcome)
        child.observe(seconds)

    def state_changed(self, old: BreakerState, new: BreakerState, reason: str) -> None:
        self.breaker_state.set(new.gauge_value)
        self.breaker_transitions.labels(new.value).inc()
