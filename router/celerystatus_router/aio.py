"""The asyncio router: the same decisions as :class:`~celerystatus_router.QueueRouter`.

Celery publishes are blocking calls; they run on the producer's thread pool
and are awaited with a deadline, so the event loop never waits on the broker.
Legacy pushes run in the default executor for the same reason.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from prometheus_client import CollectorRegistry

from celerystatus import AsyncCeleryStatusClient

from ._base import RouterBase, RouteResult
from .breaker import BreakerConfig, BreakerState, Permit
from .drain import DrainReport, drain
from .errors import JobNotRouted, LegacyQueueError, SendFailed
from .health import AsyncStatusWatcher
from .jobs import Job
from .legacy.base import LegacyQueue
from .metrics import RouterMetrics
from .outbox import RedisOutbox
from .policy import HealthPolicy
from .producer import CeleryProducer

__all__ = ["AsyncQueueRouter"]


class AsyncQueueRouter(RouterBase):
    """``async with AsyncQueueRouter(...) as router: await router.route(...)``.

    Same arguments as :class:`~celerystatus_router.QueueRouter`; ``status``
    may be an :class:`~celerystatus.AsyncCeleryStatusClient`.
    """

    def __init__(
        self,
        broker_url: str | None = None,
        *,
        legacy: LegacyQueue | None,
        status: str | AsyncCeleryStatusClient | None = None,
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
            AsyncStatusWatcher(status, self.observe, self.observe_failure, min_interval=watch_interval)
            if status is not None
            else None
        )

    async def start(self) -> AsyncQueueRouter:
        if not self._started and self._watcher is not None:
            self._watcher.start()
        self._started = True
        return self

    async def close(self) -> None:
        if self._watcher is not None:
            await self._watcher.close()
        if self._owns_producer:
            self.producer.close()

    async def __aenter__(self) -> AsyncQueueRouter:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def route(
        self,
        task_name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        job_id: str | None = None,
        queue: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> RouteResult:
        """See :meth:`celerystatus_router.QueueRouter.route`."""
        return await self.route_job(self._job(task_name, args, kwargs, job_id, queue, options))

    async def route_job(self, job: Job) -> RouteResult:
        started = time.perf_counter()
        permit = self.breaker.acquire()
        celery_error: SendFailed | None = None
        if permit is not Permit.LEGACY:
            try:
                await self.producer.send_async(job)
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
            await asyncio.to_thread(self.legacy.push, job)
        except LegacyQueueError as exc:
            raise JobNotRouted(job.id, celery_error, exc) from exc
        return self._legacy_done(job, reason, detail, started, push_started)

    async def drain(self, max_jobs: int | None = None) -> DrainReport:
        if self.legacy is None:
            return DrainReport(stopped="no legacy queue configured")
        legacy = self.legacy
        return await asyncio.to_thread(
            drain,
            legacy,
            self.producer,
            max_jobs=max_jobs,
            healthy=lambda: self.breaker.state is BreakerState.CLOSED,
            metrics=self.metrics,
            outbox=self.outbox,
        )

    async def wait_for_state(self, *states: BreakerState, timeout: float, interval: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout
        while self.breaker.state not in states:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(interval)
        return True
