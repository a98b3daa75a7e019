"""How fast the service answers while attackers hold idle and slow-header connections.

Starts a private redis-server and ``celery-status serve`` under a 1,024
descriptor limit (soft and hard), opens ``--idle`` connections that never send
a byte and ``--slow`` connections that send their request head one byte per
half second (from many loopback addresses, reopening whatever the server
closes), then times ``--probes`` rounds of a new client calling ``/livez``,
``GET /api/celery-status`` and gRPC ``GetStatus``. Prints per-endpoint
median and maximum latency, and the server's descriptors.

    python bench/bench_flood.py --idle 1100 --slow 500
    python bench/bench_flood.py --idle 5000 --slow 500
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import httpx  # noqa: E402

from celerystatus.v1 import celery_status_pb2 as pb  # noqa: E402
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc  # noqa: E402
from celerystatus_server.local_redis import RedisProcess  # noqa: E402
from tests.support.flood import Flood, attacker_addresses  # noqa: E402
from tests.support.serve_process import ServeProcess  # noqa: E402


def _timed(samples: list[float], call: Any) -> Any:
    began = time.perf_counter()
    result = call()
    samples.append(time.perf_counter() - began)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=int, default=1100)
    parser.add_argument("--slow", type=int, default=500)
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--nofile", type=int, default=1024)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    logs = Path(tempfile.mkdtemp(prefix="bench-flood-"))
    with RedisProcess() as redis:
        server = ServeProcess(redis.url(0), logs / "serve.log", nofile=(args.nofile, args.nofile),
                              args=["--refresh-interval", "1", "--rate-limit", "0"])
        with server, Flood(server.http_port) as flood:
            attackers = attacker_addresses(100)
            flood.idle(args.idle, attackers)
            flood.slow_headers(args.slow, attacker_addresses(50, network=1))
            flood.keep_up(attackers)
            times: dict[str, list[float]] = {"livez": [], "json": [], "grpc": []}
            failures = 0
            fds = []
            with grpc.insecure_channel(server.grpc_target) as channel:
                stub = pb_grpc.CeleryStatusServiceStub(channel)
                for _ in range(args.probes):
                    try:
                        with httpx.Client(base_url=server.http_url, timeout=10) as http:
                            _timed(times["livez"], lambda: http.get("/livez").raise_for_status())
                            body = _timed(times["json"], lambda: http.get("/api/celery-status").json())
                        reply = _timed(times["grpc"], lambda: stub.GetStatus(pb.GetStatusRequest(), timeout=10))
                        if not (body["connected"] and reply.status.connected):
                            failures += 1
                    except (httpx.HTTPError, grpc.RpcError):
                        failures += 1
                    fds.append(server.open_descriptors())
                    time.sleep(0.1)
            log_bytes = server.log_path.stat().st_size
            reopened = flood.reopened
    result = {
        "idle": args.idle,
        "slow": args.slow,
        "nofile": args.nofile,
        "probes": args.probes,
        "failed_probes": failures,
        "latency_ms": {
            name: {"p50": round(statistics.median(v) * 1000, 1), "max": round(max(v) * 1000, 1)}
            for name, v in times.items() if v
        },
        "server_fds_max": max(fds) if fds else None,
        "attacker_reconnects": reopened,
        "server_log_bytes": log_bytes,
    }
    print(json.dumps(result, indent=2))
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
