"""Sampling and trend logic on hand-made snapshots and samples (pure functions, no I/O)."""

from __future__ import annotations

import pytest

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.values import list_to_list_value
from celerystatus_server.history import trends
from celerystatus_server.history.sampling import Sampler
from celerystatus_server.history.store import Point

T0 = 1_800_000_000


def _status(when: float, workers: dict[str, dict[str, object]], active: dict[str, list[str]] | None = None,
            queues: dict[str, int] | None = None) -> pb.CeleryStatus:  # fmt: skip
    status = pb.CeleryStatus(enabled=True, connected=True, workers=len(workers))
    status.observed_at.FromNanoseconds(int(when * 1e9))
    for host, spec in workers.items():
        stats = status.worker_stats[host]
        stats.total = int(spec.get("total", 0))  # type: ignore[call-overload]
        stats.pid = int(spec.get("pid", 100))  # type: ignore[call-overload]
        stats.uptime.FromSeconds(int(spec.get("uptime", 1000)))  # type: ignore[call-overload]
        stats.pool.max_concurrency = 2
        stats.pool.processes.extend(spec.get("procs", [1, 2]))  # type: ignore[arg-type]
        stats.active_tasks = len((active or {}).get(host, []))
        for name, count in dict(spec.get("by_task", {})).items():  # type: ignore[call-overload]
            stats.total_by_task[name] = count
    for host, ids in (active or {}).items():
        for task_id in ids:
            task = status.queue_details.active[host].tasks.add(id=task_id, name="tasks.add", worker=host)
            task.time_start = when - 1
            task.args.CopyFrom(list_to_list_value(["eval-1", "secret"]))
    for name, depth in (queues or {}).items():
        status.queues.add(name=name, messages=depth)
    return status


def test_sampler_takes_one_sample_per_bucket_and_follows_runs() -> None:
    sampler = Sampler(interval=10)
    first, runs = sampler.observe(_status(T0 + 1, {"w@h": {"total": 5}}, {"w@h": ["a", "b"]}), T0 + 1)
    assert first is not None and first.ts == T0 and runs == []
    assert first.values["worker:w@h:total"] == 5 and first.values["busy_slots"] == 2
    assert first.values["saturation"] == 1.0
    again, runs = sampler.observe(_status(T0 + 3, {"w@h": {"total": 6}}, {"w@h": ["b"]}), T0 + 3)
    assert again is None  # same bucket
    assert [(r.id, r.started, r.last_seen) for r in runs] == [("a", T0, T0 + 1)]
    assert '"secret"' in (runs[0].args or "")  # stored; withheld from viewers on the way out
    nxt, runs = sampler.observe(_status(T0 + 12, {"w@h": {"total": 7}}, {}), T0 + 12)
    assert nxt is not None and nxt.ts == T0 + 10 and [r.id for r in runs] == ["b"]


def test_sampler_counts_restarts_and_replaced_processes_and_reports_down_workers() -> None:
    sampler = Sampler(interval=10)
    sampler.observe(_status(T0, {"w@h": {"pid": 1, "procs": [1, 2]}, "x@h": {}}), T0)
    sampler.observe(_status(T0 + 2, {"w@h": {"pid": 1, "procs": [1, 3]}, "x@h": {}}), T0 + 2)  # 2 recycled
    sample, _ = sampler.observe(_status(T0 + 10, {"w@h": {"pid": 9, "uptime": 1, "procs": [5, 6]}}), T0 + 10)
    assert sample is not None
    assert sample.values["worker:w@h:processes_replaced"] == 1
    assert sample.values["worker:w@h:restarts"] == 1
    assert sample.values["worker:x@h:up"] == 0.0
    assert "worker:x@h:total" not in sample.values


def test_outage_is_recorded_from_the_wall_clock_without_worker_data() -> None:
    sampler = Sampler(interval=10)
    stale = _status(T0, {"w@h": {"total": 5}})
    stale.stale = True
    stale.connected = False
    sample, runs = sampler.observe(stale, T0 + 50)
    assert sample is not None and sample.ts == T0 + 50
    assert sample.values == {"connected": 0.0, "stale": 1.0} and runs == []


def _worker_points(totals: list[float], restarts_at: int | None = None, uptime_reset: bool = False) -> list[Point]:
    points = []
    for i, total in enumerate(totals):
        values = {
            "worker:w@h:total": total,
            "worker:w@h:restarts": 1.0 if i == restarts_at else 0.0,
            "worker:w@h:uptime": 5.0 if (uptime_reset and i == restarts_at) else 1000.0 + i * 10,
            "worker:w@h:active": 1.0,
            "saturation": 0.5,
        }
        points.append(Point(T0 + i * 10, 0, {k: (v, v, v, v, 1) for k, v in values.items()}))
    return points


def test_restart_is_a_counter_reset_not_a_negative_or_spiking_rate() -> None:
    # 10 tasks per sample, a restart between samples 5 and 6 (counter back to 8).
    totals = [100.0 + 10 * i for i in range(6)] + [8.0 + 10 * i for i in range(6)]
    result = trends.compute(_worker_points(totals, restarts_at=6), {}, {}, None, window=900, now=T0 + 200,
                            long_running_floor=60)  # fmt: skip
    assert result.throughput.count == 50 + 8 + 50
    assert 0 < result.throughput.per_second <= 1.0
    assert result.workers[0].restarts == 1
    # The counter drops without a restart event (missed sample): still no negative delta.
    result = trends.compute(_worker_points(totals), {}, {}, None, window=900, now=T0 + 200, long_running_floor=60)
    assert result.throughput.count == 108


def test_queue_growth_drain_and_saturation_prediction() -> None:
    growing = [Point(T0 + i * 60, 0, {"queue:q": (v, v, v, v, 1), "saturation": (s, s, s, s, 1)})
               for i, (v, s) in enumerate(zip([10, 20, 30, 40], [0.2, 0.4, 0.6, 0.8], strict=True))]  # fmt: skip
    result = trends.compute(growing, {}, {}, None, window=900, now=T0 + 200, long_running_floor=60)
    queue = result.queues[0]
    assert queue.growth_per_minute == pytest.approx(10.0)
    assert queue.growing and not queue.HasField("drain_seconds")
    assert result.saturation.current == pytest.approx(0.8)
    assert result.saturation.seconds_to_full == pytest.approx(60.0)
    draining = [Point(T0 + i * 60, 0, {"queue:q": (v, v, v, v, 1)}) for i, v in enumerate([40, 30, 20])]
    queue = trends.compute(draining, {}, {}, None, window=900, now=T0 + 200, long_running_floor=60).queues[0]
    assert not queue.growing and queue.drain_seconds == pytest.approx(120.0)


def test_runtime_percentiles_and_long_running_flag() -> None:
    runtimes = {"tasks.add": [1.0] * 19 + [2.0]}
    status = _status(T0, {"w@h": {}}, {"w@h": ["stuck"]})
    status.queue_details.active["w@h"].tasks[0].time_start = T0 - 30
    result = trends.compute([], runtimes, runtimes, status, window=900, now=T0, long_running_floor=5)
    stats = result.runtimes[0]
    assert (stats.count, stats.p50, stats.max) == (20, 1.0, 2.0)
    assert stats.p95 == pytest.approx(1.05)
    assert [(t.id, t.running_seconds) for t in result.long_running] == [("stuck", 30.0)]
    # Below the floor nothing is flagged, whatever the p95.
    result = trends.compute([], runtimes, runtimes, status, window=900, now=T0, long_running_floor=60)
    assert list(result.long_running) == []


def test_worker_with_active_tasks_and_a_frozen_total_is_possibly_hung() -> None:
    def hung(points: list[Point]) -> bool:
        result = trends.compute(points, {}, {}, None, window=60, now=T0 + 80, long_running_floor=60)
        return result.workers[0].possibly_hung

    assert hung(_worker_points([50.0] * 8))
    assert not hung(_worker_points([50.0 + i for i in range(8)]))


def test_worker_back_after_a_gap_counts_what_the_new_process_did() -> None:
    def point(i: int, **values: float) -> Point:
        return Point(T0 + i * 10, 0, {k: (v, v, v, v, 1) for k, v in values.items()})

    before = [point(i, **{"worker:w@h:total": 10.0 * i, "worker:w@h:uptime": 500.0 + 10 * i}) for i in range(4)]
    gap = [point(i, saturation=0.0) for i in range(4, 7)]
    # Back with a new pid (the sampler counted a restart), 7 tasks done since.
    back = [point(7, **{"worker:w@h:total": 7.0, "worker:w@h:restarts": 1.0, "worker:w@h:uptime": 400.0})]
    result = trends.compute(before + gap + back, {}, {}, None, window=900, now=T0 + 80, long_running_floor=60)
    assert result.throughput.count == 30 + 7
    # Back without any sign of a restart (just not answering for a while): counted from its last value.
    quiet = [point(7, **{"worker:w@h:total": 35.0, "worker:w@h:uptime": 570.0})]
    result = trends.compute(before + gap + quiet, {}, {}, None, window=900, now=T0 + 80, long_running_floor=60)
    assert result.throughput.count == 35
    # First seen inside the window, long running already: its total is a baseline, not a spike.
    late = [point(i, saturation=0.0) for i in range(3)] + [point(3, **{"worker:w@h:total": 900.0,
                                                                      "worker:w@h:uptime": 5000.0})]
    result = trends.compute(late, {}, {}, None, window=900, now=T0 + 80, long_running_floor=60)
    assert result.throughput.count == 0
