"""What trend-based rules ask about the past, and an in-memory answer to it.

:class:`TrendSource` is the seam between the alert rules and whatever keeps
the cluster's history. :class:`SnapshotRing` answers it from a bounded ring of
recent snapshots held in memory (and task runs learnt by following task ids
from one snapshot to the next); a persistent history store can implement the
same protocol and replace it without touching a rule.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from celerystatus._values import timestamp_to_epoch
from celerystatus.v1 import celery_status_pb2 as pb

__all__ = ["RecordingTrendSource", "RuntimeStats", "Saturation", "SnapshotRing", "TrendSource", "percentile"]


@dataclass(frozen=True, slots=True)
class RuntimeStats:
    """Runtimes of one task name over a window (seconds)."""

    count: int
    p95: float
    max: float


@dataclass(frozen=True, slots=True)
class Saturation:
    """Busy pool slots / all pool slots, and when it reaches 1 at the current trend."""

    now: float
    #: None when the trend is flat or falling, or there are too few samples.
    seconds_to_full: float | None


@runtime_checkable
class TrendSource(Protocol):
    """Queries of the recent past; every window is in seconds, ending at the latest sample."""

    def queue_growth(self, queue: str, window: float) -> float | None:
        """Least-squares slope of the queue's depth in messages per minute (None: fewer than 2 samples)."""
        ...

    def saturation(self, window: float) -> Saturation | None:
        """None when no worker has pool slots."""
        ...

    def task_runtime(self, task_name: str, window: float, *, until_ago: float = 0.0) -> RuntimeStats | None:
        """Runtimes of the runs of ``task_name`` that ended within the window; None without runs.

        ``until_ago`` moves the window's end into the past (a baseline that leaves out the recent runs).
        """
        ...

    def task_names(self, window: float) -> Iterable[str]:
        """Task names with at least one run ending within the window."""
        ...

    def worker_progress(self, worker: str, window: float) -> float | None:
        """How much the worker's task counter moved over the window.

        None unless the worker was seen for the whole window without a restart,
        so a newcomer is never called stalled.
        """
        ...

    def pool_losses(self, worker: str, window: float) -> int:
        """Pool processes that vanished from the worker's pool within the window (crashed or recycled)."""
        ...


@runtime_checkable
class RecordingTrendSource(TrendSource, Protocol):
    """A trend source fed by the alert runner with every snapshot it evaluates."""

    def observe(self, status: pb.CeleryStatus, now: float) -> None: ...


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope dy/dt in units per second."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var <= 0:
        return None
    return sum((t - mean_t) * (y - mean_y) for t, y in points) / var


@dataclass(frozen=True, slots=True)
class _Sample:
    at: float
    queues: dict[str, int]
    busy: int
    slots: int
    #: worker -> (task counter, pid): a new pid is a restart, where the counter starts again.
    workers: dict[str, tuple[int, int]]
    #: worker -> pids of its pool processes.
    pools: dict[str, frozenset[int]]


@dataclass(slots=True)
class _Running:
    name: str
    worker: str
    started: float
    last_seen: float


@dataclass(frozen=True, slots=True)
class _Run:
    ended_at: float
    name: str
    runtime: float


class SnapshotRing:
    """Bounded in-memory history: the last ``horizon`` seconds of samples, 24 h of task runs."""

    def __init__(
        self,
        *,
        horizon: float = 3600.0,
        max_samples: int = 4000,
        run_horizon: float = 86400.0,
        max_runs: int = 50_000,
    ) -> None:
        self.horizon = horizon
        self.run_horizon = run_horizon
        self._samples: deque[_Sample] = deque(maxlen=max_samples)
        self._runs: deque[_Run] = deque(maxlen=max_runs)
        self._running: dict[str, _Running] = {}
        self._now = 0.0

    # -- feeding ---------------------------------------------------------------

    def observe(self, status: pb.CeleryStatus, now: float) -> None:
        """Record one snapshot taken at ``now`` (the alert clock)."""
        if not status.enabled or not status.connected or status.stale:
            # An outage snapshot repeats old data or has none; learning from it
            # would invent flat queues and finished tasks.
            return
        self._now = now
        queues = {q.name: int(q.messages) for q in status.queues}
        busy = slots = 0
        workers: dict[str, tuple[int, int]] = {}
        pools: dict[str, frozenset[int]] = {}
        for name, stats in status.worker_stats.items():
            busy += stats.active_tasks
            slots += stats.pool.max_concurrency
            workers[name] = (int(stats.total), int(stats.pid))
            pools[name] = frozenset(stats.pool.processes)
        self._samples.append(_Sample(now, queues, busy, slots, workers, pools))
        while self._samples and self._samples[0].at < now - self.horizon:
            self._samples.popleft()
        self._follow_tasks(status, now)

    def _follow_tasks(self, status: pb.CeleryStatus, now: float) -> None:
        observed = timestamp_to_epoch(status.observed_at) if status.HasField("observed_at") else now
        seen: set[str] = set()
        for worker, tasks in status.queue_details.active.items():
            for task in tasks.tasks:
                if not task.id or not task.HasField("time_start"):
                    continue
                seen.add(task.id)
                running = self._running.get(task.id)
                if running is None:
                    self._running[task.id] = _Running(task.name, worker, task.time_start, observed)
                else:
                    running.last_seen = observed
        live_workers = set(status.worker_stats)
        for task_id in [t for t in self._running if t not in seen]:
            running = self._running.pop(task_id)
            # A task whose worker vanished did not finish; its runtime is unknown.
            if running.worker in live_workers:
                runtime = max(0.0, running.last_seen - running.started)
                self._runs.append(_Run(now, running.name, runtime))
        while self._runs and self._runs[0].ended_at < now - self.run_horizon:
            self._runs.popleft()

    # -- TrendSource -------------------------------------------------------------

    def _window(self, window: float) -> list[_Sample]:
        start = self._now - window
        return [s for s in self._samples if s.at >= start]

    def queue_growth(self, queue: str, window: float) -> float | None:
        points = [(s.at, float(s.queues[queue])) for s in self._window(window) if queue in s.queues]
        slope = _slope(points)
        return None if slope is None else slope * 60.0

    def saturation(self, window: float) -> Saturation | None:
        samples = [s for s in self._window(window) if s.slots > 0]
        if not samples:
            return None
        now = samples[-1].busy / samples[-1].slots
        slope = _slope([(s.at, s.busy / s.slots) for s in samples])
        to_full = None
        if slope is not None and slope > 0 and now < 1.0:
            to_full = (1.0 - now) / slope
        return Saturation(now, to_full)

    def task_runtime(self, task_name: str, window: float, *, until_ago: float = 0.0) -> RuntimeStats | None:
        start, end = self._now - window, self._now - until_ago
        runtimes = [r.runtime for r in self._runs if start <= r.ended_at <= end and r.name == task_name]
        if not runtimes:
            return None
        return RuntimeStats(len(runtimes), percentile(runtimes, 95), max(runtimes))

    def task_names(self, window: float) -> Iterable[str]:
        start = self._now - window
        return sorted({r.name for r in self._runs if r.ended_at >= start})

    def worker_progress(self, worker: str, window: float) -> float | None:
        start = self._now - window
        base: tuple[int, int] | None = None
        latest: tuple[int, int] | None = None
        for sample in self._samples:
            state = sample.workers.get(worker)
            if sample.at <= start:
                base = latest = state
                continue
            if base is None or state is None or state[1] != base[1]:
                return None  # not seen since the window began, gone, or restarted
            latest = state
        if base is None or latest is None:
            return None
        return float(latest[0] - base[0])

    def pool_losses(self, worker: str, window: float) -> int:
        start = self._now - window
        lost = 0
        previous: _Sample | None = None
        for sample in self._samples:
            if sample.at >= start and previous is not None:
                before, after = previous.workers.get(worker), sample.workers.get(worker)
                # Same main process on both sides: a restarted worker has a new pool anyway.
                if before is not None and after is not None and before[1] == after[1]:
                    lost += len(previous.pools.get(worker, frozenset()) - sample.pools.get(worker, frozenset()))
            previous = sample
        return lost

    @property
    def sample_count(self) -> int:
        return len(self._samples)

    @property
    def run_count(self) -> int:
        return len(self._runs)
