"""GetHistory and GetTrends: request validation, then blocking work against the store.

Validation errors are :class:`QueryError` with a message that starts with the
parameter's name; the gRPC layer turns them into INVALID_ARGUMENT, the bridge
into HTTP 422.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from google.protobuf import struct_pb2
from google.protobuf.duration_pb2 import Duration
from google.protobuf.json_format import ParseDict
from google.protobuf.timestamp_pb2 import Timestamp

from celerystatus.v1 import celery_status_pb2 as pb

from ..security.redaction import Redactor
from . import trends
from .series import SeriesError, resolve
from .store import HistoryStore, TaskRunRecord, columns

MAX_POINTS = 10_000
DEFAULT_STEP_S = 60.0
DEFAULT_RUNS = 1000
MAX_RUNS = 10_000
DEFAULT_WINDOW_S = 15 * 60.0
MAX_WINDOW_S = 30 * 86400.0
DEFAULT_LONG_RUNNING_FLOOR_S = 60.0
#: Each name's usual runtime is learnt from at least this much history.
BASELINE_S = 24 * 3600.0


class QueryError(ValueError):
    """A request the store cannot answer as asked; the message names the parameter."""


def _seconds(message: Timestamp | Duration) -> float:
    return message.ToNanoseconds() / 1e9


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    since: float
    until: float
    step: float
    series: tuple[str, ...]
    include_runs: bool
    runs_limit: int

    @property
    def start(self) -> float:
        """``since`` aligned down to the step, so points line up with roll-up buckets."""
        return math.floor(self.since / self.step) * self.step

    @property
    def count(self) -> int:
        return max(1, math.ceil((self.until - self.start) / self.step))


def history_query(request: pb.GetHistoryRequest, now: float) -> HistoryQuery:
    if not request.HasField("since"):
        raise QueryError("since: required (the start of the range)")
    since = _seconds(request.since)
    until = _seconds(request.until) if request.HasField("until") else now
    if not math.isfinite(since) or since < 0:
        raise QueryError("since: not a valid time")
    if until <= since:
        raise QueryError("until: must be later than since (the range is empty or reversed)")
    step = _seconds(request.step) if request.HasField("step") else DEFAULT_STEP_S
    if step <= 0:
        raise QueryError("step: must be more than zero")
    query = HistoryQuery(
        since=since,
        until=until,
        step=step,
        series=tuple(request.series),
        include_runs=request.include_runs,
        runs_limit=request.runs_limit or DEFAULT_RUNS,
    )
    if query.count > MAX_POINTS:
        raise QueryError(
            f"step: {step:g}s over {until - since:g}s would return {query.count} points; at most {MAX_POINTS} "
            "(use a larger step or a shorter range)"
        )
    if not 0 <= request.runs_limit <= MAX_RUNS:
        raise QueryError(f"runs_limit: must be between 0 and {MAX_RUNS}")
    return query


def run_history(
    store: HistoryStore, query: HistoryQuery, *, redactor: Redactor | None
) -> pb.GetHistoryResponse:
    """Blocking: reads the store. ``redactor`` set means the caller may not see arguments."""
    try:
        names = resolve(query.series, store.recorded_names())
    except SeriesError as exc:
        raise QueryError(str(exc)) from None
    points = store.points(query.start, query.until, query.step, names)
    values = columns(points, names, query.start, query.step, query.count)
    response = pb.GetHistoryResponse(timestamps=[query.start + i * query.step for i in range(query.count)])
    response.step.FromNanoseconds(int(query.step * 1e9))
    for name in names:
        response.series.add(name=name, values=values[name])
    if query.include_runs:
        runs, truncated = store.runs(query.since, query.until, limit=query.runs_limit)
        response.runs_truncated = truncated
        for run in runs:
            response.runs.append(task_run(run, redactor))
    return response


def task_run(run: TaskRunRecord, redactor: Redactor | None) -> pb.TaskRun:
    msg = pb.TaskRun(id=run.id, name=run.name, worker=run.worker)
    msg.started.FromNanoseconds(int(run.started * 1e9))
    msg.last_seen.FromNanoseconds(int(run.last_seen * 1e9))
    msg.runtime.FromNanoseconds(int(run.runtime * 1e9))
    task = pb.Task()
    if run.args:
        ParseDict(json.loads(run.args), task.args)
    if run.kwargs:
        ParseDict(json.loads(run.kwargs), task.kwargs)
    if redactor is not None:
        redactor.redact_task(task)
        msg.args_redacted = task.args_redacted
    msg.args.CopyFrom(task.args if task.args.values else struct_pb2.ListValue())
    msg.kwargs.CopyFrom(task.kwargs)
    return msg


@dataclass(frozen=True, slots=True)
class TrendsQuery:
    window: float
    long_running_floor: float


def trends_query(request: pb.GetTrendsRequest) -> TrendsQuery:
    window = _seconds(request.window) if request.HasField("window") else DEFAULT_WINDOW_S
    if not 0 < window <= MAX_WINDOW_S:
        raise QueryError(f"window: must be more than zero and at most {MAX_WINDOW_S / 86400:g} days")
    floor = (
        _seconds(request.long_running_floor)
        if request.HasField("long_running_floor")
        else DEFAULT_LONG_RUNNING_FLOOR_S
    )
    if floor < 0:
        raise QueryError("long_running_floor: must not be negative")
    return TrendsQuery(window=window, long_running_floor=floor)


def run_trends(
    store: HistoryStore, query: TrendsQuery, status: pb.CeleryStatus | None, now: float
) -> pb.GetTrendsResponse:
    since = now - query.window
    # Raw samples while they are kept, minute roll-ups beyond.
    step = 1.0 if query.window <= store.retention.raw else 60.0
    points = store.points(since, now + 1, step)
    runtimes = store.runtimes(since, now + 1)
    baseline = runtimes if query.window >= BASELINE_S else store.runtimes(now - BASELINE_S, now + 1)
    return trends.compute(
        points,
        runtimes,
        baseline,
        status,
        window=query.window,
        now=now,
        long_running_floor=query.long_running_floor,
    )
