"""How fast failures are reported: the time bounds the tests check only as behaviour.

Each figure is measured over several trials and printed as min / median / max:

  sdk      - a unary call giving up after its retry budget (total_timeout 0.5 s)
             and a watch stream giving up after reconnect_timeout 0.5 s, on a
             target nothing listens on
  bridge   - GET /api/celery-status (plain and ?max_age=1), /tasks and /readyz
             answered while the status service is unreachable
  collector - a refused and a frozen Redis broker reported (connected: false),
             and reported up again; a worker that joins seen, a SIGKILLed one
             dropped (private redis-server, one prefork worker)

Router fallbacks and send deadlines are bench/bench_router.py's.  Usage:

    python bench/bench_bounds.py [--trials 3] [--only sdk bridge collector]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from celerystatus import CeleryStatusClient, RetryPolicy, Unavailable  # noqa: E402
from celerystatus_server.bridge import BridgeServer  # noqa: E402
from celerystatus_server.collector import Collector  # noqa: E402
from celerystatus_server.config import Settings  # noqa: E402
from celerystatus_server.local_redis import RedisProcess  # noqa: E402
from celerystatus_server.snapshot import SnapshotStore  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402
from tests.support.workers import WorkerFactory  # noqa: E402


def dead_target() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def report(name: str, seconds: list[float]) -> None:
    ms = sorted(s * 1e3 for s in seconds)
    print(f"  {name:<52} {ms[0]:8.1f} / {statistics.median(ms):8.1f} / {ms[-1]:8.1f} ms  (n={len(ms)})")


def timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def bench_sdk(trials: int) -> None:
    print("sdk: giving up on an unreachable server (min / median / max)")
    unary = RetryPolicy(attempts=1000, total_timeout=0.5, initial_backoff=0.05, max_backoff=0.1)
    stream = RetryPolicy(initial_backoff=0.05, max_backoff=0.1, reconnect_timeout=0.5)

    def call(policy: RetryPolicy, watch: bool) -> None:
        with CeleryStatusClient(dead_target(), retries=policy) as client:
            try:
                next(client.watch_status()) if watch else client.get_status()
            except Unavailable:
                return
        raise AssertionError("expected Unavailable")

    report("get_status, total_timeout 0.5 s", [timed(lambda: call(unary, False)) for _ in range(trials)])
    report("watch_status, reconnect_timeout 0.5 s", [timed(lambda: call(stream, True)) for _ in range(trials)])


async def _bridge(trials: int) -> dict[str, list[float]]:
    server = BridgeServer(dead_target(), "127.0.0.1:0")
    await server.start()
    results: dict[str, list[float]] = {}
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            for path in ("/api/celery-status", "/api/celery-status?max_age=1", "/api/celery-status/tasks", "/readyz"):
                for _ in range(trials):
                    began = time.perf_counter()
                    response = await client.get(path)
                    results.setdefault(f"{path} -> {response.status_code}", []).append(time.perf_counter() - began)
    finally:
        await server.stop()
    return results


def bench_bridge(trials: int) -> None:
    print("bridge: answers while the status service is unreachable (min / median / max)")
    for name, seconds in asyncio.run(_bridge(trials)).items():
        report(name, seconds)


def bench_collector(trials: int) -> None:
    print("collector: outages and workers seen (refresh 0.5 s; min / median / max)")
    figures: dict[str, list[float]] = {}
    with RedisProcess() as redis_process, tempfile.TemporaryDirectory() as logs:
        url = redis_process.url(0)
        workers = WorkerFactory(url, Path(logs))
        try:
            workers("steady", broker_url=url)
            collector = Collector(Settings(broker_url=url, refresh_interval=0.5), SnapshotStore())
            collector.start()
            status = collector.store.latest

            def until(predicate: Callable[[], bool]) -> float:
                began = time.perf_counter()
                wait_for(predicate, timeout=60, interval=0.01)
                return time.perf_counter() - began

            try:
                until(lambda: status().status.workers == 1)
                # Workers first: the factory's control connection does not survive a broker restart.
                for trial in range(trials):
                    joiner = workers(f"joiner{trial}", broker_url=url)
                    figures.setdefault("joining worker seen (after it answers ping)", []).append(
                        until(lambda host=joiner.hostname: host in status().status.worker_stats)
                    )
                    joiner.kill()
                    figures.setdefault("SIGKILLed worker dropped", []).append(
                        until(lambda host=joiner.hostname: host not in status().status.worker_stats)
                    )
                for _ in range(trials):
                    for kind, down, up in (
                        ("refused", redis_process.stop, redis_process.start),
                        ("frozen", redis_process.freeze, redis_process.thaw),
                    ):
                        down()
                        figures.setdefault(f"{kind} broker reported", []).append(
                            until(lambda: not status().status.connected)
                        )
                        up()
                        figures.setdefault(f"{kind} broker reported up again", []).append(
                            until(lambda: status().status.connected and status().status.workers == 1)
                        )
            finally:
                collector.stop()
        finally:
            workers.close()
    for name, seconds in figures.items():
        report(name, seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=("sdk", "bridge", "collector"), default=None)
    args = parser.parse_args()
    benches = {"sdk": bench_sdk, "bridge": bench_bridge, "collector": bench_collector}
    for name in args.only or list(benches):
        benches[name](args.trials)
    return 0


if __name__ == "__main__":
    sys.exit(main())
