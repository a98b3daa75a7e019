"""Turns worker replies into a ``CeleryStatus`` snapshot (pure logic, no I/O)."""

from __future__ import annotations

import ast
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from google.protobuf import struct_pb2

from celerystatus.v1 import celery_status_pb2 as pb

from .liveness import WorkerSighting


@dataclass
class WorkerReport:
    """Everything one worker told us in one round."""

    hostname: str
    stats: Mapping[str, Any] = field(default_factory=dict)
    active: Sequence[Mapping[str, Any]] = ()
    scheduled: Sequence[Mapping[str, Any]] = ()
    reserved: Sequence[Mapping[str, Any]] = ()
    registered: Sequence[str] = ()
    active_queues: Sequence[Mapping[str, Any]] = ()
    extension: bool = False


def task_name(entry: str) -> str:
    """``registered`` entries look like ``"tasks.x [rate_limit=10/s]"``; keep the name."""
    return entry.split(" ", 1)[0]


def _json_safe(value: Any) -> Any:
    # Worker replies come through the JSON serializer already, but pickle-serialized
    # task arguments may carry anything: degrade to repr rather than fail the round.
    return json.loads(json.dumps(value, default=repr))


_UNPARSED = object()


def _literal(text: str) -> Any:
    """Evaluate a Python literal from Celery's argsrepr/kwargsrepr, or return ``_UNPARSED``."""
    # Celery's saferepr leaves newlines inside quoted strings raw, which is not valid
    # Python; outside strings a repr never contains them, so escaping is lossless.
    for candidate in (text, text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")):
        try:
            return ast.literal_eval(candidate)
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            continue
    return _UNPARSED


def parse_args(value: Any) -> list[Any]:
    """Positional arguments as a list, from a real list or from Celery's ``argsrepr``."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        parsed = _literal(value)
        if parsed is _UNPARSED:
            # argsrepr is truncated for long arguments; the text still helps a search.
            return [value]
        if isinstance(parsed, (list, tuple)):
            return list(parsed)
        return [parsed]
    return [value]


def parse_kwargs(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, str):
        parsed = _literal(value)
        if isinstance(parsed, Mapping):
            return {str(k): v for k, v in parsed.items()}
        return {"__repr__": value}
    return {"__repr__": repr(value)}


def parse_eta(value: Any) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def make_task(
    info: Mapping[str, Any],
    *,
    worker: str,
    state: pb.TaskState.ValueType,
    show_args: bool,
    eta: Any = None,
    priority: Any = None,
) -> pb.Task:
    task = pb.Task(
        id=str(info.get("id") or ""),
        name=str(info.get("name") or ""),
        worker=worker,
        state=state,
        acknowledged=bool(info.get("acknowledged")),
    )
    if show_args:
        task.args.extend(_json_safe(parse_args(info.get("args"))))
        task.kwargs.update(_json_safe(parse_kwargs(info.get("kwargs"))))
        task.argsrepr = _repr_text(info, "args")
        task.kwargsrepr = _repr_text(info, "kwargs")
    else:
        task.args_redacted = True
    time_start = info.get("time_start")
    if isinstance(time_start, (int, float)):
        task.time_start = float(time_start)
    eta_value = parse_eta(eta)
    if eta_value is not None:
        task.eta = eta_value
    if isinstance(priority, int):
        task.priority = priority
    pid = info.get("worker_pid")
    if isinstance(pid, int):
        task.worker_pid = pid
    delivery = info.get("delivery_info") or {}
    if isinstance(delivery, Mapping):
        task.routing_key = str(delivery.get("routing_key") or "")
        task.exchange = str(delivery.get("exchange") or "")
        if not task.HasField("priority") and isinstance(delivery.get("priority"), int):
            task.priority = delivery["priority"]
    return task


#: Celery truncates its reprs itself; this only bounds what a hostile worker could send.
MAX_REPR = 4096


def _repr_text(info: Mapping[str, Any], key: str) -> str:
    """Celery's argsrepr/kwargsrepr: given as ``argsrepr`` by the extension, or as the
    ``args`` text itself by stock ``inspect active`` (which sends reprs, not values)."""
    value = info.get(f"{key}repr")
    if not isinstance(value, str):
        value = info.get(key)
    return value[:MAX_REPR] if isinstance(value, str) else ""


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def pool_from_stats(stats: Mapping[str, Any]) -> pb.Pool:
    raw = stats.get("pool") or {}
    if not isinstance(raw, Mapping):
        raw = {}
    pool = pb.Pool(
        max_concurrency=_int(raw.get("max-concurrency")),
        processes=[_int(p) for p in raw.get("processes") or () if isinstance(p, int)],
        implementation=_pool_name(str(raw.get("implementation") or "")),
    )
    limit = raw.get("max-tasks-per-child")
    # Celery reports "N/A" when there is no limit: that is a null, not a string.
    if isinstance(limit, int) and not isinstance(limit, bool):
        pool.max_tasks_per_child = limit
    return pool


def _pool_name(implementation: str) -> str:
    # "celery.concurrency.prefork:TaskPool" -> "prefork"
    module = implementation.split(":", 1)[0]
    return module.rsplit(".", 1)[-1] if module else ""


def worker_stats(report: WorkerReport, sighting: WorkerSighting | None) -> pb.WorkerStats:
    stats = report.stats or {}
    totals_raw = stats.get("total") or {}
    totals = (
        {str(k): _int(v) for k, v in totals_raw.items()}
        if isinstance(totals_raw, Mapping)
        else {}
    )
    ws = pb.WorkerStats(
        hostname=report.hostname,
        total=sum(totals.values()) if totals else _int(totals_raw),
        total_by_task=totals,
        pool=pool_from_stats(stats),
        pid=_int(stats.get("pid")),
        prefetch_count=_int(stats.get("prefetch_count")),
        active_queues=sorted({str(q.get("name")) for q in report.active_queues if q.get("name")}),
        registered_tasks=sorted({task_name(t) for t in report.registered}),
        active_tasks=len(report.active),
        scheduled_tasks=len(report.scheduled),
        reserved_tasks=len(report.reserved),
        extension=report.extension,
    )
    uptime = stats.get("uptime")
    if isinstance(uptime, (int, float)):
        ws.uptime.FromNanoseconds(int(uptime * 1e9))
    broker = stats.get("broker") or {}
    if isinstance(broker, Mapping):
        ws.transport = str(broker.get("transport") or "")
    rusage = stats.get("rusage")
    if isinstance(rusage, Mapping):
        ws.max_rss_kb = _int(rusage.get("maxrss"))
    if sighting is not None:
        ws.loadavg.extend(sighting.loadavg)
        ws.sw_version = sighting.sw_ver
        if sighting.heartbeat_at:
            ws.last_heartbeat.FromNanoseconds(int(sighting.heartbeat_at * 1e9))
    return ws


def build_status(
    reports: Iterable[WorkerReport],
    *,
    broker_url: str,
    queues: Sequence[pb.QueueDepth],
    sightings: Mapping[str, WorkerSighting],
    show_args: bool,
    observed_at: float | None = None,
) -> pb.CeleryStatus:
    status = pb.CeleryStatus(enabled=True, connected=True, broker_url=broker_url)
    status.observed_at.FromNanoseconds(int((observed_at or time.time()) * 1e9))
    registered: set[str] = set()
    for report in sorted(reports, key=lambda r: r.hostname):
        host = report.hostname
        status.worker_stats[host].CopyFrom(worker_stats(report, sightings.get(host)))
        registered.update(task_name(t) for t in report.registered)
        active = [
            make_task(i, worker=host, state=pb.TASK_STATE_ACTIVE, show_args=show_args)
            for i in report.active
            if isinstance(i, Mapping)
        ]
        scheduled = [
            make_task(
                entry.get("request") or {},
                worker=host,
                state=pb.TASK_STATE_SCHEDULED,
                show_args=show_args,
                eta=entry.get("eta"),
                priority=entry.get("priority"),
            )
            for entry in report.scheduled
            if isinstance(entry, Mapping)
        ]
        reserved = [
            make_task(i, worker=host, state=pb.TASK_STATE_RESERVED, show_args=show_args)
            for i in report.reserved
            if isinstance(i, Mapping)
        ]
        # Seed clients iterate every worker's list, so each live worker gets one, even empty.
        status.queue_details.active[host].tasks.extend(active)
        status.queue_details.scheduled[host].tasks.extend(scheduled)
        status.queue_details.reserved[host].tasks.extend(reserved)
        status.active_tasks += len(active)
        status.scheduled_tasks += len(scheduled)
        status.reserved_tasks += len(reserved)
    status.workers = len(status.worker_stats)
    status.registered_tasks.extend(sorted(registered))
    status.queues.extend(queues)
    return status


def disabled_status(message: str) -> pb.CeleryStatus:
    return pb.CeleryStatus(enabled=False, message=message)


def failed_status(
    last_good: pb.CeleryStatus | None, *, broker_url: str, error: str
) -> pb.CeleryStatus:
    """Keep the last good data available, marked stale, with connected=false."""
    status = pb.CeleryStatus()
    if last_good is not None:
        status.CopyFrom(last_good)
        status.stale = True
    status.enabled = True
    status.connected = False
    status.broker_url = broker_url
    status.error = error
    return status


ListValue = struct_pb2.ListValue
