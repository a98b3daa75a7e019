"""Typed, immutable views of a celery-status snapshot.

Every model converts both ways with the protobuf contract (``from_proto`` /
``to_proto``).  :meth:`CeleryStatus.to_dict` is *the* conversion to the JSON
document served at ``GET /api/celery-status``; the HTTP bridge calls it, so the
JSON shape is defined here and nowhere else.  That document always carries
every key: numbers default to ``0``, collections to empty, and values that can
be genuinely unknown (timestamps, ages, limits) to ``null``.

Conventions:

* Times are epoch seconds (``float``) and durations are seconds (``float``),
  exactly as they appear in the JSON, so a model and its dict never disagree.
* Task arguments are JSON values.  Protobuf carries numbers as doubles; whole
  numbers up to 2**53 are turned back into ``int`` (see
  :func:`celerystatus.values.value_to_python`).
* Repeated fields are tuples.  Maps are plain dicts: the dataclasses are frozen
  (no attribute can be reassigned), but do not mutate the dicts you get.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast

from google.protobuf.message import Message

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.values import (
    JSONValue,
    dict_to_struct,
    duration_to_seconds,
    epoch_to_timestamp,
    list_to_list_value,
    list_value_to_list,
    seconds_to_duration,
    struct_to_dict,
    timestamp_to_epoch,
)

__all__ = [
    "CeleryStatus",
    "HistoryInfo",
    "HistoryState",
    "InspectionInfo",
    "InspectionMethod",
    "JSONValue",
    "Pool",
    "QueueDepth",
    "QueueDetails",
    "ReplicaInfo",
    "ReplicaRole",
    "ServingStatus",
    "StatusView",
    "Task",
    "TaskFilter",
    "TaskSearchResult",
    "TaskState",
    "WorkerStats",
]


class TaskState(str, enum.Enum):
    """Where a task is on its worker; the value is its ``queue_details`` key."""

    ACTIVE = "active"
    SCHEDULED = "scheduled"
    RESERVED = "reserved"

    def to_proto(self) -> pb.TaskState.ValueType:
        return _TASK_STATE_TO_PROTO[self]

    @classmethod
    def from_proto(cls, value: pb.TaskState.ValueType) -> TaskState | None:
        return _TASK_STATE_FROM_PROTO.get(value)


class StatusView(str, enum.Enum):
    """How much of a snapshot the server sends."""

    SUMMARY = "summary"
    """Counters, workers and queues; ``queue_details`` left empty."""
    FULL = "full"
    """Everything, including every task."""

    def to_proto(self) -> pb.StatusView.ValueType:
        return pb.STATUS_VIEW_SUMMARY if self is StatusView.SUMMARY else pb.STATUS_VIEW_FULL

    @classmethod
    def from_proto(cls, value: pb.StatusView.ValueType) -> StatusView:
        return StatusView.SUMMARY if value == pb.STATUS_VIEW_SUMMARY else StatusView.FULL


class InspectionMethod(str, enum.Enum):
    """How the server's last inspection round talked to the workers."""

    STOCK = "stock"
    EXTENSION = "extension"
    MIXED = "mixed"

    def to_proto(self) -> pb.InspectionMethod.ValueType:
        return _METHOD_TO_PROTO[self]

    @classmethod
    def from_proto(cls, value: pb.InspectionMethod.ValueType) -> InspectionMethod | None:
        return _METHOD_FROM_PROTO.get(value)


class ServingStatus(str, enum.Enum):
    """A server's answer to the standard gRPC health check (``grpc.health.v1``)."""

    UNKNOWN = "UNKNOWN"
    SERVING = "SERVING"
    NOT_SERVING = "NOT_SERVING"
    SERVICE_UNKNOWN = "SERVICE_UNKNOWN"
    """The server does not know the service name that was asked about."""

    @classmethod
    def from_proto(cls, value: int) -> ServingStatus:
        names = ("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")
        return cls(names[value]) if 0 <= value < len(names) else cls.UNKNOWN

class ReplicaRole(str, enum.Enum):
    """The role of the replica that answered, in a replicated deployment."""

    LEADER = "leader"
    """Holds the lease and runs the collector."""
    FOLLOWER = "follower"
    """Serves what the leader publishes."""
    DEGRADED = "degraded"
    """Cannot reach the coordination store; collects on its own meanwhile."""

    def to_proto(self) -> pb.ReplicaRole.ValueType:
        return _ROLE_TO_PROTO[self]

    @classmethod
    def from_proto(cls, value: pb.ReplicaRole.ValueType) -> ReplicaRole | None:
        return _ROLE_FROM_PROTO.get(value)


_TASK_STATE_TO_PROTO: dict[TaskState, pb.TaskState.ValueType] = {
    TaskState.ACTIVE: pb.TASK_STATE_ACTIVE,
    TaskState.SCHEDULED: pb.TASK_STATE_SCHEDULED,
    TaskState.RESERVED: pb.TASK_STATE_RESERVED,
}
_TASK_STATE_FROM_PROTO = {v: k for k, v in _TASK_STATE_TO_PROTO.items()}

_METHOD_TO_PROTO: dict[InspectionMethod, pb.InspectionMethod.ValueType] = {
    InspectionMethod.STOCK: pb.INSPECTION_METHOD_STOCK,
    InspectionMethod.EXTENSION: pb.INSPECTION_METHOD_EXTENSION,
    InspectionMethod.MIXED: pb.INSPECTION_METHOD_MIXED,
}
_METHOD_FROM_PROTO = {v: k for k, v in _METHOD_TO_PROTO.items()}

_ROLE_TO_PROTO: dict[ReplicaRole, pb.ReplicaRole.ValueType] = {
    ReplicaRole.LEADER: pb.REPLICA_ROLE_LEADER,
    ReplicaRole.FOLLOWER: pb.REPLICA_ROLE_FOLLOWER,
    ReplicaRole.DEGRADED: pb.REPLICA_ROLE_DEGRADED,
}
_ROLE_FROM_PROTO = {v: k for k, v in _ROLE_TO_PROTO.items()}


def _copy_if_set(target: Message, source: Message) -> None:
    # Copying an all-default submessage would still mark it present, so a
    # message read and written back would no longer compare equal.
    if source.ByteSize():
        target.CopyFrom(source)


# --- helpers for reading loosely-shaped dicts (seed JSON, older servers) ---


def _opt_float(value: object) -> float | None:
    return None if value is None else float(cast(float, value))


def _opt_int(value: object) -> int | None:
    return None if value is None else int(cast(int, value))


def _opt_str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _mapping(value: object) -> Mapping[str, Any]:
    return cast(Mapping[str, Any], value) if isinstance(value, Mapping) else {}


@dataclass(frozen=True, slots=True)
class Task:
    """A task held by a worker: executing, waiting for its ETA, or prefetched."""

    id: str
    name: str = ""
    args: tuple[JSONValue, ...] = ()
    kwargs: dict[str, JSONValue] = field(default_factory=dict)
    args_redacted: bool = False
    """True when the server withheld some arguments: each withheld value is
    ``"***"`` in place, so ``args[0]`` means the same for every caller."""
    time_start: float | None = None
    """Epoch seconds when the task started executing (active tasks)."""
    eta: float | None = None
    """Epoch seconds of the task's ETA (scheduled tasks)."""
    priority: int | None = None
    worker: str = ""
    """Hostname of the worker holding the task."""
    state: TaskState | None = None
    worker_pid: int | None = None
    acknowledged: bool = False
    routing_key: str = ""
    exchange: str = ""
    argsrepr: str = ""
    """Celery's argsrepr text (what the producer chose to show), when the server sends it."""
    kwargsrepr: str = ""

    @classmethod
    def from_proto(cls, msg: pb.Task) -> Task:
        return cls(
            id=msg.id,
            name=msg.name,
            args=tuple(list_value_to_list(msg.args)),
            kwargs=struct_to_dict(msg.kwargs),
            args_redacted=msg.args_redacted,
            time_start=msg.time_start if msg.HasField("time_start") else None,
            eta=msg.eta if msg.HasField("eta") else None,
            priority=msg.priority if msg.HasField("priority") else None,
            worker=msg.worker,
            state=TaskState.from_proto(msg.state),
            worker_pid=msg.worker_pid if msg.HasField("worker_pid") else None,
            acknowledged=msg.acknowledged,
            routing_key=msg.routing_key,
            exchange=msg.exchange,
            argsrepr=msg.argsrepr,
            kwargsrepr=msg.kwargsrepr,
        )

    def to_proto(self) -> pb.Task:
        msg = pb.Task(
            id=self.id,
            name=self.name,
            args_redacted=self.args_redacted,
            worker=self.worker,
            acknowledged=self.acknowledged,
            routing_key=self.routing_key,
            exchange=self.exchange,
            argsrepr=self.argsrepr,
            kwargsrepr=self.kwargsrepr,
        )
        _copy_if_set(msg.args, list_to_list_value(self.args))
        _copy_if_set(msg.kwargs, dict_to_struct(self.kwargs))
        if self.state is not None:
            msg.state = self.state.to_proto()
        if self.time_start is not None:
            msg.time_start = self.time_start
        if self.eta is not None:
            msg.eta = self.eta
        if self.priority is not None:
            msg.priority = self.priority
        if self.worker_pid is not None:
            msg.worker_pid = self.worker_pid
        return msg

    def to_dict(self) -> dict[str, Any]:
        """The task as it appears in ``queue_details``.

        ``worker`` and ``state`` are not included: in the status document they
        are given by where the task sits (``queue_details[state][worker]``).
        ``argsrepr``/``kwargsrepr`` appear only when the server sent them.
        """
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
            "time_start": self.time_start,
            "eta": self.eta,
            "priority": self.priority,
            "worker_pid": self.worker_pid,
            "acknowledged": self.acknowledged,
            "routing_key": self.routing_key,
            "exchange": self.exchange,
            "args_redacted": self.args_redacted,
        }
        if self.argsrepr:
            data["argsrepr"] = self.argsrepr
        if self.kwargsrepr:
            data["kwargsrepr"] = self.kwargsrepr
        return data

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        worker: str = "",
        state: TaskState | None = None,
    ) -> Task:
        """Read a task dict; ``worker``/``state`` come from its position."""
        args = data.get("args") or ()
        kwargs = data.get("kwargs") or {}
        raw_state = data.get("state")
        return cls(
            id=str(data.get("id", "")),
            name=str(data.get("name", "")),
            args=tuple(args) if isinstance(args, list | tuple) else (args,),
            kwargs=dict(kwargs) if isinstance(kwargs, Mapping) else {},
            args_redacted=bool(data.get("args_redacted", False)),
            time_start=_opt_float(data.get("time_start")),
            eta=_opt_float(data.get("eta")),
            priority=_opt_int(data.get("priority")),
            worker=str(data.get("worker", worker)),
            state=TaskState(raw_state) if raw_state else state,
            worker_pid=_opt_int(data.get("worker_pid")),
            acknowledged=bool(data.get("acknowledged", False)),
            routing_key=str(data.get("routing_key", "")),
            exchange=str(data.get("exchange", "")),
            argsrepr=str(data.get("argsrepr") or ""),
            kwargsrepr=str(data.get("kwargsrepr") or ""),
        )


@dataclass(frozen=True, slots=True)
class Pool:
    """A worker's execution pool."""

    max_concurrency: int = 0
    processes: tuple[int, ...] = ()
    """Pids of the pool processes (empty for thread/solo pools)."""
    max_tasks_per_child: int | None = None
    """``None`` when the worker recycles no process."""
    implementation: str = ""

    @classmethod
    def from_proto(cls, msg: pb.Pool) -> Pool:
        return cls(
            max_concurrency=msg.max_concurrency,
            processes=tuple(msg.processes),
            max_tasks_per_child=(
                msg.max_tasks_per_child if msg.HasField("max_tasks_per_child") else None
            ),
            implementation=msg.implementation,
        )

    def to_proto(self) -> pb.Pool:
        msg = pb.Pool(
            max_concurrency=self.max_concurrency,
            processes=self.processes,
            implementation=self.implementation,
        )
        if self.max_tasks_per_child is not None:
            msg.max_tasks_per_child = self.max_tasks_per_child
        return msg

    def to_dict(self) -> dict[str, Any]:
        return {
            "max-concurrency": self.max_concurrency,
            "processes": list(self.processes),
            "max-tasks-per-child": self.max_tasks_per_child,
            "implementation": self.implementation,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pool:
        return cls(
            max_concurrency=int(data.get("max-concurrency") or 0),
            processes=tuple(int(p) for p in data.get("processes") or ()),
            max_tasks_per_child=_opt_int(data.get("max-tasks-per-child")),
            implementation=str(data.get("implementation") or ""),
        )


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """One live worker."""

    hostname: str
    total: int = 0
    """Tasks accepted since the worker started, all names together."""
    total_by_task: dict[str, int] = field(default_factory=dict)
    pool: Pool = field(default_factory=Pool)
    pid: int = 0
    uptime: float = 0.0
    """Seconds since the worker started."""
    prefetch_count: int = 0
    active_queues: tuple[str, ...] = ()
    registered_tasks: tuple[str, ...] = ()
    active_tasks: int = 0
    scheduled_tasks: int = 0
    reserved_tasks: int = 0
    loadavg: tuple[float, ...] = ()
    transport: str = ""
    sw_version: str = ""
    last_heartbeat: float | None = None
    """Epoch seconds of the last heartbeat event seen, if any."""
    max_rss_kb: int = 0
    extension: bool = False
    """True when the worker answered through the celery-status extension."""

    @classmethod
    def from_proto(cls, msg: pb.WorkerStats, hostname: str | None = None) -> WorkerStats:
        return cls(
            hostname=msg.hostname or hostname or "",
            total=msg.total,
            total_by_task=dict(msg.total_by_task),
            pool=Pool.from_proto(msg.pool),
            pid=msg.pid,
            uptime=duration_to_seconds(msg.uptime),
            prefetch_count=msg.prefetch_count,
            active_queues=tuple(msg.active_queues),
            registered_tasks=tuple(msg.registered_tasks),
            active_tasks=msg.active_tasks,
            scheduled_tasks=msg.scheduled_tasks,
            reserved_tasks=msg.reserved_tasks,
            loadavg=tuple(msg.loadavg),
            transport=msg.transport,
            sw_version=msg.sw_version,
            last_heartbeat=(
                timestamp_to_epoch(msg.last_heartbeat) if msg.HasField("last_heartbeat") else None
            ),
            max_rss_kb=msg.max_rss_kb,
            extension=msg.extension,
        )

    def to_proto(self) -> pb.WorkerStats:
        msg = pb.WorkerStats(
            hostname=self.hostname,
            total=self.total,
            total_by_task=self.total_by_task,
            pid=self.pid,
            prefetch_count=self.prefetch_count,
            active_queues=self.active_queues,
            registered_tasks=self.registered_tasks,
            active_tasks=self.active_tasks,
            scheduled_tasks=self.scheduled_tasks,
            reserved_tasks=self.reserved_tasks,
            loadavg=self.loadavg,
            transport=self.transport,
            sw_version=self.sw_version,
            max_rss_kb=self.max_rss_kb,
            extension=self.extension,
        )
        _copy_if_set(msg.pool, self.pool.to_proto())
        _copy_if_set(msg.uptime, seconds_to_duration(self.uptime))
        if self.last_heartbeat is not None:
            msg.last_heartbeat.CopyFrom(epoch_to_timestamp(self.last_heartbeat))
        return msg

    def to_dict(self) -> dict[str, Any]:
        """The worker as it appears in ``worker_stats`` (keyed by hostname)."""
        return {
            "total": self.total,
            "pool": self.pool.to_dict(),
            "total_by_task": dict(self.total_by_task),
            "pid": self.pid,
            "uptime": self.uptime,
            "prefetch_count": self.prefetch_count,
            "active_queues": list(self.active_queues),
            "registered_tasks": list(self.registered_tasks),
            "active_tasks": self.active_tasks,
            "scheduled_tasks": self.scheduled_tasks,
            "reserved_tasks": self.reserved_tasks,
            "loadavg": list(self.loadavg),
            "transport": self.transport,
            "sw_version": self.sw_version,
            "last_heartbeat": self.last_heartbeat,
            "max_rss_kb": self.max_rss_kb,
            "extension": self.extension,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, hostname: str) -> WorkerStats:
        return cls(
            hostname=hostname,
            total=int(data.get("total") or 0),
            total_by_task={str(k): int(v) for k, v in _mapping(data.get("total_by_task")).items()},
            pool=Pool.from_dict(_mapping(data.get("pool"))),
            pid=int(data.get("pid") or 0),
            uptime=float(data.get("uptime") or 0.0),
            prefetch_count=int(data.get("prefetch_count") or 0),
            active_queues=tuple(str(q) for q in data.get("active_queues") or ()),
            registered_tasks=tuple(str(t) for t in data.get("registered_tasks") or ()),
            active_tasks=int(data.get("active_tasks") or 0),
            scheduled_tasks=int(data.get("scheduled_tasks") or 0),
            reserved_tasks=int(data.get("reserved_tasks") or 0),
            loadavg=tuple(float(x) for x in data.get("loadavg") or ()),
            transport=str(data.get("transport") or ""),
            sw_version=str(data.get("sw_version") or ""),
            last_heartbeat=_opt_float(data.get("last_heartbeat")),
            max_rss_kb=int(data.get("max_rss_kb") or 0),
            extension=bool(data.get("extension", False)),
        )


@dataclass(frozen=True, slots=True)
class QueueDetails:
    """Tasks held by workers, per state and then per worker hostname."""

    active: dict[str, tuple[Task, ...]] = field(default_factory=dict)
    scheduled: dict[str, tuple[Task, ...]] = field(default_factory=dict)
    reserved: dict[str, tuple[Task, ...]] = field(default_factory=dict)

    def by_state(self, state: TaskState) -> dict[str, tuple[Task, ...]]:
        if state is TaskState.ACTIVE:
            return self.active
        if state is TaskState.SCHEDULED:
            return self.scheduled
        return self.reserved

    def tasks(self) -> Iterator[Task]:
        """Every task, active first, then scheduled, then reserved."""
        for state in TaskState:
            for tasks in self.by_state(state).values():
                yield from tasks

    @classmethod
    def from_proto(cls, msg: pb.QueueDetails) -> QueueDetails:
        def read(lists: Mapping[str, pb.TaskList], state: TaskState) -> dict[str, tuple[Task, ...]]:
            # The server may leave worker/state unset inside a TaskList since
            # both are implied by the position; fill them in for the caller.
            result: dict[str, tuple[Task, ...]] = {}
            for host, task_list in lists.items():
                tasks = []
                for task_msg in task_list.tasks:
                    task = Task.from_proto(task_msg)
                    if not task.worker or task.state is None:
                        task = _replace_task(task, worker=task.worker or host, state=state)
                    tasks.append(task)
                result[host] = tuple(tasks)
            return result

        return cls(
            active=read(msg.active, TaskState.ACTIVE),
            scheduled=read(msg.scheduled, TaskState.SCHEDULED),
            reserved=read(msg.reserved, TaskState.RESERVED),
        )

    def to_proto(self) -> pb.QueueDetails:
        msg = pb.QueueDetails()
        for state, target in (
            (TaskState.ACTIVE, msg.active),
            (TaskState.SCHEDULED, msg.scheduled),
            (TaskState.RESERVED, msg.reserved),
        ):
            for host, tasks in self.by_state(state).items():
                target[host].tasks.extend(task.to_proto() for task in tasks)
        return msg

    def to_dict(self) -> dict[str, Any]:
        return {
            state.value: {
                host: [task.to_dict() for task in tasks]
                for host, tasks in self.by_state(state).items()
            }
            for state in TaskState
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QueueDetails:
        def read(state: TaskState) -> dict[str, tuple[Task, ...]]:
            return {
                str(host): tuple(
                    Task.from_dict(task, worker=str(host), state=state) for task in tasks or ()
                )
                for host, tasks in _mapping(data.get(state.value)).items()
            }

        return cls(
            active=read(TaskState.ACTIVE),
            scheduled=read(TaskState.SCHEDULED),
            reserved=read(TaskState.RESERVED),
        )


def _replace_task(task: Task, *, worker: str, state: TaskState) -> Task:
    return replace(task, worker=worker, state=state)


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """Messages waiting in one broker queue."""

    name: str
    messages: int = 0
    consumers: int | None = None
    """Consumers attached, when the broker reports it (AMQP); else ``None``."""

    @classmethod
    def from_proto(cls, msg: pb.QueueDepth) -> QueueDepth:
        return cls(
            name=msg.name,
            messages=msg.messages,
            consumers=msg.consumers if msg.HasField("consumers") else None,
        )

    def to_proto(self) -> pb.QueueDepth:
        msg = pb.QueueDepth(name=self.name, messages=self.messages)
        if self.consumers is not None:
            msg.consumers = self.consumers
        return msg

    def to_dict(self) -> dict[str, Any]:
        return {"messages": self.messages, "consumers": self.consumers}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, name: str) -> QueueDepth:
        return cls(
            name=name,
            messages=int(data.get("messages") or 0),
            consumers=_opt_int(data.get("consumers")),
        )


@dataclass(frozen=True, slots=True)
class InspectionInfo:
    """How the snapshot was produced."""

    duration: float | None = None
    """Wall time of the inspection round, in seconds."""
    method: InspectionMethod | None = None
    round: int = 0
    """Rounds run by the server process since it started."""
    errors: int = 0
    """Rounds that failed since the server process started."""
    refresh_interval: float | None = None
    """The server collector's refresh interval, in seconds."""

    @classmethod
    def from_proto(cls, msg: pb.InspectionInfo) -> InspectionInfo:
        return cls(
            duration=duration_to_seconds(msg.duration) if msg.HasField("duration") else None,
            method=InspectionMethod.from_proto(msg.method),
            round=msg.round,
            errors=msg.errors,
            refresh_interval=(
                duration_to_seconds(msg.refresh_interval)
                if msg.HasField("refresh_interval")
                else None
            ),
        )

    def to_proto(self) -> pb.InspectionInfo:
        msg = pb.InspectionInfo(round=self.round, errors=self.errors)
        if self.method is not None:
            msg.method = self.method.to_proto()
        if self.duration is not None:
            msg.duration.CopyFrom(seconds_to_duration(self.duration))
        if self.refresh_interval is not None:
            msg.refresh_interval.CopyFrom(seconds_to_duration(self.refresh_interval))
        return msg

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration": self.duration,
            "method": None if self.method is None else self.method.value,
            "round": self.round,
            "errors": self.errors,
            "refresh_interval": self.refresh_interval,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InspectionInfo:
        method = data.get("method")
        return cls(
            duration=_opt_float(data.get("duration")),
            method=InspectionMethod(method) if method else None,
            round=int(data.get("round") or 0),
            errors=int(data.get("errors") or 0),
            refresh_interval=_opt_float(data.get("refresh_interval")),
        )


class HistoryState(str, enum.Enum):
    """Whether the server records history and whether its store keeps up."""

    OFF = "off"
    OK = "ok"
    DEGRADED = "degraded"
    """The store is slow or unreachable; samples are buffered, then dropped."""

    def to_proto(self) -> pb.HistoryState.ValueType:
        return _HISTORY_STATE_TO_PROTO[self]

    @classmethod
    def from_proto(cls, value: pb.HistoryState.ValueType) -> HistoryState | None:
        return _HISTORY_STATE_FROM_PROTO.get(value)


_HISTORY_STATE_TO_PROTO: dict[HistoryState, pb.HistoryState.ValueType] = {
    HistoryState.OFF: pb.HISTORY_STATE_OFF,
    HistoryState.OK: pb.HISTORY_STATE_OK,
    HistoryState.DEGRADED: pb.HISTORY_STATE_DEGRADED,
}
_HISTORY_STATE_FROM_PROTO = {v: k for k, v in _HISTORY_STATE_TO_PROTO.items()}


@dataclass(frozen=True, slots=True)
class HistoryInfo:
    """The server's history store, as of this snapshot (``state`` None: the server has none)."""

    state: HistoryState | None = None
    dropped: int = 0
    """Samples and task runs dropped since the server started (store too slow or down)."""
    error: str | None = None
    buffered: int = 0
    last_write: float | None = None
    interval: float | None = None
    """Seconds between two recorded samples."""

    @classmethod
    def from_proto(cls, msg: pb.HistoryInfo) -> HistoryInfo:
        return cls(
            state=HistoryState.from_proto(msg.state),
            dropped=msg.dropped,
            error=msg.error or None,
            buffered=msg.buffered,
            last_write=timestamp_to_epoch(msg.last_write) if msg.HasField("last_write") else None,
            interval=duration_to_seconds(msg.interval) if msg.HasField("interval") else None,
        )

    def to_proto(self) -> pb.HistoryInfo:
        msg = pb.HistoryInfo(dropped=self.dropped, error=self.error or "", buffered=self.buffered)
        if self.state is not None:
            msg.state = self.state.to_proto()
        if self.last_write is not None:
            msg.last_write.CopyFrom(epoch_to_timestamp(self.last_write))
        if self.interval is not None:
            msg.interval.CopyFrom(seconds_to_duration(self.interval))
        return msg

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": None if self.state is None else self.state.value,
            "dropped": self.dropped,
            "error": self.error,
            "buffered": self.buffered,
            "last_write": self.last_write,
            "interval": self.interval,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HistoryInfo:
        state = data.get("state")
        return cls(
            state=HistoryState(state) if state else None,
            dropped=int(data.get("dropped") or 0),
            error=_opt_str(data.get("error")),
            buffered=int(data.get("buffered") or 0),
            last_write=_opt_float(data.get("last_write")),
            interval=_opt_float(data.get("interval")),
        )


@dataclass(frozen=True, slots=True)
class ReplicaInfo:
    """Which replica observed a snapshot and which one answered (replicated deployments only)."""

    observed_by: str = ""
    """Name of the replica whose collector ran the round."""
    term: int = 0
    """Fencing token of the observer's lease (0: observed by a degraded replica, without a lease)."""
    served_by: str = ""
    """Name of the replica that answered."""
    role: ReplicaRole | None = None
    """Role of the replica that answered."""
    degraded: bool = False
    """True when the answering replica cannot reach the coordination store."""
    published_at: float | None = None
    """Epoch seconds when the leader published the snapshot."""

    @classmethod
    def from_proto(cls, msg: pb.ReplicaInfo) -> ReplicaInfo:
        return cls(
            observed_by=msg.observed_by,
            term=msg.term,
            served_by=msg.served_by,
            role=ReplicaRole.from_proto(msg.role),
            degraded=msg.degraded,
            published_at=timestamp_to_epoch(msg.published_at) if msg.HasField("published_at") else None,
        )

    def to_proto(self) -> pb.ReplicaInfo:
        msg = pb.ReplicaInfo(
            observed_by=self.observed_by, term=self.term, served_by=self.served_by, degraded=self.degraded
        )
        if self.role is not None:
            msg.role = self.role.to_proto()
        if self.published_at is not None:
            msg.published_at.CopyFrom(epoch_to_timestamp(self.published_at))
        return msg

    def to_dict(self) -> dict[str, Any]:
        return {
            "observed_by": self.observed_by,
            "term": self.term,
            "served_by": self.served_by,
            "role": None if self.role is None else self.role.value,
            "degraded": self.degraded,
            "published_at": self.published_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReplicaInfo:
        role = data.get("role")
        return cls(
            observed_by=str(data.get("observed_by") or ""),
            term=int(data.get("term") or 0),
            served_by=str(data.get("served_by") or ""),
            role=ReplicaRole(role) if role else None,
            degraded=bool(data.get("degraded", False)),
            published_at=_opt_float(data.get("published_at")),
        )


@dataclass(frozen=True, slots=True)
class CeleryStatus:
    """One snapshot of a Celery cluster."""

    enabled: bool = False
    """False when the server runs with Celery disabled (see ``message``)."""
    connected: bool = False
    """True when the server's last inspection round reached the broker."""
    workers: int = 0
    """Live workers: those that answered the last round."""
    broker_url: str = ""
    """Broker URL with its password masked."""
    active_tasks: int = 0
    scheduled_tasks: int = 0
    reserved_tasks: int = 0
    registered_tasks: tuple[str, ...] = ()
    worker_stats: dict[str, WorkerStats] = field(default_factory=dict)
    queue_details: QueueDetails = field(default_factory=QueueDetails)
    queues: tuple[QueueDepth, ...] = ()
    observed_at: float | None = None
    """Epoch seconds when the inspection round behind this snapshot finished."""
    age: float | None = None
    """Seconds between ``observed_at`` and the moment the server sent it."""
    stale: bool = False
    """True when the latest round failed and this is an older, good snapshot."""
    error: str | None = None
    message: str | None = None
    inspection: InspectionInfo = field(default_factory=InspectionInfo)
    history: HistoryInfo = field(default_factory=HistoryInfo)
    """The server's history store; ``history.state`` is ``degraded`` while it cannot keep up."""
    replica: ReplicaInfo | None = None
    """Set by replicated servers (``--coordination-url``); ``None`` for a server running alone."""

    @property
    def healthy(self) -> bool:
        """Enabled, connected to the broker, fresh, and at least one worker."""
        return self.enabled and self.connected and not self.stale and self.workers > 0

    def tasks(self) -> Iterator[Task]:
        """Every task in ``queue_details``."""
        return self.queue_details.tasks()

    @classmethod
    def from_proto(cls, msg: pb.CeleryStatus) -> CeleryStatus:
        return cls(
            enabled=msg.enabled,
            connected=msg.connected,
            workers=msg.workers,
            broker_url=msg.broker_url,
            active_tasks=msg.active_tasks,
            scheduled_tasks=msg.scheduled_tasks,
            reserved_tasks=msg.reserved_tasks,
            registered_tasks=tuple(msg.registered_tasks),
            worker_stats={
                host: WorkerStats.from_proto(stats, hostname=host)
                for host, stats in msg.worker_stats.items()
            },
            queue_details=QueueDetails.from_proto(msg.queue_details),
            queues=tuple(QueueDepth.from_proto(q) for q in msg.queues),
            observed_at=(
                timestamp_to_epoch(msg.observed_at) if msg.HasField("observed_at") else None
            ),
            age=duration_to_seconds(msg.age) if msg.HasField("age") else None,
            stale=msg.stale,
            error=msg.error or None,
            message=msg.message or None,
            inspection=InspectionInfo.from_proto(msg.inspection),
            history=HistoryInfo.from_proto(msg.history),
            replica=ReplicaInfo.from_proto(msg.replica) if msg.HasField("replica") else None,
        )

    def to_proto(self) -> pb.CeleryStatus:
        msg = pb.CeleryStatus(
            enabled=self.enabled,
            connected=self.connected,
            workers=self.workers,
            broker_url=self.broker_url,
            active_tasks=self.active_tasks,
            scheduled_tasks=self.scheduled_tasks,
            reserved_tasks=self.reserved_tasks,
            registered_tasks=self.registered_tasks,
            queues=[q.to_proto() for q in self.queues],
            stale=self.stale,
            error=self.error or "",
            message=self.message or "",
        )
        _copy_if_set(msg.queue_details, self.queue_details.to_proto())
        _copy_if_set(msg.inspection, self.inspection.to_proto())
        _copy_if_set(msg.history, self.history.to_proto())
        if self.replica is not None:
            msg.replica.CopyFrom(self.replica.to_proto())
        for host, stats in self.worker_stats.items():
            msg.worker_stats[host].CopyFrom(stats.to_proto())
        if self.observed_at is not None:
            msg.observed_at.CopyFrom(epoch_to_timestamp(self.observed_at))
        if self.age is not None:
            msg.age.CopyFrom(seconds_to_duration(self.age))
        return msg

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``GET /api/celery-status`` (every key, always)."""
        return {
            "enabled": self.enabled,
            "connected": self.connected,
            "workers": self.workers,
            "broker_url": self.broker_url,
            "active_tasks": self.active_tasks,
            "scheduled_tasks": self.scheduled_tasks,
            "registered_tasks": list(self.registered_tasks),
            "worker_stats": {host: stats.to_dict() for host, stats in self.worker_stats.items()},
            "queue_details": self.queue_details.to_dict(),
            "reserved_tasks": self.reserved_tasks,
            "queues": {q.name: q.to_dict() for q in self.queues},
            "observed_at": self.observed_at,
            "age": self.age,
            "stale": self.stale,
            "error": self.error,
            "message": self.message,
            "inspection": self.inspection.to_dict(),
            "history": self.history.to_dict(),
            "replica": None if self.replica is None else self.replica.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CeleryStatus:
        """Read the JSON document; missing keys take their defaults.

        Tolerating missing keys lets the SDK read the minimal seed-era
        document as well as the full one.
        """
        return cls(
            enabled=bool(data.get("enabled", False)),
            connected=bool(data.get("connected", False)),
            workers=int(data.get("workers") or 0),
            broker_url=str(data.get("broker_url") or ""),
            active_tasks=int(data.get("active_tasks") or 0),
            scheduled_tasks=int(data.get("scheduled_tasks") or 0),
            reserved_tasks=int(data.get("reserved_tasks") or 0),
            registered_tasks=tuple(str(t) for t in data.get("registered_tasks") or ()),
            worker_stats={
                str(host): WorkerStats.from_dict(_mapping(stats), hostname=str(host))
                for host, stats in _mapping(data.get("worker_stats")).items()
            },
            queue_details=QueueDetails.from_dict(_mapping(data.get("queue_details"))),
            queues=tuple(
                QueueDepth.from_dict(_mapping(depth), name=str(name))
                for name, depth in _mapping(data.get("queues")).items()
            ),
            observed_at=_opt_float(data.get("observed_at")),
            age=_opt_float(data.get("age")),
            stale=bool(data.get("stale", False)),
            error=_opt_str(data.get("error")),
            message=_opt_str(data.get("message")),
            inspection=InspectionInfo.from_dict(_mapping(data.get("inspection"))),
            history=HistoryInfo.from_dict(_mapping(data.get("history"))),
            replica=ReplicaInfo.from_dict(_mapping(data["replica"])) if data.get("replica") else None,
        )

    @classmethod
    def disabled(cls, message: str) -> CeleryStatus:
        """The status a server reports when it runs with Celery disabled."""
        return cls(enabled=False, message=message)


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Which tasks to return.  Unset criteria match everything; set ones AND."""

    task_name: str = ""
    """With a dot, the exact name (``"tasks.evaluate_code"``); without one,
    also the last dotted component (``"evaluate_code"``)."""
    eval_id: str = ""
    """A positional argument equal to it, or the keyword argument ``eval_id``;
    matched on the real arguments even when they are withheld from the caller."""
    arg: str = ""
    """Any positional or keyword argument equal to it, among those the caller may see."""
    worker: str = ""
    """Worker hostname, e.g. ``"celery@worker-1"``."""
    states: tuple[TaskState, ...] = ()
    """States to include; empty means all."""
    task_id: str = ""

    def to_proto(self) -> pb.TaskFilter:
        return pb.TaskFilter(
            task_name=self.task_name,
            eval_id=self.eval_id,
            arg=self.arg,
            worker=self.worker,
            states=[state.to_proto() for state in self.states],
            task_id=self.task_id,
        )

    @classmethod
    def from_proto(cls, msg: pb.TaskFilter) -> TaskFilter:
        return cls(
            task_name=msg.task_name,
            eval_id=msg.eval_id,
            arg=msg.arg,
            worker=msg.worker,
            states=tuple(s for s in map(TaskState.from_proto, msg.states) if s is not None),
            task_id=msg.task_id,
        )


@dataclass(frozen=True, slots=True)
class TaskSearchResult:
    """Tasks matching a filter, from one snapshot."""

    tasks: tuple[Task, ...] = ()
    observed_at: float | None = None
    """Epoch seconds when the snapshot the tasks come from was taken."""
    stale: bool = False
    truncated: bool = False
    """True when more tasks matched than were returned."""
    search_limited: str | None = None
    """``"arguments withheld"`` when the ``arg`` criterion could only look at
    the argument values the caller may see (so a withheld match is missing)."""

    @classmethod
    def from_proto(cls, msg: pb.SearchTasksResponse) -> TaskSearchResult:
        return cls(
            tasks=tuple(Task.from_proto(t) for t in msg.tasks),
            observed_at=(
                timestamp_to_epoch(msg.observed_at) if msg.HasField("observed_at") else None
            ),
            stale=msg.stale,
            truncated=msg.truncated,
            search_limited=msg.search_limited or None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``GET /api/celery-status/tasks``.

        Outside ``queue_details`` nothing implies where a task sits, so each
        task carries the ``worker`` and ``state`` the status document leaves out.
        """
        tasks = []
        for task in self.tasks:
            entry = task.to_dict()
            entry["worker"] = task.worker
            entry["state"] = None if task.state is None else task.state.value
            tasks.append(entry)
        data: dict[str, Any] = {
            "tasks": tasks,
            "observed_at": self.observed_at,
            "stale": self.stale,
            "truncated": self.truncated,
        }
        if self.search_limited:
            data["search_limited"] = self.search_limited
        return data

    def to_proto(self) -> pb.SearchTasksResponse:
        msg = pb.SearchTasksResponse(
            tasks=[t.to_proto() for t in self.tasks],
            stale=self.stale,
            truncated=self.truncated,
            search_limited=self.search_limited or "",
        )
        if self.observed_at is not None:
            msg.observed_at.CopyFrom(epoch_to_timestamp(self.observed_at))
        return msg
