"""Cost of one alert evaluation (all built-in rules, in-memory trends) per snapshot size.

Builds synthetic snapshots of W workers (-c 8, all slots busy with distinct task ids that
change every round, so task following and runtime statistics do real work), feeds a warm
engine 600 of them (a 10-minute window at 1 s) and times further evaluations. Pure CPU, no
I/O; the evaluation runs in a worker thread of the service, never on the event loop. Usage:

    python bench/bench_alerts.py [--workers 10 100] [--rounds 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from celerystatus.v1 import celery_status_pb2 as pb  # noqa: E402
from celerystatus.values import epoch_to_timestamp, seconds_to_duration  # noqa: E402
from celerystatus_server.alerts import AlertConfig, AlertEngine, SnapshotRing  # noqa: E402

CONCURRENCY = 8


def snapshot(workers: int, round_number: int, now: float) -> pb.CeleryStatus:
    status = pb.CeleryStatus(enabled=True, connected=True, workers=workers, broker_url="redis://bench/0")
    status.observed_at.CopyFrom(epoch_to_timestamp(now))
    status.inspection.round = round_number
    status.inspection.refresh_interval.CopyFrom(seconds_to_duration(1.0))
    status.queues.append(pb.QueueDepth(name="celery", messages=round_number % 50))
    for w in range(workers):
        name = f"worker{w}@bench"
        stats = status.worker_stats[name]
        stats.hostname, stats.pid, stats.total = name, 1000 + w, round_number * 3
        stats.active_tasks = CONCURRENCY
        stats.pool.implementation, stats.pool.max_concurrency = "prefork", CONCURRENCY
        stats.pool.processes.extend(range(10_000 + w * CONCURRENCY, 10_000 + (w + 1) * CONCURRENCY))
        tasks = status.queue_details.active[name].tasks
        for slot in range(CONCURRENCY):
            # Each task lives 4 rounds, then the slot runs a new one.
            generation = (round_number + slot) // 4
            tasks.append(pb.Task(id=f"{name}-{slot}-{generation}", name=f"tasks.t{slot % 3}",
                                 time_start=now - (round_number + slot) % 4, worker=name))
    status.active_tasks = workers * CONCURRENCY
    return status


def run(workers: int, rounds: int) -> list[float]:
    config = AlertConfig()
    clock_now = [1_800_000_000.0]
    engine = AlertEngine(config.active_rules(), SnapshotRing(horizon=config.longest_window() + 60),
                         clock=lambda: clock_now[0])
    number = 0
    for _ in range(600):
        number += 1
        clock_now[0] += 1
        engine.evaluate(snapshot(workers, number, clock_now[0]))
    prepared = []
    for _ in range(rounds):
        number += 1
        clock_now[0] += 1
        prepared.append((clock_now[0], snapshot(workers, number, clock_now[0])))
    times = []
    for at, status in prepared:
        clock_now[0] = at
        began = time.perf_counter()
        engine.evaluate(status)
        times.append(time.perf_counter() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{'workers':>7} {'tasks':>6} {'run':>3} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}")
    for workers in args.workers:
        for run_number in range(1, args.runs + 1):
            times = sorted(run(workers, args.rounds))
            p95 = times[int(0.95 * (len(times) - 1))]
            print(f"{workers:>7} {workers * CONCURRENCY:>6} {run_number:>3} "
                  f"{statistics.median(times) * 1e3:>10.2f} {p95 * 1e3:>8.2f} {times[-1] * 1e3:>8.2f}")


if __name__ == "__main__":
    main()
