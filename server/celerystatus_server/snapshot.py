"""The latest cluster snapshot, shared between the collector thread and asyncio servers.

The collector publishes a new immutable ``CeleryStatus`` per round; readers never
copy or lock anything to read it, and async readers can wait for the next one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from celerystatus.v1 import celery_status_pb2 as pb

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One published status. ``status`` must not be mutated by readers."""

    version: int
    status: pb.CeleryStatus
    #: time.monotonic() when the data was observed; drives the age field.
    observed_monotonic: float

    def age(self, now: float | None = None) -> float:
        return max(0.0, (time.monotonic() if now is None else now) - self.observed_monotonic)


class SnapshotStore:
    """Holds the latest snapshot; thread-safe publish, async wait for newer ones."""

    def __init__(self, initial: pb.CeleryStatus | None = None) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._latest = Snapshot(0, initial or pb.CeleryStatus(), time.monotonic())
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Snapshot]]] = []
        self._listeners: list[Callable[[Snapshot], None]] = []

    def add_listener(self, listener: Callable[[Snapshot], None]) -> None:
        """Call *listener* with every snapshot published from now on, in the publishing thread."""
        self._listeners.append(listener)

    def latest(self) -> Snapshot:
        return self._latest

    def publish(self, status: pb.CeleryStatus, observed_monotonic: float | None = None) -> Snapshot:
        with self._lock:
            snap = Snapshot(
                self._latest.version + 1,
                status,
                time.monotonic() if observed_monotonic is None else observed_monotonic,
            )
            self._latest = snap
            waiters, self._waiters = self._waiters, []
            self._changed.notify_all()
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, future, snap)
            except RuntimeError:  # loop already closed: nobody is waiting any more
                pass
        for listener in self._listeners:
            try:
                listener(snap)
            except Exception:
                log.exception("snapshot listener failed")
        return snap

    async def wait_newer(self, version: int, timeout: float | None = None) -> Snapshot | None:
        """The first snapshot with a version above *version*, or None after *timeout*."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._latest.version > version:
                return self._latest
            future: asyncio.Future[Snapshot] = loop.create_future()
            self._waiters.append((loop, future))
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            if not future.done():
                with self._lock:
                    self._waiters = [w for w in self._waiters if w[1] is not future]
                future.cancel()

    def wait_newer_blocking(self, version: int, timeout: float) -> Snapshot | None:
        """Thread version of :meth:`wait_newer`, for tests and benchmarks."""
        with self._changed:
            self._changed.wait_for(lambda: self._latest.version > version, timeout)
            return self._latest if self._latest.version > version else None


def _resolve(future: asyncio.Future[Snapshot], snap: Snapshot) -> None:
    if not future.done():
        future.set_result(snap)
