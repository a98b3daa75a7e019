"""Background watchers that feed the status stream into a router.

One long-lived ``WatchStatus`` stream per router: routing a job never makes a
status call.  The stream and its reconnection are the SDK's: it resumes after
any error, for ever, and tells the watcher about each gap at once
(``on_disconnect``), which the router counts against Celery.  The breaker's
silence timeout covers a stream that stays open but goes quiet.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from celerystatus import (
    AsyncCeleryStatusClient,
    CeleryStatus,
    CeleryStatusClient,
    CeleryStatusError,
    RetryPolicy,
    StatusView,
)

__all__ = ["AsyncStatusWatcher", "StatusWatcher", "watch_retry_policy"]

log = logging.getLogger(__name__)


def watch_retry_policy(retry_delay: float = 0.5) -> RetryPolicy:
    """Resume after every error, for ever, about every ``retry_delay`` seconds.

    The SDK's default resumes only after ``Unavailable`` and gives up after a
    minute; a router must keep watching whatever happens, and hears about
    every failure through ``on_disconnect`` instead of an exception.
    """
    return RetryPolicy.watch_forever(initial_backoff=retry_delay, max_backoff=retry_delay)


def _failure(on_failure: Callable[[str], object]) -> Callable[[CeleryStatusError], None]:
    def lost(error: CeleryStatusError) -> None:
        failure = f"status service: {error}"
        log.warning("%s; Celery counts as unhealthy", failure)
        on_failure(failure)

    return lost


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
        self.client = CeleryStatusClient(status, retries=None) if isinstance(status, str) else status
        self._on_status = on_status
        self._on_failure = on_failure
        self._min_interval = min_interval
        self._retries = watch_retry_policy(retry_delay)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="celery-router-status", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        stream = self.client.watch_status(
            self._min_interval,
            view=StatusView.SUMMARY,
            on_disconnect=_failure(self._on_failure),
            retries=self._retries,
        )
        try:
            for status in stream:
                if self._stop.is_set():
                    return
                self._on_status(status)
        except Exception as exc:  # the SDK resumes after every call error; anything else is fatal
            if not self._stop.is_set():
                log.exception("status watcher stopped")
                self._on_failure(f"status watcher: {type(exc).__name__}: {exc}")
        finally:
            stream.close()

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
        self._retries = watch_retry_policy(retry_delay)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        # grpc.aio channels bind to the loop that creates them, hence created here.
        if isinstance(self._status, str):
            self.client = AsyncCeleryStatusClient(self._status, retries=None)
        else:
            self.client = self._status
        self._task = asyncio.get_running_loop().create_task(self._run(), name="celery-router-status")

    async def _run(self) -> None:
        assert self.client is not None
        stream = self.client.watch_status(
            self._min_interval,
            view=StatusView.SUMMARY,
            on_disconnect=_failure(self._on_failure),
            retries=self._retries,
        )
        try:
            async for status in stream:
                self._on_status(status)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("status watcher stopped")
            self._on_failure(f"status watcher: {type(exc).__name__}: {exc}")
        finally:
            await stream.aclose()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self._owned and self.client is not None:
            await self.client.close()
