"""What trend-based rules ask about the past, and an in-memory answer to it.

:class:`TrendSource` is the seam between the alert rules and whatever keeps
the cluster's history. :class:`SnapshotRing` answers it from a bounded ring of
recent snapshots held in memory (and task runs learnt by following task ids
from one snapshot to the next); a persistent history store can implement the
same protocol and replace it without touching a rule.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.values import timestamp_to_epoch

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
    count = len(values)
    rank = min(max(1, math.ceil(q / 100 * count)), count)
    # High percentiles need only the top of the distribution, not a full sort.
    return heapq.nlargest(count - rank + 1, values)[-1]


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


@dataclass(slots=True)
class _WorkerSeries:
    """One worker's history since it was last (re)started or last missing from a snapshot."""

    pid: int
    #: Seen in every sample since then, with this main process.
    since: float
    pool: frozenset[int]
    #: (at, task counter)
    totals: deque[tuple[float, int]] = field(default_factory=deque)
    #: (at, pool processes gone since the previous sample)
    losses: deque[tuple[float, int]] = field(default_factory=deque)


@dataclass(slots=True)
class _Running:
    name: str
    worker: str
    started: float
    last_seen: float


class SnapshotRing:
    """Bounded in-memory history: the last ``horizon`` seconds of samples, 24 h of task runs.

    Kept per worker and per task name, so a query reads only the series it is about
    and an evaluation stays cheap for large clusters (``bench/bench_alerts.py``).
    """

    def __init__(
        self,
        *,
        horizon: float = 3600.0,
        max_samples: int = 4000,
        run_horizon: float = 86400.0,
        max_runs_per_task: int = 10_000,
    ) -> None:
        self.horizon = horizon
        self.run_horizon = run_horizon
        self._max_samples = max_samples
        self._max_runs = max_runs_per_task
        self._samples: deque[_Sample] = deque(maxlen=max_samples)
        self._workers: dict[str, _WorkerSeries] = {}
        #: task name -> (ended at, runtime), oldest first
        self._runs: dict[str, deque[tuple[float, float]]] = {}
        self._running: dict[str, _Running] = {}
        self._runtime_cache: dict[tuple[str, float, float], RuntimeStats | None] = {}
        self._now = 0.0

    # -- feeding ---------------------------------------------------------------

    def observe(self, status: pb.CeleryStatus, now: float) -> None:
        """Record one snapshot taken at ``now`` (the alert clock)."""
        if not status.enabled or not status.connected or status.stale:
            # An outage snapshot repeats old data or has none; learning from it
            # would invent flat queues and finished tasks.
            return
        self._now = now
        self._runtime_cache.clear()
        oldest = now - self.horizon
        queues = {q.name: int(q.messages) for q in status.queues}
        busy = slots = 0
        for name, stats in status.worker_stats.items():
            busy += stats.active_tasks
            slots += stats.pool.max_concurrency
            self._observe_worker(name, stats, now, oldest)
        for gone in [name for name in self._workers if name not in status.worker_stats]:
            del self._workers[gone]  # continuity is broken; it starts afresh when back
        self._samples.append(_Sample(now, queues, busy, slots))
        while self._samples and self._samples[0].at < oldest:
            self._samples.popleft()
        self._follow_tasks(status, now)

    def _observe_worker(self, name: str, stats: pb.WorkerStats, now: float, oldest: float) -> None:
        pool = frozenset(stats.pool.processes)
        series = self._workers.get(name)
        if series is None or series.pid != stats.pid:
            # New, returning or restarted: a restarted worker has a new pool and counter.
            series = _WorkerSeries(int(stats.pid), now, pool)
            self._workers[name] = series
        else:
            lost = len(series.pool - pool)
            if lost:
                series.losses.append((now, lost))
            series.pool = pool
        series.totals.append((now, int(stats.total)))
        # Keep one entry before the horizon: the base of a window that starts there.
        while len(series.totals) > self._max_samples or (
            len(series.totals) > 1 and series.totals[1][0] <= oldest
        ):
            series.totals.popleft()
        while series.losses and series.losses[0][0] < oldest:
            series.losses.popleft()

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
                runs = self._runs.setdefault(running.name, deque(maxlen=self._max_runs))
                runs.append((now, max(0.0, running.last_seen - running.started)))
        for name in list(self._runs):
            runs = self._runs[name]
            while runs and runs[0][0] < now - self.run_horizon:
                runs.popleft()
            if not runs:
                del self._runs[name]

    # -- TrendSource -------------------------------------------------------------

    def _window(self, window: float) -> list[_Sample]:
        start = self._now - window
        index = bisect.bisect_left(self._samples, start, key=lambda s: s.at)
        return list(itertools.islice(self._samples, index, None))

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
        key = (task_name, window, until_ago)
        if key in self._runtime_cache:
            return self._runtime_cache[key]
        runs = self._runs.get(task_name)
        stats = None
        if runs:
            # Runs are kept in the order they ended: the window is one slice.
            first = bisect.bisect_left(runs, self._now - window, key=lambda run: run[0])
            last = bisect.bisect_right(runs, self._now - until_ago, key=lambda run: run[0])
            if last > first:
                runtimes = [runtime for _, runtime in itertools.islice(runs, first, last)]
                stats = RuntimeStats(len(runtimes), percentile(runtimes, 95), max(runtimes))
        self._runtime_cache[key] = stats
        return stats

    def task_names(self, window: float) -> Iterable[str]:
        start = self._now - window
        return sorted(name for name, runs in self._runs.items() if runs and runs[-1][0] >= start)

    def worker_progress(self, worker: str, window: float) -> float | None:
        series = self._workers.get(worker)
        start = self._now - window
        if series is None or series.since > start:
            return None  # not seen, without a restart, since the window began
        index = bisect.bisect_right(series.totals, start, key=lambda entry: entry[0])
        if index == 0:
            return None
        return float(series.totals[-1][1] - series.totals[index - 1][1])

    def pool_losses(self, worker: str, window: float) -> int:
        series = self._workers.get(worker)
        if series is None:
            return 0
        start = self._now - window
        return sum(lost for at, lost in series.losses if at >= start)

    @property
    def sample_count(self) -> int:
        return len(self._samples)

    @property
    def run_count(self) -> int:
        return sum(len(runs) for runs in self._runs.values())
