"""What one snapshot contributes to the history: series values, worker events and task runs.

Pure logic over ``pb.CeleryStatus`` messages, fed every snapshot in order by
the recorder. Worker events and task runs are followed snapshot by snapshot
(every round), while series values are taken once per history interval.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field

from google.protobuf.json_format import MessageToDict

from celerystatus.v1 import celery_status_pb2 as pb

from . import series as s
from .store import Sample, TaskRunRecord

#: A worker gone for longer than this is no longer reported as ``up: 0``.
DOWN_MEMORY_S = 3600.0
#: Uptime going back by more than this means the worker restarted (clock noise aside).
UPTIME_SLACK_S = 5.0


def observed_at(status: pb.CeleryStatus) -> float | None:
    if not status.HasField("observed_at"):
        return None
    return status.observed_at.seconds + status.observed_at.nanos / 1e9


def usable(status: pb.CeleryStatus) -> bool:
    """Fresh data from a round that reached the broker: the only kind worth following."""
    return status.enabled and status.connected and not status.stale and status.HasField("observed_at")


def bucket(ts: float, interval: float) -> int:
    return int(math.floor(ts / interval) * interval)


@dataclass
class _WorkerSeen:
    pid: int
    uptime: float
    processes: frozenset[int]


@dataclass
class WorkerEvents:
    """Restarts and replaced pool processes, counted between two recorded samples."""

    _last: dict[str, _WorkerSeen] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    replaced: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def observe(self, status: pb.CeleryStatus) -> None:
        for host, stats in status.worker_stats.items():
            seen = _WorkerSeen(
                stats.pid, stats.uptime.seconds + stats.uptime.nanos / 1e9, frozenset(stats.pool.processes)
            )
            before = self._last.get(host)
            if before is not None:
                restarted = (seen.pid and before.pid and seen.pid != before.pid) or (
                    seen.uptime + UPTIME_SLACK_S < before.uptime
                )
                if restarted:
                    self.restarts[host] += 1
                elif before.processes and seen.processes:
                    # Pool processes that vanished: died (OOM, crash) or recycled (max-tasks-per-child).
                    self.replaced[host] += len(before.processes - seen.processes)
            self._last[host] = seen

    def take(self) -> tuple[dict[str, int], dict[str, int]]:
        restarts, replaced = dict(self.restarts), dict(self.replaced)
        self.restarts.clear()
        self.replaced.clear()
        return restarts, replaced


@dataclass
class _Running:
    name: str
    worker: str
    started: float
    last_seen: float
    args: str | None
    kwargs: str | None


class RunTracker:
    """Follows every active task id; a task that leaves the active lists becomes one run."""

    def __init__(self) -> None:
        self._running: dict[str, _Running] = {}

    @property
    def running(self) -> int:
        return len(self._running)

    def observe(self, status: pb.CeleryStatus) -> list[TaskRunRecord]:
        now = observed_at(status)
        if now is None:
            return []
        present: set[str] = set()
        for host, task_list in status.queue_details.active.items():
            for task in task_list.tasks:
                if not task.id:
                    continue
                present.add(task.id)
                entry = self._running.get(task.id)
                if entry is not None:
                    entry.last_seen = now
                    continue
                started = task.time_start if task.HasField("time_start") else now
                self._running[task.id] = _Running(
                    name=task.name,
                    worker=task.worker or host,
                    started=started,
                    last_seen=now,
                    args=json.dumps(MessageToDict(task.args)) if task.args.values else None,
                    kwargs=json.dumps(MessageToDict(task.kwargs)) if task.kwargs.fields else None,
                )
        finished = [
            TaskRunRecord(
                id=task_id, name=e.name, worker=e.worker, started=e.started, last_seen=e.last_seen,
                args=e.args, kwargs=e.kwargs,
            )
            for task_id, e in self._running.items()
            if task_id not in present
        ]
        for run in finished:
            del self._running[run.id]
        return finished


class Sampler:
    """Turns the snapshot stream into samples (one per interval bucket) and task runs."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.events = WorkerEvents()
        self.runs = RunTracker()
        self._last_bucket: int | None = None
        self._up_until: dict[str, float] = {}

    def observe(self, status: pb.CeleryStatus, now: float) -> tuple[Sample | None, list[TaskRunRecord]]:
        """Feed one snapshot; returns the sample due (if any) and the runs that just ended."""
        if not status.enabled:
            return None, []
        if not usable(status):
            # An outage is recorded as such, from the wall clock (the stale data keeps
            # the time of the last good round); nothing about workers or tasks is concluded.
            ts = bucket(now, self.interval)
            if self._last_bucket is not None and ts <= self._last_bucket:
                return None, []
            self._last_bucket = ts
            return Sample(ts, {"connected": 0.0, "stale": 1.0 if status.stale else 0.0}), []
        runs = self.runs.observe(status)
        self.events.observe(status)
        when = observed_at(status)
        assert when is not None
        ts = bucket(when, self.interval)
        if self._last_bucket is not None and ts <= self._last_bucket:
            return None, runs
        self._last_bucket = ts
        return Sample(ts, self.values(status, when)), runs

    def values(self, status: pb.CeleryStatus, when: float) -> dict[str, float]:
        restarts, replaced = self.events.take()
        values: dict[str, float] = {
            "workers": status.workers,
            "active_tasks": status.active_tasks,
            "scheduled_tasks": status.scheduled_tasks,
            "reserved_tasks": status.reserved_tasks,
            "connected": 1.0,
            "stale": 0.0,
        }
        if status.inspection.HasField("duration"):
            values["round_duration"] = status.inspection.duration.ToNanoseconds() / 1e9
        for depth in status.queues:
            values[s.queue(depth.name)] = depth.messages
        total = 0
        busy = 0
        slots = 0
        by_task: dict[str, int] = defaultdict(int)
        for host, stats in status.worker_stats.items():
            self._up_until[host] = when + DOWN_MEMORY_S
            concurrency = stats.pool.max_concurrency
            total += stats.total
            busy += min(stats.active_tasks, concurrency) if concurrency else stats.active_tasks
            slots += concurrency
            values[s.worker(host, "total")] = stats.total
            values[s.worker(host, "active")] = stats.active_tasks
            values[s.worker(host, "reserved")] = stats.reserved_tasks
            values[s.worker(host, "processes")] = len(stats.pool.processes)
            values[s.worker(host, "max_concurrency")] = concurrency
            values[s.worker(host, "up")] = 1.0
            values[s.worker(host, "uptime")] = stats.uptime.seconds + stats.uptime.nanos / 1e9
            values[s.worker(host, "restarts")] = restarts.get(host, 0)
            values[s.worker(host, "processes_replaced")] = replaced.get(host, 0)
            for name, count in stats.total_by_task.items():
                values[s.worker_task(host, name)] = count
                by_task[name] += count
        for host, until in list(self._up_until.items()):
            if host in status.worker_stats:
                continue
            if until < when:
                del self._up_until[host]
            else:
                values[s.worker(host, "up")] = 0.0
        for name, count in by_task.items():
            values[s.task(name)] = count
        values["total"] = total
        values["busy_slots"] = busy
        values["pool_slots"] = slots
        values["saturation"] = busy / slots if slots else 0.0
        return values
