"""Throughput and latency of GET /api/celery-status, and what it costs the cluster.

Starts (unless --url is given) two demo workers and ``celery-status serve``
(gRPC server + bridge in one process, as deployed) on the given Redis, then
hammers the endpoint from this process with an async httpx client at each
concurrency level. The inspection rounds the server ran meanwhile are read
from ``inspection.round``: they must follow the refresh interval, not the
request rate.

    python bench/bench_bridge.py --broker redis://127.0.0.1:6379/9 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _round(client: httpx.AsyncClient) -> int:
    body = (await client.get("/api/celery-status")).json()
    return int(body["inspection"]["round"])


async def _wait_ready(client: httpx.AsyncClient, workers: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            body = (await client.get("/api/celery-status")).json()
            if body["connected"] and body["workers"] >= workers:
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"cluster not ready after {timeout}s")
        await asyncio.sleep(0.2)


async def _level(client: httpx.AsyncClient, concurrency: int, duration: float, path: str, raw: bool) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + duration

    async def user() -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                response = await client.get(path)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - started)
            errors += not ok

    async def raw_user() -> None:
        # httpx spends a few ms of CPU per request, which on a small machine
        # caps the figures before the server does; this keep-alive client
        # costs almost nothing, so it measures the server.
        nonlocal errors
        url = httpx.URL(str(client.base_url))
        reader, writer = await asyncio.open_connection(url.host, url.port)
        request = f"GET {path} HTTP/1.1\r\nHost: {url.host}\r\n\r\n".encode()
        try:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                errors += not head.startswith(b"HTTP/1.1 200")
        finally:
            writer.close()

    rounds_before = await _round(client)
    wall = time.perf_counter()
    await asyncio.gather(*((raw_user if raw else user)() for _ in range(concurrency)))
    wall = time.perf_counter() - wall
    rounds = await _round(client) - rounds_before
    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / wall,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "seconds": wall,
        "rounds": rounds,
    }


async def _bench(
    url: str, levels: list[int], duration: float, workers: int, path: str, raw: bool
) -> list[dict[str, Any]]:
    limits = httpx.Limits(max_connections=max(levels), max_keepalive_connections=max(levels))
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
        await _wait_ready(client, workers)
        body = (await client.get("/api/celery-status")).json()
        print(
            f"cluster: {body['workers']} workers, {body['active_tasks']} active, "
            f"{body['scheduled_tasks']} scheduled; refresh every "
            f"{body['inspection']['refresh_interval']} s; "
            f"response {len(json.dumps(body))} bytes",
            flush=True,
        )
        results = []
        for level in levels:
            result = await _level(client, level, duration, path, raw)
            results.append(result)
            print(
                f"c={result['concurrency']:>3}  {result['rps']:8.0f} req/s  "
                f"p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms  "
                f"{result['requests']} requests, {result['errors']} errors, "
                f"{result['rounds']} inspection rounds in {result['seconds']:.1f} s",
                flush=True,
            )
        return results


def _start_cluster(stack: ExitStack, broker: str, refresh: float) -> str:
    from celery import Celery

    from celerystatus_server.demo.tasks import QUEUE
    from celerystatus_server.demo.workers import WorkerProcess

    logs = Path(tempfile.mkdtemp(prefix="bench-bridge-"))
    control = Celery("bench", broker=broker, set_as_current=False)
    stack.callback(control.close)
    for name in ("bench1", "bench2"):
        worker = WorkerProcess(
            "celerystatus_server.demo.tasks",
            name,
            broker_url=broker,
            concurrency=2,
            log_path=logs / f"{name}.log",
        ).start()
        stack.callback(worker.stop)
        worker.wait_ready(control)
    # Some tasks in every state, so the payload is a realistic size.
    for index in range(2):
        control.send_task("tasks.evaluate_code", args=[f"bench-{index}"], kwargs={"duration": 300}, queue=QUEUE)
    for index in range(4):
        control.send_task("tasks.evaluate_code", args=[f"bench-later-{index}"], countdown=600, queue=QUEUE)
    http_port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celerystatus_server.cli",
            "serve",
            "--broker",
            broker,
            "--grpc-address",
            f"127.0.0.1:{_free_port()}",
            "--http-address",
            f"127.0.0.1:{http_port}",
            "--refresh-interval",
            str(refresh),
            # All load comes from one address; the per-caller budget would
            # measure the rate limiter instead of the server.
            "--rate-limit",
            "0",
        ],
        stdout=open(logs / "server.log", "wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )

    def stop_server() -> None:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    stack.callback(stop_server)
    print(f"logs in {logs}", flush=True)
    return f"http://127.0.0.1:{http_port}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="bench a running bridge instead of starting a cluster")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--refresh-interval", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per level")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--path", default="/api/celery-status", help="e.g. /livez, to compare with a no-op")
    parser.add_argument(
        "--client",
        choices=("httpx", "raw"),
        default="httpx",
        help="raw: a minimal keep-alive HTTP/1.1 client, to take the client's CPU out",
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON too")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    with ExitStack() as stack:
        url = args.url or _start_cluster(stack, args.broker, args.refresh_interval)
        results = asyncio.run(_bench(url, levels, args.duration, 0 if args.url else 2, args.path, args.client == "raw"))
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
