"""History: cost of a sample, round time with history on vs off, query times, bytes per day.

  sample   - Sampler.observe() on a snapshot of N workers (µs; runs on the sampler
             thread, never the collector's) and HistoryStore.write() of that sample
             (the writer thread's cost)
  rounds   - Collector.run_round() against real workers, alternating a collector whose
             snapshot store feeds a running HistoryRecorder (every snapshot followed for
             task runs, a sample written every second: the shortest interval) with one
             that has no history, in the same run
  queries  - GetHistory over 24 h at 1-minute steps and 30 days at 1-hour steps, and
             GetTrends over 15 min, on a SQLite store seeded with 30 days x 50 workers
  size     - database bytes per day for 10 and 100 workers (one hour recorded at the
             default 10 s interval, rolled up, extrapolated to a day)

Usage:

    python bench/bench_history.py [--rounds 200] [--workers 2] [--redis-url URL] [--skip-rounds]
                                  [--postgres-dsn postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from celerystatus.v1 import celery_status_pb2 as pb  # noqa: E402
from celerystatus_server.history import codec, query  # noqa: E402
from celerystatus_server.history import schema as t  # noqa: E402
from celerystatus_server.history.recorder import HistoryRecorder  # noqa: E402
from celerystatus_server.history.sampling import Sampler  # noqa: E402
from celerystatus_server.history.store import HistoryStore, Sample  # noqa: E402

TASK_NAMES = ("tasks.evaluate_code", "tasks.cleanup_old_evaluations", "tasks.monitor_dead_letter_queue")
QUEUES = ("celery", "evaluations", "cleanup")
INTERVAL = 10


def synthetic_status(workers: int, when: float, rng: random.Random, step: int = 0) -> pb.CeleryStatus:
    """A snapshot of ``workers`` prefork workers (-c 4), three task names, a few active tasks."""
    status = pb.CeleryStatus(enabled=True, connected=True, workers=workers)
    status.observed_at.FromNanoseconds(int(when * 1e9))
    status.inspection.duration.FromMilliseconds(40)
    for w in range(workers):
        host = f"worker{w}@host{w // 4}"
        stats = status.worker_stats[host]
        stats.pid = 1000 + w
        stats.uptime.FromSeconds(3600 + step * INTERVAL)
        stats.pool.max_concurrency = 4
        stats.pool.processes.extend(range(2000 + 4 * w, 2004 + 4 * w))
        base = step * 3 + w
        for i, name in enumerate(TASK_NAMES):
            stats.total_by_task[name] = base // (i + 1)
        stats.total = sum(stats.total_by_task.values())
        active = rng.randint(0, 4)
        stats.active_tasks = active
        stats.reserved_tasks = rng.randint(0, 2)
        for a in range(active):
            task = status.queue_details.active[host].tasks.add(
                id=f"{w}-{step}-{a}", name=TASK_NAMES[0], worker=host
            )
            task.time_start = when - rng.uniform(0, 30)
    status.active_tasks = sum(s.active_tasks for s in status.worker_stats.values())
    for q in QUEUES:
        status.queues.add(name=q, messages=rng.randint(0, 500))
    return status


def percentiles(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[int(0.95 * (len(values) - 1))]
    return f"median {statistics.median(values):8.1f}  p95 {p95:8.1f}  max {values[-1]:8.1f}"


def bench_sample(workers: int, repeat: int) -> None:
    rng = random.Random(1)
    statuses = [synthetic_status(workers, 1_800_000_000 + i * INTERVAL, rng, i) for i in range(repeat)]
    sampler = Sampler(INTERVAL)
    observe: list[float] = []
    samples: list[Sample] = []
    for status in statuses:
        began = time.perf_counter()
        sample, _runs = sampler.observe(status, 0.0)
        observe.append((time.perf_counter() - began) * 1e6)
        assert sample is not None
        samples.append(sample)
    with tempfile.TemporaryDirectory() as tmp:
        store = HistoryStore(f"sqlite:///{tmp}/h.sqlite3")
        store.upgrade()
        write: list[float] = []
        for sample in samples:
            began = time.perf_counter()
            store.write([sample])
            write.append((time.perf_counter() - began) * 1e6)
        store.close()
    values = len(samples[0].values)
    print(f"  {workers:3d} workers ({values:4d} values)  observe µs: {percentiles(observe)}")
    print(f"  {'':27s}write µs:   {percentiles(write)}")


def bench_rounds(redis_url: str | None, workers: int, rounds: int) -> None:
    from celerystatus_server.collector import Collector
    from celerystatus_server.config import Settings
    from celerystatus_server.local_redis import ensure_redis
    from celerystatus_server.snapshot import SnapshotStore
    from tests.support.workers import WorkerFactory

    local = ensure_redis(redis_url or "redis://127.0.0.1:6379/0")
    url = local.url.rsplit("/", 1)[0] + "/14"
    with tempfile.TemporaryDirectory() as tmp:
        factory = WorkerFactory(url, Path(tmp))
        try:
            for i in range(workers):
                factory(f"hbench{i}", timeout=60)
            settings = Settings(broker_url=url, discovery_interval=3600)
            plain = Collector(settings, SnapshotStore())
            recorded_store = SnapshotStore()
            recorded = Collector(settings, recorded_store)
            # The shortest interval: the most history can cost.
            recorder = HistoryRecorder(
                recorded_store, HistoryStore(f"sqlite:///{tmp}/h.sqlite3"), interval=1.0, buffer=100_000
            )
            recorder.prepare()
            recorder.start()
            for collector in (plain, recorded):
                collector._last_discovery = float("-inf")
                assert collector.run_round().workers == workers
                collector.run_round()
            on: list[float] = []
            off: list[float] = []
            for i in range(rounds):
                for collector, out in ((recorded, on), (plain, off)) if i % 2 else ((plain, off), (recorded, on)):
                    began = time.perf_counter()
                    collector.run_round()
                    out.append((time.perf_counter() - began) * 1000)
            recorder.flush(30)
            written = recorder.state().written
            recorder.stop()
            print(f"  history off  round ms: {percentiles(off)}")
            print(f"  history on   round ms: {percentiles(on)}   ({written} samples written meanwhile)")
            diff = statistics.median(on) - statistics.median(off)
            print(f"  median difference: {diff:+.2f} ms ({diff / statistics.median(off):+.1%})")
        finally:
            factory.close()
            local.stop()


def _seed(store: HistoryStore, now: int, workers: int, days: int) -> None:
    """``days`` of 1-minute and 1-hour roll-ups and 24 h of raw samples, written as the store writes them."""
    rng = random.Random(2)
    sampler = Sampler(INTERVAL)
    raw_variants = []
    for i in range(360):
        sample, _ = sampler.observe(synthetic_status(workers, now + i * INTERVAL, rng, i), 0.0)
        assert sample is not None
        raw_variants.append(sample.values)
    all_names = sorted(raw_variants[0])
    parts = {
        "payload": tuple(n for n in all_names if n.startswith("worker:")),
        "summary": tuple(n for n in all_names if not n.startswith("worker:")),
    }

    def rollup_payload(names: tuple[str, ...], offset: int) -> bytes:
        chunk = [raw_variants[(offset + j) % len(raw_variants)] for j in range(6)]
        cols = [[c.get(n, 0.0) for c in chunk] for n in names]
        return codec.encode_rollup(
            codec.Rollup(
                count=[6] * len(names),
                min=[codec.round_value(min(c)) for c in cols],
                max=[codec.round_value(max(c)) for c in cols],
                mean=[codec.round_value(sum(c) / 6) for c in cols],
                last=[codec.round_value(c[-1]) for c in cols],
            )
        )

    rollups = {part: [rollup_payload(names, i * 6) for i in range(60)] for part, names in parts.items()}
    raws = {
        part: [codec.encode_raw([codec.round_value(v[n]) for n in names]) for v in raw_variants]
        for part, names in parts.items()
    }
    with store.engine.begin() as connection:
        layouts = {part: store._layout_id(connection, names) for part, names in parts.items()}
        rows: list[dict[str, Any]] = []

        def add(resolution: int, ts: int, payloads: dict[str, list[bytes]], i: int) -> None:
            rows.append(
                {
                    "resolution": resolution, "ts": ts,
                    "layout_id": layouts["payload"], "payload": payloads["payload"][i % len(payloads["payload"])],
                    "summary_layout_id": layouts["summary"],
                    "summary": payloads["summary"][i % len(payloads["summary"])],
                }
            )
            if len(rows) >= 5000:
                flush()

        def flush() -> None:
            if rows:
                connection.execute(t.samples.insert(), rows)
                rows.clear()

        start = now - days * 86400
        for i, ts in enumerate(range(start // 3600 * 3600, now, 3600)):
            add(t.HOUR, ts, rollups, i)
        for i, ts in enumerate(range(start // 60 * 60, now - 3600, 60)):
            add(t.MINUTE, ts, rollups, i)
        for i, ts in enumerate(range((now - 86400) // INTERVAL * INTERVAL, now, INTERVAL)):
            add(t.RAW, ts, raws, i)
        flush()


def _postgres_schema_url(dsn: str) -> tuple[str, str]:
    """A fresh schema on ``dsn`` and a store URL whose tables land in it."""
    import uuid
    from urllib.parse import quote

    import psycopg

    schema = f"cs_history_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    base = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    return schema, f"{base}{'&' if '?' in base else '?'}options={quote(f'-csearch_path={schema}')}"


def bench_queries(repeat: int, postgres_dsn: str | None = None) -> None:
    now = int(time.time())
    schema: str | None = None
    with tempfile.TemporaryDirectory() as tmp:
        if postgres_dsn:
            schema, url = _postgres_schema_url(postgres_dsn)
        else:
            url = f"sqlite:///{tmp}/h.sqlite3"
        store = HistoryStore(url, interval=INTERVAL)
        store.upgrade()
        began = time.perf_counter()
        _seed(store, now, 50, 30)
        if store.dialect == "sqlite":
            from sqlalchemy import text

            with store.engine.connect() as connection:
                connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        size = store.size_bytes() or 0
        print(f"  seeded 30 days x 50 workers in {time.perf_counter() - began:.0f} s ({size / 1e6:.0f} MB)")
        cases = [
            ("24 h at 1 min, 5 cluster series", 86400, 60, []),
            ("24 h at 1 min, worker:*:active (50)", 86400, 60, ["worker:*:active"]),
            ("30 d at 1 h, 5 cluster series", 30 * 86400, 3600, []),
            ("30 d at 1 h, worker:*:active (50)", 30 * 86400, 3600, ["worker:*:active"]),
        ]
        for label, span, step, series in cases:
            request = pb.GetHistoryRequest(series=series)
            request.since.FromSeconds(now - span)
            request.step.FromSeconds(step)
            times = []
            for _ in range(repeat):
                q = query.history_query(request, now)
                began = time.perf_counter()
                response = query.run_history(store, q, redactor=None)
                times.append((time.perf_counter() - began) * 1000)
            print(f"  {label:40s} ms: {percentiles(times)}   ({len(response.timestamps)} points)")
        times = []
        for _ in range(repeat):
            began = time.perf_counter()
            query.run_trends(store, query.TrendsQuery(900.0, 60.0), None, now)
            times.append((time.perf_counter() - began) * 1000)
        print(f"  {'trends over 15 min':40s} ms: {percentiles(times)}")
        store.close()
    if schema is not None and postgres_dsn:
        import psycopg

        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def bench_size(workers: int) -> None:
    rng = random.Random(3)
    start = 1_800_000_000 // 3600 * 3600
    clock = _Clock(start)
    with tempfile.TemporaryDirectory() as tmp:
        store = HistoryStore(f"sqlite:///{tmp}/h.sqlite3", interval=INTERVAL, clock=clock)
        store.upgrade()
        empty = store.size_bytes() or 0
        sampler = Sampler(INTERVAL)
        batch = []
        for i in range(360):  # one hour at the default interval
            sample, _ = sampler.observe(synthetic_status(workers, start + i * INTERVAL, rng, i), 0.0)
            assert sample is not None
            batch.append(sample)
        store.write(batch)
        clock.now = start + 3600 + 60
        store.maintain()
        with store.engine.connect() as connection:
            from sqlalchemy import text

            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            connection.execute(text("VACUUM"))
            rows = connection.execute(
                text("SELECT resolution, count(*), sum(length(payload)) FROM history_samples GROUP BY resolution")
            ).all()
        per_res = {int(r): (int(n), int(b)) for r, n, b in rows}
        hour_bytes = (store.size_bytes() or 0) - empty
        raw_day = per_res[t.RAW][1] * 24
        minute_day = per_res[t.MINUTE][1] * 24
        hour_day = per_res[t.HOUR][1] * 24
        steady = raw_day + minute_day * 30 + hour_day * 365
        print(
            f"  {workers:3d} workers: {hour_bytes * 24 / 1e6:6.1f} MB/day on disk "
            f"(payloads: raw {raw_day / 1e6:.1f} MB, 1-min {minute_day / 1e6:.2f} MB, 1-h {hour_day / 1e3:.0f} kB); "
            f"retained at default retention ~{steady / 1e6:.0f} MB of payload"
        )
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200, help="collector rounds per side (default 200)")
    parser.add_argument("--workers", type=int, default=2, help="real workers for the round comparison")
    parser.add_argument("--redis-url", help="Redis for the round comparison (DB 14 is used and flushed)")
    parser.add_argument("--skip-rounds", action="store_true", help="no real workers: skip the round comparison")
    parser.add_argument("--repeat", type=int, default=20, help="repetitions of each query")
    parser.add_argument(
        "--postgres-dsn",
        help="also time the queries on PostgreSQL, in a schema of its own dropped afterwards "
        "(e.g. postgresql://postgres@127.0.0.1:5432/test)",
    )
    args = parser.parse_args()
    print(f"history benchmark, {time.strftime('%Y-%m-%d %H:%M:%S')}")
    print("sample cost (sampler thread) and write cost (writer thread):")
    for workers in (10, 50, 100):
        bench_sample(workers, 200)
    if not args.skip_rounds:
        print(f"round time, history on vs off, {args.workers} real workers, {args.rounds} rounds each, interleaved:")
        bench_rounds(args.redis_url, args.workers, args.rounds)
    print("query time on a store seeded with 30 days x 50 workers (SQLite):")
    bench_queries(args.repeat)
    if args.postgres_dsn:
        print("the same on PostgreSQL:")
        bench_queries(args.repeat, args.postgres_dsn)
    print("database size per day at the default 10 s interval:")
    for workers in (10, 100):
        bench_size(workers)


if __name__ == "__main__":
    main()
