"""Inspection cost: the seed's four sequential inspects vs one collector round vs ping (the floor).

Starts N real prefork workers (-c 2) on a Redis DB, then times, in the same run:
  naive  - inspect(timeout=1).active(), .scheduled(), .stats(), .registered()
  ours   - Collector.run_round() once the live set is known (stock commands)
  ours+x - the same with every worker loading celerystatus_server.worker_extension
  floor  - control.ping(limit=N)
and prints medians, maxima and the ratios to the floor. Usage:

    python bench/bench_collector.py [--workers 1 4 8] [--rounds 30] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from celerystatus_server.collector import Collector  # noqa: E402
from celerystatus_server.config import Settings  # noqa: E402
from celerystatus_server.local_redis import ensure_redis  # noqa: E402
from celerystatus_server.snapshot import SnapshotStore  # noqa: E402
from tests.support.workers import WorkerFactory  # noqa: E402


def timed(fn: Any, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        out.append((time.perf_counter() - began) * 1000)
    return out


def measure(url: str, n: int, extension: bool, rounds: int, naive_rounds: int) -> dict[str, list[float]]:
    redis.Redis.from_url(url).flushdb()
    with tempfile.TemporaryDirectory() as logs:
        factory = WorkerFactory(url, Path(logs))
        try:
            for i in range(n):
                factory(f"bench{i}", extension=extension, timeout=60)
            app = factory.control()
            collector = Collector(Settings(broker_url=url, discovery_interval=3600), SnapshotStore())
            collector._last_discovery = float("-inf")
            first = collector.run_round()  # discovery: learns the live set
            assert first.workers == n, f"expected {n} workers, saw {first.workers}"
            collector.run_round()  # caches registered tasks / queues, learns the extension
            results = {"ours": timed(collector.run_round, rounds)}
            assert collector.store.latest().status.workers == n
            results["floor"] = timed(lambda: app.control.ping(limit=n, timeout=1.0), rounds)
            if not extension:

                def naive() -> None:
                    inspector = app.control.inspect(timeout=1.0)
                    inspector.active()
                    inspector.scheduled()
                    inspector.stats()
                    inspector.registered()

                results["naive"] = timed(naive, naive_rounds)
            if collector._conn is not None:
                collector._conn.release()
            return results
        finally:
            factory.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--naive-rounds", type=int, default=3)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()
    local = ensure_redis()
    base = args.redis_url or local.url
    url = base.rsplit("/", 1)[0] + "/13"
    rows = []
    try:
        for n in args.workers:
            stock = measure(url, n, False, args.rounds, args.naive_rounds)
            ext = measure(url, n, True, args.rounds, args.naive_rounds)
            floor = statistics.median(stock["floor"] + ext["floor"])
            rows.append(
                (
                    n,
                    statistics.median(stock["naive"]),
                    max(stock["naive"]),
                    statistics.median(stock["ours"]),
                    max(stock["ours"]),
                    statistics.median(ext["ours"]),
                    max(ext["ours"]),
                    floor,
                    max(stock["floor"] + ext["floor"]),
                )
            )
            print(f"N={n} done", file=sys.stderr)
    finally:
        local.stop()
    print(
        "| workers | naive 4x inspect median / max (ms) | ours, stock median / max (ms) | ours, extension "
        "median / max (ms) | ping(limit=N) floor median / max (ms) | naive ÷ floor | stock ÷ floor | "
        "extension ÷ floor |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, nm, nx, om, ox, em, ex, fm, fx in rows:
        print(
            f"| {n} | {nm:.0f} / {nx:.0f} | {om:.1f} / {ox:.1f} | {em:.1f} / {ex:.1f} | {fm:.1f} / {fx:.1f} "
            f"| {nm / fm:.0f}x | {om / fm:.2f}x | {em / fm:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
