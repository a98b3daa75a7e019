"""The blocking router."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from prometheus_client import CollectorRegistry

from celerystatus import CeleryStatusClient

from ._base import RouterBase, RouteResult
from .breaker import BreakerConfig, BreakerState, Permit
from .dedupe import Dedupe
from .drain import DrainReport, drain
from .errors import JobNotRouted, LegacyQueueError, SendFailed
from .health import StatusWatcher
from .jobs import Job
from .legacy.base import LegacyQueue
from .metrics import RouterMetrics
from .outbox import ReconcileReport, RedisOutbox, reconcile
from .policy import HealthPolicy
from .producer import CeleryProducer

__all__ = ["QueueRouter"]


class QueueRouter(RouterBase):
    """Sends each job to Celery while it is healthy, else to the legacy queue.

    ::

        router = QueueRouter("redis://broker:6379/0", legacy=RedisLegacyQueue.from_url("redis://legacy/0"),
                             status="status-service:50051", policy=HealthPolicy(min_workers=2))
        with router:
            result = router.route("tasks.evaluate_code", (eval_id, code), job_id=eval_id)

    ``status`` is the status service's ``HOST:PORT`` or a client; the router
    keeps one watch stream open on it.  Without ``status`` the caller feeds
    snapshots to :meth:`observe` itself.  ``send_timeout`` bounds each publish.
    """

    def __init__(
        self,
        broker_url: str | None = None,
        *,
        legacy: LegacyQueue | None,
        status: str | CeleryStatusClient | None = None,
        policy: HealthPolicy | None = None,
        breaker: BreakerConfig | None = None,
        send_timeout: float = 1.0,
        producer: CeleryProducer | None = None,
        metrics: RouterMetrics | CollectorRegistry | None = None,
        watch_interval: float | None = None,
        outbox: RedisOutbox | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            broker_url,
            legacy=legacy,
            policy=policy,
            breaker=breaker,
            send_timeout=send_timeout,
            producer=producer,
            metrics=metrics,
            outbox=outbox,
            clock=clock,
        )
        self._watcher = (
            StatusWatcher(status, self.observe, self.observe_failure, min_interval=watch_interval)
            if status is not None
            else None
        )

    def start(self) -> QueueRouter:
        if not self._started and self._watcher is not None:
            self._watcher.start()
        self._started = True
        return self

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
        if self._owns_producer:
            self.producer.close()

    def __enter__(self) -> QueueRouter:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def route(
        self,
        task_name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        job_id: str | None = None,
        queue: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> RouteResult:
        """Hand one job to Celery or the legacy queue; raises :class:`JobNotRouted` if neither took it.

        ``job_id`` (default: a new UUID) becomes the Celery task id; pass your
        own (e.g. the evaluation id) to make retries of ``route`` idempotent.
        """
        return self.route_job(self._job(task_name, args, kwargs, job_id, queue, options))

    def route_job(self, job: Job) -> RouteResult:
        started = time.perf_counter()
        permit = self.breaker.acquire()
        celery_error: SendFailed | None = None
        if permit is not Permit.LEGACY:
            try:
                self.producer.send(job)
            except SendFailed as exc:
                celery_error = exc
                reason, detail = self._send_failed(permit, started, exc)
            else:
                return self._sent(job, permit, started)
        else:
            reason, detail = self._open_reason()
        if self.legacy is None:
            raise JobNotRouted(job.id, celery_error, LegacyQueueError("no legacy queue configured"))
        push_started = time.perf_counter()
        try:
            self.legacy.push(job)
        except LegacyQueueError as exc:
            raise JobNotRouted(job.id, celery_error, exc) from exc
        return self._legacy_done(job, reason, detail, started, push_started)

    def drain(self, max_jobs: int | None = None) -> DrainReport:
        """Move jobs from the legacy queue to Celery while the breaker stays closed."""
        if self.legacy is None:
            return DrainReport(stopped="no legacy queue configured")
        return drain(
            self.legacy,
            self.producer,
            max_jobs=max_jobs,
            healthy=lambda: self.breaker.state is BreakerState.CLOSED,
            metrics=self.metrics,
            outbox=self.outbox,
        )

    def reconcile(self, dedupe: Dedupe, *, older_than: float = 60.0, limit: int = 500) -> ReconcileReport:
        """Resend jobs from the outbox that no consumer recorded (needs ``outbox=``; only while closed)."""
        if self.outbox is None or self.breaker.state is not BreakerState.CLOSED:
            return ReconcileReport()
        return reconcile(self.outbox, dedupe, self.producer, older_than=older_than, limit=limit)

    def wait_for_state(self, *states: BreakerState, timeout: float, interval: float = 0.05) -> bool:
        """Block until the breaker is in one of ``states``; False on timeout.

        After start-up the breaker goes OPEN -> HALF_OPEN once the first healthy
        snapshots arrived; the first routed job then closes it.
        """
        deadline = time.monotonic() + timeout
        while self.breaker.state not in states:
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)
        return True
