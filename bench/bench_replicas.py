"""Replicas: broker load for 1, 2, 3 and 5 `celery-status serve` processes, without and with coordination,
and failover time over repeated SIGKILLs of the leader.

Starts a private redis-server (the broker, on DB 0; coordination on DB 1 of the same server, as a
deployment that reuses its broker's Redis would), W real prefork workers (-c 2), then:

  load      - for each N: N servers with coordination off (each collects), then N replicas with
              --coordination-url; counts on the broker DB (MONITOR) over --window seconds:
              all commands, pidbox broadcasts (PUBLISH to the pidbox fanout channel) and worker
              replies (LPUSH to reply queues), reported per minute;
  failover  - 3 replicas; --kills times: SIGKILL the leader, time until a surviving replica's
              WatchStatus stream carries a snapshot observed by the new leader; start a
              replacement. Reported: median and max.

    python bench/bench_replicas.py [--replicas 1 2 3 5] [--window 30] [--kills 10] [--workers 2]
                                   [--interval 2] [--ttl 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import redis  # noqa: E402

from celerystatus_server.local_redis import RedisProcess  # noqa: E402
from tests.support.replicas import BrokerTally, ServeProcess, leader_of  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402
from tests.support.workers import WorkerFactory  # noqa: E402

#: The lease key of the default --coordination-key (see coordination/redis_store.py).
LEADER_KEY = "celery-status:leader"


def serve_args(broker: str, coordination: str | None, interval: float, ttl: float) -> list[str]:
    args = ["--broker", broker, "--refresh-interval", str(interval)]
    if coordination:
        args += ["--coordination-url", coordination, "--coordination-ttl", str(ttl)]
    return args


def start(names: list[str], args: list[str], logs: Path) -> list[ServeProcess]:
    servers = [ServeProcess(name, args, logs) for name in names]
    for server in servers:
        server.wait_ready()
    return servers


def settle(servers: list[ServeProcess], workers: int, coordinated: bool) -> None:
    def ready() -> bool:
        statuses = [s.status() for s in servers]
        if any(st.workers != workers for st in statuses):
            return False
        return not coordinated or len({st.observed_at.ToNanoseconds() for st in statuses}) == 1

    wait_for(ready, timeout=60, interval=0.1, ignore=(grpc.RpcError,), message="servers not settled")


def measure_load(
    broker: str, coordination: str, n: int, coordinated: bool, args: argparse.Namespace, logs: Path
) -> dict[str, float]:
    names = [f"{'r' if coordinated else 's'}{n}-{i}" for i in range(n)]
    servers = start(names, serve_args(broker, coordination if coordinated else None, args.interval, args.ttl), logs)
    tally = BrokerTally(broker)
    try:
        settle(servers, args.workers, coordinated)
        counts = tally.window(args.window)
    finally:
        tally.close()
        for server in servers:
            server.close()
    scale = 60.0 / args.window
    return {kind: counts[kind] * scale for kind in ("commands", "broadcasts", "replies")}


def measure_failover(
    broker: str, coordination: str, args: argparse.Namespace, logs: Path
) -> tuple[list[float], list[float]]:
    """Per kill: seconds until a survivor holds the lease (its key in the store changes hands),
    and until its first snapshot reaches the others."""
    replica_args = serve_args(broker, coordination, args.interval, args.ttl)
    replicas = start(["f0", "f1", "f2"], replica_args, logs)
    spawned = 3
    store = redis.Redis.from_url(coordination)
    elected: list[float] = []
    times: list[float] = []
    try:
        settle(replicas, args.workers, True)
        for _ in range(args.kills):
            leader = leader_of(replicas)
            survivors = [r for r in replicas if r is not leader]
            streams = [r.watch() for r in survivors]
            wait_for(lambda streams=streams: all(s.messages for s in streams), timeout=30)
            before = store.get(LEADER_KEY)
            killed_at = time.monotonic()
            leader.kill()

            def taken_over(streams=streams, leader=leader, killed_at=killed_at) -> float | None:  # type: ignore[no-untyped-def]
                arrivals = [
                    at
                    for stream in streams
                    for at, status in stream.messages
                    if at > killed_at and status.replica.observed_by not in ("", leader.name)
                ]
                return min(arrivals) if arrivals else None

            def leads(before=before) -> float | None:  # type: ignore[no-untyped-def]
                current = store.get(LEADER_KEY)
                return time.monotonic() if current not in (None, before) else None

            elected.append(wait_for(leads, timeout=60, interval=0.005, message="nobody leads") - killed_at)
            first = wait_for(taken_over, timeout=60, interval=0.01, message="no new leader")
            times.append(first - killed_at)
            leader.close()
            replicas.remove(leader)
            replicas += start([f"f{spawned}"], replica_args, logs)
            spawned += 1
            settle(replicas, args.workers, True)
    finally:
        for replica in replicas:
            replica.close()
    return elected, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, nargs="*", default=[1, 2, 3, 5], help="none: failover only")
    parser.add_argument("--window", type=float, default=30.0, help="seconds counted per configuration")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--ttl", type=float, default=0.0, help="lease; 0: 2 x interval (the default)")
    args = parser.parse_args()
    with RedisProcess() as redis_server, tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        broker, coordination = redis_server.url(0), redis_server.url(1)
        factory = WorkerFactory(broker, logs / "workers")
        try:
            for i in range(args.workers):
                factory(f"bench{i}", timeout=60)
            print(f"broker load per minute ({args.workers} workers, refresh interval {args.interval:g} s, "
                  f"window {args.window:g} s)")
            print("| servers | commands, off | commands, on | broadcasts, off | broadcasts, on "
                  "| replies, off | replies, on |")
            print("|---:|---:|---:|---:|---:|---:|---:|")
            for n in args.replicas:
                off = measure_load(broker, coordination, n, False, args, logs)
                on = measure_load(broker, coordination, n, True, args, logs)
                print(f"| {n} | {off['commands']:,.0f} | {on['commands']:,.0f} | {off['broadcasts']:,.0f} | "
                      f"{on['broadcasts']:,.0f} | {off['replies']:,.0f} | {on['replies']:,.0f} |", flush=True)
            if args.kills:
                elected, times = measure_failover(broker, coordination, args, logs)
                ttl = args.ttl or 2 * args.interval
                print(f"\nfailover over {len(times)} SIGKILLs of the leader "
                      f"(lease {ttl:g} s, interval {args.interval:g} s)")
                rows = (("a survivor holds the lease", elected), ("its first snapshot reaches the others", times))
                for label, values in rows:
                    print(f"{label}: median {statistics.median(values):.2f} s, max {max(values):.2f} s, "
                          f"min {min(values):.2f} s; each: " + " ".join(f"{t:.2f}" for t in values))
        finally:
            factory.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
