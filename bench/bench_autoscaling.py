"""KEDA external scaler: time from a backlog change to the StreamIsActive update.

Starts a real prefork worker (-c 1) on a Redis DB and a status server
(collector + gRPC, in this process) with the given refresh interval, opens
StreamIsActive as KEDA does (default metadata: metric backlog, threshold 0),
then repeats:

  up   - publish one task that holds its pool slot  -> time until `true` arrives
  down - let it finish                              -> time until `false` arrives

with a random pause (0 to one refresh interval) before each change, so the
change falls anywhere in the collector's cycle. Prints min / median / max per
run and the range over all runs, with the load average before and after.
Usage:

    python bench/bench_autoscaling.py [--runs 3] [--trials 10] [--refresh-interval 2] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import redis  # noqa: E402

from celerystatus.keda import externalscaler_pb2 as keda_pb  # noqa: E402
from celerystatus.keda import externalscaler_pb2_grpc as keda_grpc  # noqa: E402
from celerystatus_server.config import Settings  # noqa: E402
from celerystatus_server.local_redis import ensure_redis  # noqa: E402
from tests.support.holds import Hold  # noqa: E402
from tests.support.server import running_server  # noqa: E402
from tests.support.workers import WorkerFactory  # noqa: E402

DB = 12


def _expect(answers: queue.Queue[tuple[float, bool]], wanted: bool, timeout: float) -> float:
    """Monotonic time at which the stream sent ``wanted``."""
    deadline = time.monotonic() + timeout
    while True:
        at, value = answers.get(timeout=max(0.0, deadline - time.monotonic()))
        if value is wanted:
            return at
        raise RuntimeError(f"stream sent {value} while waiting for {wanted}")


def run_once(url: str, trials: int, interval: float) -> tuple[list[float], list[float]]:
    redis.Redis.from_url(url).flushdb()
    up: list[float] = []
    down: list[float] = []
    with tempfile.TemporaryDirectory() as logs:
        factory = WorkerFactory(url, Path(logs))
        try:
            factory("bench-keda", concurrency=1, timeout=60)
            settings = Settings(broker_url=url, grpc_address="127.0.0.1:0", refresh_interval=interval)
            with running_server(settings) as server, grpc.insecure_channel(server.grpc_target) as channel:
                stub = keda_grpc.ExternalScalerStub(channel)
                ref = keda_pb.ScaledObjectRef(name="workers", namespace="bench")
                answers: queue.Queue[tuple[float, bool]] = queue.Queue()
                call = stub.StreamIsActive(ref)

                def read() -> None:
                    try:
                        for message in call:
                            answers.put((time.monotonic(), message.result))
                    except grpc.RpcError:
                        pass

                reader = threading.Thread(target=read, daemon=True)
                reader.start()
                try:
                    # The first answer comes once a round has seen the idle worker.
                    _expect(answers, False, 60)
                    for _ in range(trials):
                        hold = Hold(url)
                        time.sleep(random.uniform(0, interval))
                        began = time.monotonic()
                        factory.send("tests.hold", hold.token)
                        up.append(_expect(answers, True, 30) - began)
                        time.sleep(random.uniform(0, interval))
                        began = time.monotonic()
                        hold.release()
                        down.append(_expect(answers, False, 30) - began)
                        hold.close()
                finally:
                    call.cancel()
                    reader.join(5)
        finally:
            factory.close()
    return up, down


def _ms(values: list[float]) -> str:
    return f"{min(values) * 1000:.0f} / {statistics.median(values) * 1000:.0f} / {max(values) * 1000:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--refresh-interval", type=float, default=2.0)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()
    local = ensure_redis(args.redis_url) if args.redis_url else ensure_redis()
    url = local.url.rsplit("/", 1)[0] + f"/{DB}"
    load_before = os.getloadavg()
    rows = []
    try:
        for run in range(1, args.runs + 1):
            up, down = run_once(url, args.trials, args.refresh_interval)
            rows.append((run, up, down))
            print(f"run {run} done", file=sys.stderr)
    finally:
        local.stop()
    load_after = os.getloadavg()
    print(
        f"refresh interval {args.refresh_interval:g} s, {args.trials} changes each way per run, "
        f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} before / {load_after[0]:.1f} after"
    )
    print()
    print("| run | backlog 0 -> 1: stream `true` after, min / median / max (ms) | 1 -> 0: `false` after (ms) |")
    print("|---:|---:|---:|")
    for run, up, down in rows:
        print(f"| {run} | {_ms(up)} | {_ms(down)} |")
    every_up = [v for _, up, _ in rows for v in up]
    every_down = [v for _, _, down in rows for v in down]
    print(f"| all | {_ms(every_up)} | {_ms(every_down)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
