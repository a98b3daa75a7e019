"""Answers to the usual operational questions, as pure functions over models.

Both clients call these after fetching a snapshot, so the same snapshot gives
the same answer whichever client asked; they are equally usable on a
:class:`~celerystatus.models.CeleryStatus` read from the bridge's JSON with
``CeleryStatus.from_dict``.  ``now`` (epoch seconds) is a parameter so the
answers are reproducible; it defaults to the current time.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable
from dataclasses import dataclass

from celerystatus.models import CeleryStatus, Task, TaskState, WorkerStats
from celerystatus.scaling import DEFAULT_CONCURRENCY, DEFAULT_TARGET_UTILISATION, ClusterLoad, desired_workers

__all__ = [
    "Finding",
    "FindingKind",
    "ScalingAction",
    "ScalingAdvice",
    "TaskLocation",
    "WorkerHealth",
    "find_task",
    "locate_tasks",
    "scaling_advice",
    "task_matches_eval_id",
    "worker_health",
]

# Pools whose "processes" list is legitimately empty or shorter than the
# concurrency: they run tasks in threads or green threads, not child processes.
_THREAD_POOLS = frozenset({"solo", "threads", "eventlet", "gevent", "custom"})

# When several copies of a task are found (a retry queued while the first
# attempt still runs), the most advanced one answers "where is it".
_STATE_ORDER = {TaskState.ACTIVE: 0, TaskState.RESERVED: 1, TaskState.SCHEDULED: 2}


def _now(now: float | None) -> float:
    return time.time() if now is None else now


@dataclass(frozen=True, slots=True)
class TaskLocation:
    """Where a task is and for how long it has been there."""

    task: Task
    worker: str
    state: TaskState
    running_for: float | None = None
    """Seconds since it started (active tasks with a start time)."""
    starts_in: float | None = None
    """Seconds until its ETA (scheduled tasks); negative when overdue."""

    def describe(self) -> str:
        """One line for people, e.g. ``active on celery@w1 for 12.3s``."""
        text = f"{self.state.value} on {self.worker}"
        if self.running_for is not None:
            text += f" for {self.running_for:.1f}s"
        elif self.starts_in is not None:
            text += (
                f", due in {self.starts_in:.1f}s"
                if self.starts_in >= 0
                else f", overdue by {-self.starts_in:.1f}s"
            )
        elif self.state is TaskState.RESERVED:
            text += ", waiting for a free pool slot"
        return text


def task_matches_eval_id(task: Task, eval_id: str) -> bool:
    """The server's ``eval_id`` filter rule: a positional argument equal to it,
    or the keyword argument ``eval_id`` equal to it (compared as text, so an
    integer id matches its decimal string)."""
    if any(_same(arg, eval_id) for arg in task.args):
        return True
    return "eval_id" in task.kwargs and _same(task.kwargs["eval_id"], eval_id)


def _same(value: object, wanted: str) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    return (value if isinstance(value, str) else str(value)) == wanted


def _locate(task: Task, now: float) -> TaskLocation | None:
    if task.state is None:
        return None
    running_for = None
    starts_in = None
    if task.state is TaskState.ACTIVE and task.time_start is not None:
        running_for = max(0.0, now - task.time_start)
    if task.state is TaskState.SCHEDULED and task.eta is not None:
        starts_in = task.eta - now
    return TaskLocation(
        task=task,
        worker=task.worker,
        state=task.state,
        running_for=running_for,
        starts_in=starts_in,
    )


def locate_tasks(
    source: CeleryStatus | Iterable[Task],
    eval_id: str,
    *,
    now: float | None = None,
    matched: bool = False,
) -> list[TaskLocation]:
    """Every copy of the evaluation's task, most advanced first.

    ``source`` is a full snapshot or tasks already filtered by the server
    (``search_tasks``), matched here with :func:`task_matches_eval_id`.
    ``matched=True`` says the server already matched them on ``eval_id``: it
    compares the real arguments, which it may have withheld (masked) from the
    tasks it returned, so they are not matched again.
    """
    moment = _now(now)
    tasks = source.tasks() if isinstance(source, CeleryStatus) else source
    found = [
        location
        for task in tasks
        if (matched or task_matches_eval_id(task, eval_id)) and (location := _locate(task, moment)) is not None
    ]
    found.sort(key=lambda loc: (_STATE_ORDER[loc.state], loc.worker, loc.task.id))
    return found


def find_task(
    source: CeleryStatus | Iterable[Task],
    eval_id: str,
    *,
    now: float | None = None,
    matched: bool = False,
) -> TaskLocation | None:
    """Where the evaluation's task is, or ``None`` when no worker holds it.

    ``None`` does not mean the task is lost: it may still wait in the broker
    queue (no worker has fetched it), or have finished already.  ``matched``:
    see :func:`locate_tasks`.
    """
    found = locate_tasks(source, eval_id, now=now, matched=matched)
    return found[0] if found else None


class FindingKind(str, enum.Enum):
    CRASHED_PROCESSES = "crashed_processes"
    """Fewer pool processes than the configured concurrency."""
    LOW_THROUGHPUT = "low_throughput"
    """Completing few tasks per minute while work is waiting."""
    SILENT = "silent"
    """No heartbeat event for longer than ``heartbeat_timeout``."""
    SATURATED = "saturated"
    """Every pool slot busy; new work waits (informational)."""


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    message: str
    severity: str = "warning"
    """``"warning"`` or ``"info"``."""


@dataclass(frozen=True, slots=True)
class WorkerHealth:
    hostname: str
    findings: tuple[Finding, ...] = ()
    tasks_per_minute: float | None = None
    """Accepted tasks per minute over the worker's lifetime (``None``: no uptime)."""

    @property
    def healthy(self) -> bool:
        """No warning-level finding (``info`` findings do not count)."""
        return all(f.severity != "warning" for f in self.findings)


def _backlog(status: CeleryStatus) -> int:
    return status.reserved_tasks + sum(q.messages for q in status.queues)


def _check_worker(
    stats: WorkerStats,
    *,
    backlog: int,
    now: float,
    min_tasks_per_minute: float,
    warmup: float,
    heartbeat_timeout: float,
) -> WorkerHealth:
    findings: list[Finding] = []
    pool = stats.pool
    processes = len(pool.processes)
    if pool.implementation not in _THREAD_POOLS and processes < pool.max_concurrency:
        findings.append(
            Finding(
                FindingKind.CRASHED_PROCESSES,
                f"{processes} of {pool.max_concurrency} pool processes alive",
            )
        )
    rate = stats.total / stats.uptime * 60 if stats.uptime > 0 else None
    # An idle worker on a quiet cluster is fine; only flag it when work waits.
    if rate is not None and stats.uptime >= warmup and backlog > 0 and rate < min_tasks_per_minute:
        findings.append(
            Finding(
                FindingKind.LOW_THROUGHPUT,
                f"{rate:.2f} tasks/min (< {min_tasks_per_minute:g}) while {backlog} tasks wait",
            )
        )
    if stats.last_heartbeat is not None and now - stats.last_heartbeat > heartbeat_timeout:
        findings.append(
            Finding(
                FindingKind.SILENT,
                f"no heartbeat for {now - stats.last_heartbeat:.0f}s",
            )
        )
    if pool.max_concurrency and stats.active_tasks >= pool.max_concurrency:
        findings.append(
            Finding(
                FindingKind.SATURATED,
                f"all {pool.max_concurrency} pool slots busy",
                severity="info",
            )
        )
    return WorkerHealth(stats.hostname, tuple(findings), rate)


def worker_health(
    status: CeleryStatus,
    *,
    min_tasks_per_minute: float = 1.0,
    warmup: float = 300.0,
    heartbeat_timeout: float = 60.0,
    now: float | None = None,
) -> dict[str, WorkerHealth]:
    """Findings per worker hostname.

    * crashed pool processes: a process pool with fewer processes than its
      ``max-concurrency`` (thread and green-thread pools are exempt);
    * low throughput: fewer than ``min_tasks_per_minute`` tasks accepted per
      minute of uptime, once the worker is older than ``warmup`` seconds and
      while tasks wait (reserved, or messages in the broker queues);
    * silent: the last heartbeat is older than ``heartbeat_timeout`` seconds;
    * saturated (info): every pool slot is executing a task.
    """
    moment = _now(now)
    backlog = _backlog(status)
    return {
        host: _check_worker(
            stats,
            backlog=backlog,
            now=moment,
            min_tasks_per_minute=min_tasks_per_minute,
            warmup=warmup,
            heartbeat_timeout=heartbeat_timeout,
        )
        for host, stats in sorted(status.worker_stats.items())
    }


class ScalingAction(str, enum.Enum):
    UP = "up"
    DOWN = "down"
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class ScalingAdvice:
    action: ScalingAction
    current_workers: int
    desired_workers: int
    reason: str
    demand: int = 0
    """Tasks needing a pool slot now: active + reserved + queued in the broker."""
    capacity: int = 0
    """Pool slots of the live workers."""

    @property
    def delta(self) -> int:
        return self.desired_workers - self.current_workers


def scaling_advice(
    status: CeleryStatus,
    min_workers: int,
    max_workers: int,
    *,
    target_utilisation: float = DEFAULT_TARGET_UTILISATION,
    scale_down_below: float = 0.3,
    default_concurrency: int = DEFAULT_CONCURRENCY,
    max_step: int | None = None,
) -> ScalingAdvice:
    """Whether to add or remove workers, and how many.

    Formula (:func:`celerystatus.scaling.desired_workers`, the same
    computation as the KEDA scaler and the ``celery_workers_desired`` gauge)::

        demand      = active_tasks + reserved_tasks + sum(queue messages)
        concurrency = mean max-concurrency of live workers
                      (default_concurrency when no worker is up)
        capacity    = sum of max-concurrency of live workers
        desired     = ceil(demand / (concurrency * target_utilisation))
        desired     = clamp(desired, min_workers, max_workers)

    * UP when ``desired > workers``, at most ``max_step`` workers at a time;
    * DOWN when ``desired < workers`` and ``demand / capacity`` is below
      ``scale_down_below`` (the gap between the two thresholds keeps the
      advice from flapping);
    * UP to ``min_workers`` whenever fewer workers are live;
    * HOLD otherwise, and always when the snapshot cannot be trusted
      (Celery disabled, broker not reached, or a stale snapshot): a broker
      outage looks like "no workers", and adding workers would not help.

    Scheduled tasks (waiting for an ETA) are not demand: they hold no slot
    until their time comes.
    """
    if not 0 <= min_workers <= max_workers:
        raise ValueError("need 0 <= min_workers <= max_workers")
    if not 0 < target_utilisation <= 1 or not 0 <= scale_down_below < target_utilisation:
        raise ValueError("need 0 <= scale_down_below < target_utilisation <= 1")
    load = ClusterLoad.of(status)
    current = load.workers
    capacity = load.capacity
    demand = load.backlog

    def advice(action: ScalingAction, desired: int, reason: str) -> ScalingAdvice:
        return ScalingAdvice(action, current, desired, reason, demand, capacity)

    def step_up(desired: int) -> int:
        return desired if max_step is None else min(desired, current + max_step)

    if not (status.enabled and status.connected and not status.stale):
        # A broker outage reads as "0 workers"; adding workers would not help.
        return advice(ScalingAction.HOLD, current, "snapshot not trustworthy; not scaling")
    if current < min_workers:
        return advice(ScalingAction.UP, step_up(min_workers), f"{current} < min {min_workers}")

    desired = desired_workers(load, utilisation=target_utilisation, default_concurrency=default_concurrency)
    desired = max(min_workers, min(max_workers, desired))
    utilisation = demand / capacity if capacity else (1.0 if demand else 0.0)
    if desired > current:
        return advice(
            ScalingAction.UP,
            step_up(desired),
            f"demand {demand} needs {desired} workers at {target_utilisation:.0%} utilisation",
        )
    if desired < current and utilisation < scale_down_below:
        target = desired if max_step is None else max(desired, current - max_step)
        return advice(
            ScalingAction.DOWN,
            target,
            f"utilisation {utilisation:.0%} < {scale_down_below:.0%}",
        )
    return advice(ScalingAction.HOLD, current, f"utilisation {utilisation:.0%}")
