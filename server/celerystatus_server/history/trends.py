"""Trends computed from stored samples and task runs (pure functions, no I/O).

Counters (``total``) are cumulative per worker process, so every rate is built
from per-worker deltas: a counter that goes down, or a sample that saw the
worker restart, starts counting again from zero instead of producing a
negative or spiking rate.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

from google.protobuf.duration_pb2 import Duration

from celerystatus.v1 import celery_status_pb2 as pb

from .store import Point

#: A running task is long-running past max(LONG_RUNNING_FACTOR x p95 of its name, floor).
LONG_RUNNING_FACTOR = 3.0
#: Trends need at least this much of the window covered by samples to call a worker hung.
HUNG_MIN_COVERAGE = 0.5


def _last(value: tuple[float, float, float, float, int]) -> float:
    return value[3]


def _mean(value: tuple[float, float, float, float, int]) -> float:
    return value[2]


def _sum(value: tuple[float, float, float, float, int]) -> float:
    return value[2] * value[4]


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope (value per second); 0 with fewer than two distinct times."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_t = sum(p[0] for p in points) / n
    mean_v = sum(p[1] for p in points) / n
    var = sum((p[0] - mean_t) ** 2 for p in points)
    if var == 0:
        return 0.0
    return sum((p[0] - mean_t) * (p[1] - mean_v) for p in points) / var


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (``q`` in 0..1)."""
    if not sorted_values:
        return 0.0
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return sorted_values[low]
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def counter_increase(
    points: Sequence[Point], name: str, host: str
) -> int:
    """Increase of ``name`` (a counter of worker ``host``) over ``points``, resets handled.

    A sample where the worker restarted (the sampler saw its pid change or its
    uptime go back), or where the counter went down, counts its whole value: what
    the new process did since it started. A worker missing from some samples keeps
    its last value across the gap. A counter seen for the first time on a worker
    that was already there starts from zero (``total_by_task`` only lists names
    run at least once); on a worker first seen inside the window, the first value
    is the baseline unless its uptime shows it started since the previous sample.
    """
    total = 0
    previous: float | None = None
    previous_ts: int | None = None
    worker_seen_before = False
    worker_key = f"worker:{host}:total"
    restart_key = f"worker:{host}:restarts"
    uptime_key = f"worker:{host}:uptime"
    for point in points:
        value = point.values.get(name)
        if value is None:
            worker_seen_before = worker_seen_before or worker_key in point.values
            previous_ts = point.ts
            continue
        current = _last(value)
        restarted = restart_key in point.values and _sum(point.values[restart_key]) > 0
        if previous is None:
            uptime = point.values.get(uptime_key)
            started_since = (
                uptime is not None and previous_ts is not None and _last(uptime) <= point.ts - previous_ts
            )
            if restarted or started_since or (worker_seen_before and name != worker_key):
                total += int(current)
        elif restarted or current < previous:
            total += int(current)
        else:
            total += int(current - previous)
        previous = current
        previous_ts = point.ts
        worker_seen_before = True
    return total


def _hosts(points: Sequence[Point]) -> list[str]:
    hosts: set[str] = set()
    for point in points:
        for name in point.values:
            if name.startswith("worker:") and name.endswith(":total") and ":task:" not in name:
                hosts.add(name[len("worker:"):-len(":total")])
    return sorted(hosts)


def _task_names(points: Sequence[Point]) -> dict[str, set[str]]:
    """Task name -> hosts that ran it."""
    out: dict[str, set[str]] = defaultdict(set)
    for point in points:
        for name in point.values:
            if name.startswith("worker:") and ":task:" in name:
                host, _, task = name[len("worker:"):].partition(":task:")
                out[task].add(host)
    return out


def _duration(seconds: float) -> Duration:
    d = Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


def compute(
    points: Sequence[Point],
    runtimes: Mapping[str, Sequence[float]],
    baseline: Mapping[str, Sequence[float]],
    status: pb.CeleryStatus | None,
    *,
    window: float,
    now: float,
    long_running_floor: float,
) -> pb.GetTrendsResponse:
    """Every trend of the window; ``baseline`` runtimes give each name's usual p95."""
    response = pb.GetTrendsResponse(samples=len(points))
    response.computed_at.FromNanoseconds(int(now * 1e9))
    response.window.CopyFrom(_duration(window))
    points = sorted(points, key=lambda p: p.ts)
    span = float(points[-1].ts - points[0].ts) if len(points) >= 2 else 0.0

    def rate(count: int) -> float:
        return count / span if span > 0 else 0.0

    # Throughput per worker, cluster, task name.
    worker_rates: dict[str, float] = {}
    cluster_count = 0
    for host in _hosts(points):
        count = counter_increase(points, f"worker:{host}:total", host)
        cluster_count += count
        worker_rates[host] = rate(count)
        response.worker_throughput.add(name=host, per_second=rate(count), count=count)
    response.throughput.CopyFrom(pb.Rate(per_second=rate(cluster_count), count=cluster_count))
    for task, hosts in sorted(_task_names(points).items()):
        count = sum(counter_increase(points, f"worker:{host}:task:{task}", host) for host in hosts)
        response.task_throughput.add(name=task, per_second=rate(count), count=count)

    # Queues: growth from the depth's slope; consumers from the latest snapshot.
    consumers: dict[str, list[str]] = defaultdict(list)
    if status is not None:
        for host, stats in status.worker_stats.items():
            for queue in stats.active_queues:
                consumers[queue].append(host)
    queue_names = sorted({n[len("queue:"):] for p in points for n in p.values if n.startswith("queue:")})
    cluster_rate = rate(cluster_count)
    for queue in queue_names:
        key = f"queue:{queue}"
        series = [(float(p.ts), _mean(p.values[key])) for p in points if key in p.values]
        depth = int(_last([p.values[key] for p in points if key in p.values][-1]))
        growth = slope(series) * 60.0
        readers = consumers.get(queue)
        throughput = (sum(worker_rates.get(h, 0.0) for h in readers) if readers else cluster_rate) * 60.0
        trend = pb.QueueTrend(
            name=queue,
            depth=depth,
            growth_per_minute=growth,
            throughput_per_minute=throughput,
            arrival_per_minute=max(0.0, throughput + growth),
            growing=growth > 1e-9 and depth > 0,
        )
        if depth == 0:
            trend.drain_seconds = 0.0
        elif growth < -1e-9:
            trend.drain_seconds = depth / (-growth / 60.0)
        response.queues.append(trend)

    # Saturation.
    sat = [(float(p.ts), _mean(p.values["saturation"])) for p in points if "saturation" in p.values]
    if sat:
        current = sat[-1][1]
        per_second = slope(sat)
        saturation = pb.Saturation(
            current=current,
            mean=sum(v for _, v in sat) / len(sat),
            slope_per_minute=per_second * 60.0,
        )
        last = points[-1].values
        if "busy_slots" in last:
            saturation.busy_slots = int(_last(last["busy_slots"]))
        if "pool_slots" in last:
            saturation.pool_slots = int(_last(last["pool_slots"]))
        if current >= 1.0:
            saturation.seconds_to_full = 0.0
        elif per_second > 1e-12 and current > 0:
            saturation.seconds_to_full = (1.0 - current) / per_second
        response.saturation.CopyFrom(saturation)

    # Task runtimes and long-running tasks.
    for name in sorted(runtimes):
        values = sorted(runtimes[name])
        if not values:
            continue
        response.runtimes.add(
            name=name, count=len(values), p50=percentile(values, 0.5), p95=percentile(values, 0.95), max=values[-1]
        )
    if status is not None:
        thresholds = {
            name: max(LONG_RUNNING_FACTOR * percentile(sorted(values), 0.95), long_running_floor)
            for name, values in baseline.items()
            if values
        }
        for host, task_list in status.queue_details.active.items():
            for running_task in task_list.tasks:
                threshold = thresholds.get(running_task.name)
                if threshold is None or not running_task.HasField("time_start"):
                    continue
                running = now - running_task.time_start
                if running > threshold:
                    response.long_running.add(
                        id=running_task.id, name=running_task.name, worker=running_task.worker or host,
                        running_seconds=running, threshold_seconds=threshold,
                    )

    # Workers: restarts, replaced pool processes, possibly hung.
    for host in _hosts(points):
        total_key, active_key = f"worker:{host}:total", f"worker:{host}:active"
        mine = [p for p in points if total_key in p.values]
        restarts = sum(_sum(p.values[f"worker:{host}:restarts"]) for p in mine if f"worker:{host}:restarts" in p.values)
        replaced_key = f"worker:{host}:processes_replaced"
        replaced = sum(_sum(p.values[replaced_key]) for p in mine if replaced_key in p.values)
        totals = [_last(p.values[total_key]) for p in mine]
        actives = [_mean(p.values[active_key]) for p in mine if active_key in p.values]
        covered = (mine[-1].ts - mine[0].ts) if len(mine) >= 2 else 0
        hung = (
            len(mine) >= 2
            and covered >= HUNG_MIN_COVERAGE * window
            and max(totals) == min(totals)
            and len(actives) == len(mine)
            and min(actives) > 0
        )
        last_active = int(actives[-1]) if actives else 0
        response.workers.add(
            hostname=host,
            per_second=worker_rates.get(host, 0.0),
            restarts=int(restarts),
            processes_replaced=int(replaced),
            possibly_hung=hung,
            active=last_active,
        )
    return response
