"""GetHistory and GetTrends: request building and typed, immutable views of the answers.

The request builders do no I/O; the sync and async clients and the HTTP bridge
all build their requests with them, so ``since=1h`` means the same everywhere.

:meth:`History.to_dict` is *the* JSON of ``GET /api/celery-status/history``
(columnar: one list of timestamps, one list per series, ``null`` where nothing
was recorded) and :meth:`History.to_csv` its CSV download;
:meth:`Trends.to_dict` is the JSON of ``GET /api/celery-status/trends``.
Times are epoch seconds, durations and runtimes seconds.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from celerystatus.timespec import DurationLike, TimeLike, parse_duration, parse_time
from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.values import (
    JSONValue,
    duration_to_seconds,
    epoch_to_timestamp,
    list_value_to_list,
    seconds_to_duration,
    struct_to_dict,
    timestamp_to_epoch,
)

__all__ = [
    "History",
    "LongRunningTask",
    "QueueTrend",
    "Rate",
    "Saturation",
    "TaskRun",
    "TaskRuntime",
    "Trends",
    "WorkerTrend",
    "build_history_request",
    "build_trends_request",
]

MAX_INT32 = 2**31 - 1


def _value(number: float) -> float | None:
    return None if math.isnan(number) else number


@dataclass(frozen=True, slots=True)
class TaskRun:
    """One execution of a task, followed across snapshots while it was active."""

    id: str
    name: str
    worker: str
    started: float | None
    last_seen: float | None
    runtime: float
    """``last_seen - started``: a lower bound of the real runtime."""
    args: tuple[JSONValue, ...] = ()
    kwargs: dict[str, JSONValue] = field(default_factory=dict)
    args_redacted: bool = False

    @classmethod
    def from_proto(cls, msg: pb.TaskRun) -> TaskRun:
        return cls(
            id=msg.id,
            name=msg.name,
            worker=msg.worker,
            started=timestamp_to_epoch(msg.started) if msg.HasField("started") else None,
            last_seen=timestamp_to_epoch(msg.last_seen) if msg.HasField("last_seen") else None,
            runtime=duration_to_seconds(msg.runtime),
            args=tuple(list_value_to_list(msg.args)),
            kwargs=struct_to_dict(msg.kwargs),
            args_redacted=msg.args_redacted,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "worker": self.worker,
            "started": self.started,
            "last_seen": self.last_seen,
            "runtime": self.runtime,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "args_redacted": self.args_redacted,
        }


@dataclass(frozen=True, slots=True)
class History:
    """Samples over a range: ``series[name][i]`` is the value at ``timestamps[i]`` (None: not recorded)."""

    timestamps: tuple[float, ...] = ()
    series: dict[str, tuple[float | None, ...]] = field(default_factory=dict)
    step: float | None = None
    runs: tuple[TaskRun, ...] = ()
    runs_truncated: bool = False

    @classmethod
    def from_proto(cls, msg: pb.GetHistoryResponse) -> History:
        return cls(
            timestamps=tuple(msg.timestamps),
            series={s.name: tuple(_value(v) for v in s.values) for s in msg.series},
            step=duration_to_seconds(msg.step) if msg.HasField("step") else None,
            runs=tuple(TaskRun.from_proto(r) for r in msg.runs),
            runs_truncated=msg.runs_truncated,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "timestamps": list(self.timestamps),
            "step": self.step,
            "series": {name: list(values) for name, values in self.series.items()},
            "runs": [run.to_dict() for run in self.runs],
            "runs_truncated": self.runs_truncated,
        }

    def to_csv(self) -> str:
        """``timestamp,<series>...`` rows; empty cells where nothing was recorded."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        names = list(self.series)
        writer.writerow(["timestamp", *names])
        for i, ts in enumerate(self.timestamps):
            row: list[Any] = [ts]
            for name in names:
                value = self.series[name][i]
                row.append("" if value is None else value)
            writer.writerow(row)
        return out.getvalue()


@dataclass(frozen=True, slots=True)
class Rate:
    name: str
    """Worker hostname or task name; empty for the cluster."""
    per_second: float
    count: int
    """Tasks counted over the window (worker restarts handled as counter resets)."""

    @classmethod
    def from_proto(cls, msg: pb.Rate) -> Rate:
        return cls(name=msg.name, per_second=msg.per_second, count=msg.count)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "per_second": self.per_second, "count": self.count}


@dataclass(frozen=True, slots=True)
class QueueTrend:
    name: str
    depth: int
    growth_per_minute: float
    """Least-squares slope of the depth."""
    arrival_per_minute: float
    """Consumers' throughput + growth."""
    throughput_per_minute: float
    drain_seconds: float | None
    """Until the backlog drains at this trend; None when it does not drain."""
    growing: bool

    @classmethod
    def from_proto(cls, msg: pb.QueueTrend) -> QueueTrend:
        return cls(
            name=msg.name,
            depth=msg.depth,
            growth_per_minute=msg.growth_per_minute,
            arrival_per_minute=msg.arrival_per_minute,
            throughput_per_minute=msg.throughput_per_minute,
            drain_seconds=msg.drain_seconds if msg.HasField("drain_seconds") else None,
            growing=msg.growing,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "depth": self.depth,
            "growth_per_minute": self.growth_per_minute,
            "arrival_per_minute": self.arrival_per_minute,
            "throughput_per_minute": self.throughput_per_minute,
            "drain_seconds": self.drain_seconds,
            "growing": self.growing,
        }


@dataclass(frozen=True, slots=True)
class Saturation:
    current: float = 0.0
    """Busy slots / pool slots at the last sample."""
    mean: float = 0.0
    slope_per_minute: float = 0.0
    seconds_to_full: float | None = None
    """Until saturation reaches 1 at this slope; None when it is not rising."""
    busy_slots: int = 0
    pool_slots: int = 0

    @classmethod
    def from_proto(cls, msg: pb.Saturation) -> Saturation:
        return cls(
            current=msg.current,
            mean=msg.mean,
            slope_per_minute=msg.slope_per_minute,
            seconds_to_full=msg.seconds_to_full if msg.HasField("seconds_to_full") else None,
            busy_slots=msg.busy_slots,
            pool_slots=msg.pool_slots,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "mean": self.mean,
            "slope_per_minute": self.slope_per_minute,
            "seconds_to_full": self.seconds_to_full,
            "busy_slots": self.busy_slots,
            "pool_slots": self.pool_slots,
        }


@dataclass(frozen=True, slots=True)
class TaskRuntime:
    name: str
    count: int
    p50: float
    p95: float
    max: float

    @classmethod
    def from_proto(cls, msg: pb.TaskRuntime) -> TaskRuntime:
        return cls(name=msg.name, count=msg.count, p50=msg.p50, p95=msg.p95, max=msg.max)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "count": self.count, "p50": self.p50, "p95": self.p95, "max": self.max}


@dataclass(frozen=True, slots=True)
class LongRunningTask:
    id: str
    name: str
    worker: str
    running_seconds: float
    threshold_seconds: float

    @classmethod
    def from_proto(cls, msg: pb.LongRunningTask) -> LongRunningTask:
        return cls(
            id=msg.id,
            name=msg.name,
            worker=msg.worker,
            running_seconds=msg.running_seconds,
            threshold_seconds=msg.threshold_seconds,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "worker": self.worker,
            "running_seconds": self.running_seconds,
            "threshold_seconds": self.threshold_seconds,
        }


@dataclass(frozen=True, slots=True)
class WorkerTrend:
    hostname: str
    per_second: float
    restarts: int
    processes_replaced: int
    """Pool processes that died or were recycled in the window."""
    possibly_hung: bool
    """``total`` did not move over the window while the worker had active tasks."""
    active: int

    @classmethod
    def from_proto(cls, msg: pb.WorkerTrend) -> WorkerTrend:
        return cls(
            hostname=msg.hostname,
            per_second=msg.per_second,
            restarts=msg.restarts,
            processes_replaced=msg.processes_replaced,
            possibly_hung=msg.possibly_hung,
            active=msg.active,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "hostname": self.hostname,
            "per_second": self.per_second,
            "restarts": self.restarts,
            "processes_replaced": self.processes_replaced,
            "possibly_hung": self.possibly_hung,
            "active": self.active,
        }


def _by_name(items: Sequence[Any]) -> dict[str, Any]:
    return {item.name: item for item in items}


@dataclass(frozen=True, slots=True)
class Trends:
    """Trends over a window, computed by the server from its history store."""

    computed_at: float | None = None
    window: float | None = None
    samples: int = 0
    throughput: Rate = Rate("", 0.0, 0)
    worker_throughput: dict[str, Rate] = field(default_factory=dict)
    task_throughput: dict[str, Rate] = field(default_factory=dict)
    queues: dict[str, QueueTrend] = field(default_factory=dict)
    saturation: Saturation = Saturation()
    runtimes: dict[str, TaskRuntime] = field(default_factory=dict)
    long_running: tuple[LongRunningTask, ...] = ()
    workers: dict[str, WorkerTrend] = field(default_factory=dict)

    @classmethod
    def from_proto(cls, msg: pb.GetTrendsResponse) -> Trends:
        return cls(
            computed_at=timestamp_to_epoch(msg.computed_at) if msg.HasField("computed_at") else None,
            window=duration_to_seconds(msg.window) if msg.HasField("window") else None,
            samples=msg.samples,
            throughput=Rate.from_proto(msg.throughput),
            worker_throughput=_by_name([Rate.from_proto(r) for r in msg.worker_throughput]),
            task_throughput=_by_name([Rate.from_proto(r) for r in msg.task_throughput]),
            queues=_by_name([QueueTrend.from_proto(q) for q in msg.queues]),
            saturation=Saturation.from_proto(msg.saturation),
            runtimes=_by_name([TaskRuntime.from_proto(r) for r in msg.runtimes]),
            long_running=tuple(LongRunningTask.from_proto(t) for t in msg.long_running),
            workers={w.hostname: WorkerTrend.from_proto(w) for w in msg.workers},
        )

    def to_dict(self) -> dict[str, Any]:
        def values(items: Mapping[str, Any]) -> list[dict[str, Any]]:
            return [item.to_dict() for item in items.values()]

        return {
            "computed_at": self.computed_at,
            "window": self.window,
            "samples": self.samples,
            "throughput": self.throughput.to_dict(),
            "worker_throughput": values(self.worker_throughput),
            "task_throughput": values(self.task_throughput),
            "queues": values(self.queues),
            "saturation": self.saturation.to_dict(),
            "runtimes": values(self.runtimes),
            "long_running": [t.to_dict() for t in self.long_running],
            "workers": values(self.workers),
        }


def build_history_request(
    since: TimeLike = "1h",
    until: TimeLike = None,
    step: DurationLike | None = None,
    series: Sequence[str] | str = (),
    *,
    include_runs: bool = False,
    runs_limit: int = 0,
    now: float | None = None,
) -> pb.GetHistoryRequest:
    """``since``/``until``: ``"1h"`` (ago), ``"now"``, ISO 8601, epoch seconds or a datetime.

    ``series``: names or a comma-separated string (``"workers,queue:celery"``).
    Raises ``ValueError`` naming the parameter for values that do not parse or a
    reversed range; the server checks the rest (point count, unknown series).
    """
    start = parse_time(since, "since", now=now)
    end = parse_time(until, "until", now=now)
    if end <= start:
        raise ValueError("until: must be later than since (the range is empty or reversed)")
    if isinstance(series, str):
        series = [part.strip() for part in series.split(",") if part.strip()]
    if isinstance(runs_limit, bool) or not isinstance(runs_limit, int) or not 0 <= runs_limit <= MAX_INT32:
        raise ValueError(f"runs_limit: must be an integer from 0 to {MAX_INT32}, got {runs_limit!r}")
    request = pb.GetHistoryRequest(series=list(series), include_runs=include_runs, runs_limit=runs_limit)
    request.since.CopyFrom(epoch_to_timestamp(start))
    if until is not None and not (isinstance(until, str) and until.strip().lower() == "now"):
        request.until.CopyFrom(epoch_to_timestamp(end))
    if step is not None:
        request.step.CopyFrom(seconds_to_duration(parse_duration(step, "step")))
    return request


def build_trends_request(
    window: DurationLike | None = None, long_running_floor: DurationLike | None = None
) -> pb.GetTrendsRequest:
    request = pb.GetTrendsRequest()
    if window is not None:
        request.window.CopyFrom(seconds_to_duration(parse_duration(window, "window")))
    if long_running_floor is not None:
        # Zero is a valid floor (flag on the p95 rule alone), which parse_duration refuses.
        if isinstance(long_running_floor, str) and long_running_floor.strip() in {"0", "0s"}:
            floor = 0.0
        elif isinstance(long_running_floor, int | float) and not isinstance(long_running_floor, bool) \
                and long_running_floor == 0:
            floor = 0.0
        else:
            floor = parse_duration(long_running_floor, "long_running_floor")
        request.long_running_floor.CopyFrom(seconds_to_duration(floor))
    return request
