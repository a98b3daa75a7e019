"""Names of the recorded series, what kind of value each holds, and how a request names them.

Grammar::

    <cluster>                       workers, active_tasks, ... (CLUSTER below)
    queue:<queue>                   messages waiting in the broker
    worker:<host>:<metric>          WORKER_METRICS below
    worker:<host>:task:<task name>  tasks of that name accepted by the worker (cumulative)
    task:<task name>                the same, summed over workers

``*`` and ``?`` in a requested name match recorded names (``queue:*``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase


class Kind(enum.Enum):
    #: A level; several samples in one step are averaged.
    GAUGE = "gauge"
    #: Cumulative since the worker started; a step takes its last value.
    COUNTER = "counter"
    #: Occurrences since the previous sample; a step adds them up.
    EVENTS = "events"


CLUSTER: dict[str, Kind] = {
    "workers": Kind.GAUGE,
    "active_tasks": Kind.GAUGE,
    "scheduled_tasks": Kind.GAUGE,
    "reserved_tasks": Kind.GAUGE,
    "connected": Kind.GAUGE,
    "stale": Kind.GAUGE,
    "round_duration": Kind.GAUGE,
    "total": Kind.COUNTER,
    "busy_slots": Kind.GAUGE,
    "pool_slots": Kind.GAUGE,
    "saturation": Kind.GAUGE,
}

WORKER_METRICS: dict[str, Kind] = {
    "total": Kind.COUNTER,
    "active": Kind.GAUGE,
    "reserved": Kind.GAUGE,
    "processes": Kind.GAUGE,
    "max_concurrency": Kind.GAUGE,
    "up": Kind.GAUGE,
    "uptime": Kind.GAUGE,
    "restarts": Kind.EVENTS,
    "processes_replaced": Kind.EVENTS,
}

#: What ``series`` means when a request names none.
DEFAULT_SERIES = ("workers", "active_tasks", "scheduled_tasks", "reserved_tasks", "saturation")

#: Longest series name accepted in a request.
MAX_NAME = 512


class SeriesError(ValueError):
    """A requested series name is malformed or was never recorded."""


def queue(name: str) -> str:
    return f"queue:{name}"


def worker(host: str, metric: str) -> str:
    return f"worker:{host}:{metric}"


def worker_task(host: str, task: str) -> str:
    return f"worker:{host}:task:{task}"


def task(name: str) -> str:
    return f"task:{name}"


def kind_of(name: str) -> Kind | None:
    """The kind of a well-formed name, None when the name does not parse."""
    if name in CLUSTER:
        return CLUSTER[name]
    prefix, sep, rest = name.partition(":")
    if not sep or not rest:
        return None
    if prefix == "queue":
        return Kind.GAUGE
    if prefix == "task":
        return Kind.COUNTER
    if prefix == "worker":
        host, sep, metric = rest.partition(":")
        if not sep or not host:
            return None
        if metric.startswith("task:") and len(metric) > 5:
            return Kind.COUNTER
        return WORKER_METRICS.get(metric)
    return None


def resolve(requested: Sequence[str], recorded: Iterable[str]) -> list[str]:
    """The series to return, in request order, patterns expanded against ``recorded``.

    Raises :class:`SeriesError` naming the first unknown or malformed series.
    """
    known = set(recorded)
    out: list[str] = []
    for raw in requested or DEFAULT_SERIES:
        name = raw.strip()
        if not name or len(name) > MAX_NAME:
            raise SeriesError(f"series: invalid name {raw[:80]!r}")
        if "*" in name or "?" in name or "[" in name:
            matches = sorted(n for n in known if fnmatchcase(n, name))
            if not matches and kind_of(name.replace("*", "x").replace("?", "x")) is None:
                raise SeriesError(f"series: {name!r} matches no series name")
            out.extend(m for m in matches if m not in out)
            continue
        if kind_of(name) is None:
            raise SeriesError(
                f"series: unknown series {name!r} (expected e.g. workers, queue:<name>, "
                "worker:<host>:active, task:<name>)"
            )
        # Cluster series always exist; the others must have been recorded once.
        if name not in CLUSTER and name not in known:
            raise SeriesError(f"series: unknown series {name!r}: never recorded")
        if name not in out:
            out.append(name)
    return out
