"""Everything the sync and asyncio routers share; no I/O happens here.

The two routers differ only in how they wait for a publish, a legacy push and
the status stream.  Decisions (the breaker), health assessment (the policy),
results and metrics are made in this one class.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from celerystatus.models import CeleryStatus

from .breaker import BreakerConfig, BreakerState, CircuitBreaker, Permit
from .errors import LegacyQueueError, SendFailed, SendTimeout
from .jobs import Job
from .legacy.base import LegacyQueue
from .metrics import RouterMetrics
from .outbox import RedisOutbox
from .policy import HealthPolicy
from .producer import CeleryProducer

__all__ = ["Backend", "Reason", "RouteResult", "RouterBase"]

log = logging.getLogger(__name__)


class Backend(str, enum.Enum):
    CELERY = "celery"
    LEGACY = "legacy"


class Reason(str, enum.Enum):
    HEALTHY = "healthy"
    """Breaker closed: the job went to Celery."""
    PROBE = "probe"
    """Breaker half-open: this job tested whether Celery takes jobs again."""
    BREAKER_OPEN = "breaker_open"
    """Celery is considered unhealthy; the job went straight to the legacy queue."""
    SEND_FAILED = "send_failed"
    """The broker refused or lost the publish; the job went to the legacy queue."""
    SEND_TIMEOUT = "send_timeout"
    """The publish hit its deadline; the job went to the legacy queue."""


@dataclass(frozen=True, slots=True)
class RouteResult:
    backend: Backend
    job_id: str
    reason: Reason
    detail: str = ""
    """Human-readable cause: the breaker's reason or the send error."""
    seconds: float = 0.0
    """Time spent in ``route``."""

    @property
    def celery(self) -> bool:
        return self.backend is Backend.CELERY


def _metrics(value: RouterMetrics | CollectorRegistry | None) -> RouterMetrics:
    return value if isinstance(value, RouterMetrics) else RouterMetrics(value)


class RouterBase:
    def __init__(
        self,
        broker_url: str | None,
        *,
        legacy: LegacyQueue | None,
        policy: HealthPolicy | None = None,
        breaker: BreakerConfig | None = None,
        send_timeout: float = 1.0,
        producer: CeleryProducer | None = None,
        metrics: RouterMetrics | CollectorRegistry | None = None,
        outbox: RedisOutbox | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # A producer passed in belongs to the caller, who closes it.
        self._owns_producer = producer is None
        if producer is None:
            if broker_url is None:
                raise ValueError("give broker_url or producer")
            producer = CeleryProducer(broker_url, send_timeout=send_timeout)
        self.producer = producer
        self._started = False
        self.legacy = legacy
        self.outbox = outbox
        self.policy = policy or HealthPolicy()
        self.metrics = _metrics(metrics)
        self.breaker = CircuitBreaker(breaker, clock=clock, on_change=self.metrics.state_changed)
        self.last_status: CeleryStatus | None = None

    # --- health --------------------------------------------------------------

    def observe(self, status: CeleryStatus) -> str | None:
        """Feed one snapshot (the watcher does this); returns why it is unhealthy, or None."""
        self.last_status = status
        reason = self.policy.assess(status)
        self.breaker.observe(reason)
        return reason

    def observe_failure(self, reason: str) -> None:
        """The status service could not be asked: that counts as an unhealthy observation."""
        self.breaker.observe(reason)

    @property
    def state(self) -> BreakerState:
        return self.breaker.state

    # --- the pieces of route() -------------------------------------------------

    @staticmethod
    def _job(
        task_name: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any] | None,
        job_id: str | None,
        queue: str | None,
        options: Mapping[str, Any] | None,
    ) -> Job:
        return Job.create(task_name, args, kwargs, job_id=job_id, queue=queue, options=options)

    def _sent(self, job: Job, permit: Permit, started: float) -> RouteResult:
        if self.outbox is not None:
            try:
                self.outbox.add(job)
            except LegacyQueueError as exc:
                # The job is with Celery already; only the later audit of it is lost.
                log.warning("%s", exc)
        seconds = time.perf_counter() - started
        self.breaker.record_send(True, permit)
        reason = Reason.PROBE if permit is Permit.PROBE else Reason.HEALTHY
        self.metrics.observe_send("celery", "ok", seconds)
        self.metrics.count("celery", reason.value)
        return RouteResult(Backend.CELERY, job.id, reason, seconds=seconds)

    def _send_failed(self, permit: Permit, started: float, error: SendFailed) -> tuple[Reason, str]:
        timed_out = isinstance(error, SendTimeout)
        self.metrics.observe_send("celery", "timeout" if timed_out else "error", time.perf_counter() - started)
        self.breaker.record_send(False, permit, str(error))
        return (Reason.SEND_TIMEOUT if timed_out else Reason.SEND_FAILED), str(error)

    def _open_reason(self) -> tuple[Reason, str]:
        return Reason.BREAKER_OPEN, self.breaker.reason

    def _legacy_done(self, job: Job, reason: Reason, detail: str, started: float, push_started: float) -> RouteResult:
        now = time.perf_counter()
        self.metrics.observe_send("legacy", "ok", now - push_started)
        self.metrics.count("legacy", reason.value)
        return RouteResult(Backend.LEGACY, job.id, reason, detail, seconds=now - started)
