"""The alert rules: their settings (with defaults) and what makes each one match.

Every built-in rule is a pydantic model whose fields are what the rules file
may override; ``conditions(ctx)`` returns one :class:`Condition` per thing that
matches now (per worker, queue or task name where that applies). The engine
turns conditions into alerts; rules know nothing about states.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from celerystatus.models import CeleryStatus
from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.values import timestamp_to_epoch

from .model import Condition
from .trends import TrendSource

__all__ = ["BUILTIN_RULES", "Context", "Duration", "RuleBase", "ThresholdRule", "format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(-?)((?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w)\s*)+)$")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: object) -> object:
    """``30``, ``30s``, ``5m``, ``1h30m``, ``500ms`` → seconds; anything else is left for pydantic to reject."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 1h")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {value!r}")
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(match.group(2)))
        return -seconds if match.group(1) else seconds
    raise ValueError("expected a duration such as 30s, 5m or 1h")


def format_duration(seconds: float) -> str:
    """Prometheus' duration syntax (used in exported rules and messages)."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return "".join(parts)


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
Severity = Literal["info", "warning", "critical"]


@dataclass
class Context:
    """What one evaluation looks at."""

    status: pb.CeleryStatus
    #: The alert clock (epoch seconds).
    now: float
    trends: TrendSource
    #: Data from a round that reached the broker (not a stale repeat).
    fresh: bool = field(init=False)

    def __post_init__(self) -> None:
        self.fresh = self.status.enabled and self.status.connected and not self.status.stale

    @cached_property
    def document(self) -> dict[str, Any]:
        """The status as the JSON document (without tasks), for threshold rules on any field."""
        summary = pb.CeleryStatus()
        summary.CopyFrom(self.status)
        summary.ClearField("queue_details")
        return CeleryStatus.from_proto(summary).to_dict()

    @property
    def observed_at(self) -> float | None:
        return timestamp_to_epoch(self.status.observed_at) if self.status.HasField("observed_at") else None


class RuleBase(BaseModel):
    """Settings every rule has."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    #: Documentation of the rule, for docs/alerts.md and ``alerts check``.
    meaning: ClassVar[str] = ""
    #: Rules reading workers, queues or tasks pause while the data is not fresh:
    #: their alerts neither fire nor resolve during a broker outage.
    needs_fresh_data: ClassVar[bool] = True

    enabled: bool = True
    for_: Duration = Field(default=0.0, alias="for")
    severity: Severity = "warning"
    labels: dict[str, str] = Field(default_factory=dict)

    @property
    def name(self) -> str:
        return type(self).__name__

    def conditions(self, ctx: Context) -> Iterator[Condition]:
        raise NotImplementedError

    def condition(
        self, ctx: Context, value: float, summary: str, description: str, **labels: str
    ) -> Condition:
        return Condition(self.name, self.severity, labels, summary, description, float(value), self.for_)


def _workers(status: pb.CeleryStatus) -> Iterator[tuple[str, pb.WorkerStats]]:
    return iter(sorted(status.worker_stats.items()))


class BrokerDisconnected(RuleBase):
    meaning: ClassVar[str] = "The collector cannot reach the broker (`connected: false`)."
    needs_fresh_data: ClassVar[bool] = False
    for_: Duration = Field(default=30.0, alias="for")
    severity: Severity = "critical"

    def conditions(self, ctx: Context) -> Iterator[Condition]:
        status = ctx.status
        if status.enabled and not status.connected:
            yield self.condition(
                ctx, 1, "Celery broker unreachable",
                f"The status service cannot reach the broker {status.broker_url}: {status.error or 'no answer'}.",
            )


class StatusStale(RuleBase):
    meaning: ClassVar[str] = (
        "No fresh snapshot for `intervals` refresh intervals: the last round failed (`stale: true`) "
        "or the collector stopped producing snapshots."
    )
    needs_fresh_data: ClassVar[bool] = False
    intervals: float = Field(default=3.0, gt=0)

    def conditions(self, ctx: Context) -> Iterator[Condition]:
        status = ctx.status
        observed = ctx.observed_at
        if not status.enabled or observed is None:
            return
        interval = status.inspection.refresh_interval.ToNanoseconds() / 1e9 or 2.0
        age = max(0.0, ctx.now - observed)
        limit = self.intervals * interval
        if status.stale or age > limit:
            yield self.condition(
                ctx, age, "Celery status is stale",
                f"The latest good snapshot is {age:.1f}s old (limit {limit:g}s = {self.intervals:g} intervals)"
                + (f"; last error: {status.error}" if status.error else "") + ".",
            )


class WorkersBelowMinimum(RuleBase):
    meaning: ClassVar[str] = "Fewer live workers than `min`."
    for_: Duration = Field(default=60.0, alias="for")
    severity: Severity = "critical"
    min: int = Field(default=2, ge=1)

    def conditions(self, ctx: Context) -> Iterator[Condition]:
        workers = ctx.status.workers
        if workers < self.min:
            yield self.condition(
                ctx, workers, "Too few Celery workers",
                f"{workers} live worker{'s' if workers != 1 else ''}, fewer than the minimum of {self.min}.",
            )


class TooManyActiveTasks(RuleBase):
    meaning: ClassVar[str] = "More than `max` tasks executing at once, cluster-wide."
    for_: Duration = Field(default=60.0, alias="for")
    max: int = Field(default=100, ge=0)

    def conditions(self, ctx: Context) -> Iterator[Condition]:
        active = ctx.status.active_tasks
        if active > self.max:
            yield self.condition(
                ctx, active, "Too many active Celery tasks", f"{active} tasks are executing (limit {self.max})."
            )


class QueueGrowing(RuleBase):
    meaning: ClassVar[str] = (
        "A queue's depth grows (least-squares slope over `window` above `min_growth` messages/minute) "
        "while it holds at least `floor` messages; `for` is how long that must last."
    )
    for_: Duration = Field(default=600.0, alias="for")
    window: Duration = 300.0
    floor: int = Field(default=100, ge=0)
    min_growth: float = Field(default=0.0, ge=0)
    #: Only these queues (all when empty).
    queues: list[str] = Field(default_factory=list)

    def conditions(self, ctx: Context) -> Iterator[Condition]:
        for queue in sorted(ctx.status.queues, key=lambda q: q.name):
            if self.queues and queue.name not in self.queues:
                continue
            growth = ctx.trends.queue_growth(queue.name, self.window)
            if growth is None or growth <= self.min_growth or queue.messages < self.floor:
                continue
            yield self.condition(
                ctx, growth, f"Queue {queue.name} is growing",
                f"Queue {queue.name} holds {queue.messages} messages and grows by {growth:.1f}/min "
                f"(over the last {format_duration(self.window)}).",
                queue=queue.name,
            )


def _pool_slots(status: pb.CeleryStatus) -> tuple[int, int]:
    busy = sum(w.active_tasks for w in status.worker_stats.values())
    slots = sum(w.pool.max_concurrency for w in status.worker_stats.values())
    return busy, slots


class WorkersSaturated(RuleBase):
    meaning: ClassVar[str] = "At least `threshold` of all pool slots are busy."
    for_: Duration = Field(default=300.0, alias="for")
    threshold: float = Field(default=0.9, gt=0, le=1)

    def conditions(self, ctx: Context) -> Iterator[Condition]:
        busy, slots = _pool_slots(ctx.status)
        if slots and busy / slots >= self.threshold:
            yield self.condition(
                ctx, busy / slots, "Celery workers saturated",
                f"{busy} of {slots} pool slots are busy ({busy / slots:.0%}, threshold {self.threshold:.0%}).",
            )


class ExhaustionPredicted(RuleBase):
    meaning: ClassVar[str] = (
        "At the trend of the last `window`, pool saturation reaches 100 % or a queue reaches "
        "`backlog_limit` messages within `horizon`."
    )
    for_: Duration = Field(default=120.0, alias="for")
    horizon: Duration = 900.0
    window: Duration = 600.0
    backlog_limit: int = Field(default=1000, ge=1)

    def conditions(self, ctx: Context) -> Iterator[Condition]:
        saturation = ctx.trends.saturation(self.window)
        if saturation is not None and saturation.seconds_to_full is not None:
            if saturation.seconds_to_full <= self.horizon:
                yield self.condition(
                    ctx, saturation.seconds_to_full, "Celery workers will be saturated soon",
                    f"Pool use is {saturation.now:.0%} and rising; at this trend every slot is busy in "
                    f"{format_duration(saturation.seconds_to_full)} (horizon {format_duration(self.horizon)}).",
                    resource="pool",
                )
        for queue in sorted(ctx.status.queues, key=lambda q: q.name):
            growth = ctx.trends.queue_growth(queue.name, self.window)
            if growth is None or growth <= 0 or queue.messages >= self.backlog_limit:
                continue
            seconds = (self.backlog_limit - queue.messages) / growth * 60.0
            if seconds <= self.horizon:
                yield self.condition(
                    ctx, seconds, f"Queue {queue.name} will reach its backlog limit soon",
                    f"Queue {queue.name} holds {queue.messages} messages, grows by {growth:.1f}/min and reaches "
                    f"{self.backlog_limit} in {format_duration(seconds)}.",
                    queue=queue.name, resource="backlog",
                )


class TaskRunningLong(RuleBase):
    meaning: ClassVar[str] = (
        "A running task is older than `factor` x the p95 runtime of its name over the last `baseline` "
        "(with at least `min_samples` runs) and older than `min_runtime`, or older than its per-name entry in `limits`."
    )
    factor: float = Field(default=3.0, gt=0)
    min_runtime: Duration = 60.0
    min_samples: int = Field(default=5, ge=1)
    baseline: Duration = 86400.0
    limits: dict[str, Duration] = Field(default_factory=dict)

    def conditions(self, ctx: Context) -> Iterator[Condition]:
        observed = ctx.observed_at
        if observed is None:
            return
        stats_cache: dict[str, Any] = {}
        for worker, tasks in sorted(ctx.status.queue_details.active.items()):
            for task in tasks.tasks:
                if not task.HasField("time_start"):
                    continue
                age = observed - task.time_start
                limit = self.limits.get(task.name)
                reason = f"its limit of {format_duration(limit)}" if limit is not None else ""
                if limit is None:
                    if task.name not in stats_cache:
                        stats_cache[task.name] = ctx.trends.task_runtime(task.name, self.baseline)
                    stats = stats_cache[task.name]
                    if stats is None or stats.count < self.min_samples:
                        continue
                    limit = max(self.min_runtime, self.factor * stats.p95)
                    reason = f"{self.factor:g} x its usual p95 of {stats.p95:.1f}s over {stats.count} runs"
                if age <= limit:
                    continue
                yield self.condition(
                    ctx, age, f"Task {task.name} running long",
                    f"Task {task.id} ({task.name}) has been running on {worker} for {age:.1f}s, beyond {reason}.",
                    task=task.name, worker=worker, task_id=task.id,
                )


class PoolProcessesCrashed(RuleBase):
    meaning: ClassVar[str] = (
        "A prefork worker has fewer live pool processes than its max-concurrency, or lost pool processes "
        "within `window` although it recycles none (max-tasks-per-child unlimited): they crashed and were replaced."
    )
    for_: Duration = Field(default=60.0, alias="for")
    window: Duration = 600.0

    def conditions(self, ctx: Context) -> Iterator[Condition]:
        for name, stats in _workers(ctx.status):
            pool = stats.pool
            if pool.implementation and "prefork" not in pool.implementation:
                continue
            if not pool.processes:
                continue  # thread/solo pools report no processes
            if len(pool.processes) < pool.max_concurrency:
                yield self.condition(
                    ctx, len(pool.processes), f"Pool processes missing on {name}",
                    f"{name} has {len(pool.processes)} live pool processes of {pool.max_concurrency}.",
                    worker=name,
                )
                continue
            if pool.HasField("max_tasks_per_child"):
                continue  # processes are recycled on purpose; a vanished pid proves nothing
            lost = ctx.trends.pool_losses(name, self.window)
            if lost > 0:
                yield self.condition(
                    ctx, lost, f"Pool processes crashed on {name}",
                    f"{lost} pool process{'es' if lost != 1 else ''} of {name} died in the last "
                    f"{format_duration(self.window)} and {'were' if lost != 1 else 'was'} replaced.",
                    worker=name,
                )


class WorkerStalled(RuleBase):
    meaning: ClassVar[str] = (
        "A worker holds active tasks but its task counter did not move for `window` (possibly hung)."
    )
    window: Duration = 600.0

    def conditions(self, ctx: Context) -> Iterator[Condition]:
        for name, stats in _workers(ctx.status):
            if stats.active_tasks <= 0:
                continue
            progress = ctx.trends.worker_progress(name, self.window)
            if progress is None or progress > 0:
                continue
            yield self.condition(
                ctx, stats.active_tasks, f"Worker {name} stalled",
                f"{name} has {stats.active_tasks} active tasks and took no new task for "
                f"{format_duration(self.window)}.",
                worker=name,
            )


class TaskSlowerThanUsual(RuleBase):
    meaning: ClassVar[str] = (
        "A task name's p95 runtime over the last `window` is at least `factor` x its p95 over the `baseline` "
        "before that (both with at least `min_samples` runs)."
    )
    factor: float = Field(default=2.0, gt=0)
    window: Duration = 900.0
    baseline: Duration = 86400.0
    min_samples: int = Field(default=5, ge=1)

    def conditions(self, ctx: Context) -> Iterator[Condition]:
        for name in ctx.trends.task_names(self.window):
            recent = ctx.trends.task_runtime(name, self.window)
            usual = ctx.trends.task_runtime(name, self.baseline, until_ago=self.window)
            if recent is None or usual is None or min(recent.count, usual.count) < self.min_samples:
                continue
            if usual.p95 <= 0 or recent.p95 < self.factor * usual.p95:
                continue
            yield self.condition(
                ctx, recent.p95 / usual.p95, f"Task {name} slower than usual",
                f"p95 runtime of {name} is {recent.p95:.1f}s over the last {format_duration(self.window)} "
                f"({recent.count} runs), {recent.p95 / usual.p95:.1f} x its {format_duration(self.baseline)} "
                f"baseline of {usual.p95:.1f}s.",
                task=name,
            )


#: Name -> rule class, in the order of the documentation.
BUILTIN_RULES: dict[str, type[RuleBase]] = {
    cls.__name__: cls
    for cls in (
        BrokerDisconnected,
        StatusStale,
        WorkersBelowMinimum,
        TooManyActiveTasks,
        QueueGrowing,
        WorkersSaturated,
        ExhaustionPredicted,
        TaskRunningLong,
        PoolProcessesCrashed,
        WorkerStalled,
        TaskSlowerThanUsual,
    )
}

# -- threshold rules on any field ---------------------------------------------------

_OPS: dict[str, Any] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Top-level keys of the status document a threshold may read (``trends.*`` besides).
_STATUS_FIELDS = frozenset(CeleryStatus.from_proto(pb.CeleryStatus()).to_dict()) - {"queue_details"}
_TREND_FIELDS = {
    "trends.saturation": 0,
    "trends.seconds_to_saturation": 0,
    "trends.queue_growth": 1,
}
#: Label a wildcard segment gets, by the collection it ranges over.
_WILDCARD_LABEL = {"worker_stats": "worker", "queues": "queue", "trends.queue_growth": "queue"}


class ThresholdRule(RuleBase):
    """``field op value``; ``*`` in one segment of ``field`` makes one alert per key."""

    name_: str = Field(alias="name")
    field_: str = Field(alias="field")
    op: Literal[">", ">=", "<", "<=", "==", "!="] = ">"
    value: float
    window: Duration = 300.0
    summary: str = ""

    @property
    def name(self) -> str:
        return self.name_

    @field_validator("name_")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be a name of letters, digits and underscores")
        if value in BUILTIN_RULES:
            raise ValueError(f"{value} is a built-in rule; set its options under rules.{value}")
        return value

    @field_validator("field_")
    @classmethod
    def _check_field(cls, value: str) -> str:
        parts = value.split(".")
        if value.startswith("trends."):
            base = ".".join(parts[:2])
            if base not in _TREND_FIELDS or len(parts) != 2 + _TREND_FIELDS[base]:
                raise ValueError(f"unknown trend field {value!r}; known: {', '.join(sorted(_TREND_FIELDS))}")
        elif parts[0] not in _STATUS_FIELDS:
            raise ValueError(f"unknown status field {parts[0]!r}; known: {', '.join(sorted(_STATUS_FIELDS))}")
        if value.count("*") > 1 or any(("*" in p and p != "*") for p in parts):
            raise ValueError("at most one segment may be '*'")
        return value

    def _values(self, ctx: Context) -> Iterator[tuple[dict[str, str], float]]:
        path = self.field_
        if path.startswith("trends."):
            yield from self._trend_values(ctx)
            return
        yield from _walk(ctx.document, path.split("."), {}, parent="")

    def _trend_values(self, ctx: Context) -> Iterator[tuple[dict[str, str], float]]:
        parts = self.field_.split(".")
        kind = ".".join(parts[:2])
        if kind in ("trends.saturation", "trends.seconds_to_saturation"):
            saturation = ctx.trends.saturation(self.window)
            if saturation is None:
                return
            value = saturation.now if kind == "trends.saturation" else saturation.seconds_to_full
            if value is not None:
                yield {}, value
            return
        queues = [q.name for q in ctx.status.queues] if parts[2] == "*" else [parts[2]]
        for queue in sorted(queues):
            growth = ctx.trends.queue_growth(queue, self.window)
            if growth is not None:
                yield ({"queue": queue} if parts[2] == "*" else {}), growth

    def conditions(self, ctx: Context) -> Iterator[Condition]:
        compare = _OPS[self.op]
        for labels, value in self._values(ctx):
            if compare(value, self.value):
                where = "".join(f" {k}={v}" for k, v in labels.items())
                yield self.condition(
                    ctx, value, self.summary or f"{self.field_} {self.op} {self.value:g}",
                    f"{self.field_}{where} is {value:g} ({self.op} {self.value:g}).",
                    **labels,
                )


def _walk(
    node: Any, parts: list[str], labels: dict[str, str], parent: str
) -> Iterator[tuple[dict[str, str], float]]:
    if not parts:
        if isinstance(node, bool):
            yield labels, 1.0 if node else 0.0
        elif isinstance(node, int | float):
            yield labels, float(node)
        return
    head, rest = parts[0], parts[1:]
    if not isinstance(node, Mapping):
        return
    if head == "*":
        label = _WILDCARD_LABEL.get(parent, "key")
        for key in sorted(node):
            yield from _walk(node[key], rest, {**labels, label: str(key)}, parent=head)
    elif head in node:
        yield from _walk(node[head], rest, labels, parent=head)
