"""Background watchers that feed the status stream into a router.

One long-lived ``WatchStatus`` stream per router: routing a job never makes a
status call.  When the stream fails the watcher reports an unhealthy
observation and reconnects; the breaker's silence timeout covers a stream
that stays open but goes quiet.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from celerystatus import AsyncCeleryStatusClient, CeleryStatusClient, CeleryStatusError, RetryPolicy, StatusView
from celerystatus.models import CeleryStatus

__all__ = ["AsyncStatusWatcher", "StatusWatcher", "watch_retry_policy"]

log = logging.getLogger(__name__)


def watch_retry_policy() -> RetryPolicy:
    # The SDK would otherwise resume silently for a minute; the router must hear
    # about every failure at once to count it against Celery.
    return RetryPolicy(attempts=1, reconnect_timeout=0.0)


class StatusWatcher:
    """A daemon thread reading the stream; ``on_status``/``on_failure`` run on that thread."""

    def __init__(
        self,
        status: str | CeleryStatusClient,
        on_status: Callable[[CeleryStatus], object],
        on_failure: Callable[[str], object],
        *,
        min_interval: float | None = None,
        retry_delay: float = 0.5,
    ) -> None:
        self._owned = isinstance(status, str)
        self.client = CeleryStatusClient(status, retries=watch_retry_policy()) if isinstance(status, str) else status
        self._on_status = on_status
        self._on_failure = on_failure
        self._min_interval = min_interval
        self._retry_delay = retry_delay
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="celery-router-status", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for status in self.client.watch_status(self._min_interval, view=StatusView.SUMMARY):
                    if self._stop.is_set():
                        return
                    self._on_status(status)
                failure = "status stream ended"
            except CeleryStatusError as exc:
                failure = f"status service: {exc}"
            except Exception as exc:  # a closed channel raises ValueError; anything else must not kill us
                failure = f"status watcher: {type(exc).__name__}: {exc}"
            if self._stop.is_set():
                return
            log.warning("%s; Celery counts as unhealthy", failure)
            self._on_failure(failure)
            self._stop.wait(self._retry_delay)

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._owned:
            self.client.close()  # ends the blocked stream read at once
        if self._thread.is_alive():
            self._thread.join(timeout)


class AsyncStatusWatcher:
    """The asyncio twin: a task on the running loop."""

    def __init__(
        self,
        status: str | AsyncCeleryStatusClient,
        on_status: Callable[[CeleryStatus], object],
        on_failure: Callable[[str], object],
        *,
        min_interval: float | None = None,
        retry_delay: float = 0.5,
    ) -> None:
        self._owned = isinstance(status, str)
        self._status = status
        self.client: AsyncCeleryStatusClient | None = None
        self._on_status = on_status
        self._on_failure = on_failure
        self._min_interval = min_interval
        self._retry_delay = retry_delay
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        # grpc.aio channels bind to the loop that creates them, hence created here.
        if isinstance(self._status, str):
            self.client = AsyncCeleryStatusClient(self._status, retries=watch_retry_policy())
        else:
            self.client = self._status
        self._task = asyncio.get_running_loop().create_task(self._run(), name="celery-router-status")

    async def _run(self) -> None:
        assert self.client is not None
        while True:
            try:
                async for status in self.client.watch_status(self._min_interval, view=StatusView.SUMMARY):
                    self._on_status(status)
                failure = "status stream ended"
            except CeleryStatusError as exc:
                failure = f"status service: {exc}"
            except Exception as exc:
                failure = f"status watcher: {type(exc).__name__}: {exc}"
            log.warning("%s; Celery counts as unhealthy", failure)
            self._on_failure(failure)
            await asyncio.sleep(self._retry_delay)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self._owned and self.client is not None:
            await self.client.close()
