"""Soak: mixed load on one ``celery-status serve`` for minutes, a broker restart in the middle.

Starts a private redis-server, two demo workers (one with the extension) and
``celery-status serve`` (gRPC + bridge in one process), then for ``--duration``
seconds runs at once:

* JSON: clients requesting ``GET /api/celery-status`` (half keep-alive, half a
  new connection per request, some with filters);
* search: ``GET /api/celery-status/tasks?state=active``;
* WebSockets: subscribers on ``/ws/celery-status``, reconnecting when dropped;
* gRPC: ``WatchStatus`` streams and ``GetStatus`` calls, reconnecting on error;

and restarts the broker halfway through (stop, ``--outage`` seconds, start).
The server's RSS and open descriptors are sampled every ``--sample-every``
seconds; the summary compares the first minute with the end. Exit status 1
when the end exceeds the first minute by more than ``--max-growth`` (RSS) or
``--fd-slack`` descriptors, i.e. when something grows.

    python bench/soak.py --duration 600           # the documented 10-minute run
    python bench/soak.py --duration 90 --json     # a short one
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import httpx  # noqa: E402
import websockets  # noqa: E402

from celerystatus.v1 import celery_status_pb2 as pb  # noqa: E402
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc  # noqa: E402
from celerystatus_server.local_redis import RedisProcess  # noqa: E402
from tests.support.serve_process import ServeProcess  # noqa: E402


class Counters:
    def __init__(self) -> None:
        self.ok: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.connected_false = 0
        self.empty_while_connected = 0
        self.worker_restarts = 0

    def hit(self, kind: str) -> None:
        self.ok[kind] = self.ok.get(kind, 0) + 1

    def error(self, kind: str, exc: BaseException) -> None:
        key = f"{kind}: {type(exc).__name__}"
        if isinstance(exc, httpx.HTTPStatusError):
            key += f" {exc.response.status_code} {exc.response.text[:120]}"
        self.errors[key] = self.errors.get(key, 0) + 1


async def json_client(url: str, stop: asyncio.Event, counters: Counters, keep_alive: bool, path: str) -> None:
    client = httpx.AsyncClient(base_url=url, timeout=10) if keep_alive else None
    try:
        while not stop.is_set():
            try:
                if client is not None:
                    response = await client.get(path)
                else:
                    async with httpx.AsyncClient(base_url=url, timeout=10) as once:
                        response = await once.get(path)
                response.raise_for_status()
                counters.hit("search" if "/tasks" in path else "json")
                if path == "/api/celery-status":
                    body = response.json()
                    if not body["connected"]:
                        counters.connected_false += 1
                    elif body["workers"] == 0:
                        counters.empty_while_connected += 1

            except (httpx.HTTPError, ValueError) as exc:
                counters.error("search" if "/tasks" in path else "json", exc)
                await asyncio.sleep(0.2)
            await asyncio.sleep(0.05)
    finally:
        if client is not None:
            await client.aclose()


async def websocket_client(url: str, stop: asyncio.Event, counters: Counters) -> None:
    ws_url = url.replace("http://", "ws://") + "/ws/celery-status"
    while not stop.is_set():
        try:
            async with websockets.connect(ws_url, open_timeout=10) as ws:
                while not stop.is_set():
                    try:
                        await asyncio.wait_for(ws.recv(), 5)
                    except asyncio.TimeoutError:
                        continue
                    counters.hit("websocket message")
        except (OSError, websockets.WebSocketException, asyncio.TimeoutError) as exc:
            counters.error("websocket", exc)
            await asyncio.sleep(0.5)


async def grpc_stream(target: str, stop: asyncio.Event, counters: Counters) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.CeleryStatusServiceStub(channel)
        while not stop.is_set():
            call = stub.WatchStatus(pb.WatchStatusRequest())
            try:
                async for _ in call:
                    counters.hit("grpc stream message")
                    if stop.is_set():
                        break
            except grpc.aio.AioRpcError as exc:
                counters.error("grpc stream", exc)
                await asyncio.sleep(0.5)
            finally:
                call.cancel()


async def grpc_calls(target: str, stop: asyncio.Event, counters: Counters) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.CeleryStatusServiceStub(channel)
        while not stop.is_set():
            try:
                await stub.GetStatus(pb.GetStatusRequest(), timeout=10)
                counters.hit("grpc call")
            except grpc.aio.AioRpcError as exc:
                counters.error("grpc call", exc)
            await asyncio.sleep(0.1)


class Workers:
    """Two demo workers, restarted when they exit, as a process manager would.

    Celery 5.7 workers on Redis exit when the broker drops while they hold
    unacknowledged messages (docs/router.md, "Known limits"); the soak's broker
    restart does exactly that.
    """

    def __init__(self, broker: str, logs: Path) -> None:
        from celery import Celery

        self.broker = broker
        self.logs = logs
        self.control = Celery("soak", broker=broker, set_as_current=False)
        self.workers: dict[str, Any] = {}

    def start(self, name: str, wait: bool = True) -> None:
        from celerystatus_server.demo.workers import WorkerProcess

        include = ("celerystatus_server.worker_extension",) if name.endswith("2") else ()
        worker = WorkerProcess("celerystatus_server.demo.tasks", name, broker_url=self.broker, concurrency=2,
                               include=include, log_path=self.logs / f"{name}.log").start()
        self.workers[name] = worker
        if wait:
            worker.wait_ready(self.control)

    async def feed(self, stop: asyncio.Event) -> None:
        """Short jobs all along, so there are always active tasks and a worker's warm shutdown ends soon."""
        index = 0
        while not stop.is_set():
            index += 1
            try:
                await asyncio.to_thread(
                    self.control.send_task, "tasks.evaluate_code", args=[f"soak-{index}"],
                    kwargs={"duration": 3.0}, retry=False,
                )
            except Exception:  # the broker is down for a moment mid-run
                pass
            await asyncio.sleep(1.0)

    async def supervise(self, stop: asyncio.Event, counters: Counters) -> None:
        while not stop.is_set():
            for name, worker in list(self.workers.items()):
                if not worker.running:
                    counters.worker_restarts += 1
                    self.start(name, wait=False)
            await asyncio.sleep(1.0)

    def close(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        self.control.close()


def descriptor_kinds(pid: int) -> dict[str, int]:
    """Open descriptors by kind (socket, eventpoll, file...), to tell what grows."""
    kinds: dict[str, int] = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kind = target.split(":[", 1)[0] if ":[" in target else f"file {target}"
        kind = "file (log, /dev/null)" if kind.endswith((".log", "/dev/null")) else kind
        kind = "eventpoll" if "eventpoll" in target else kind
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def soak(
    server: ServeProcess, redis: RedisProcess, workers: Workers, args: argparse.Namespace
) -> dict[str, Any]:
    stop = asyncio.Event()
    counters = Counters()
    url, target = server.http_url, server.grpc_target
    tasks = [
        *(asyncio.create_task(json_client(url, stop, counters, i % 2 == 0, "/api/celery-status"))
          for i in range(args.json_clients)),
        asyncio.create_task(json_client(url, stop, counters, True, "/api/celery-status?state=active")),
        *(asyncio.create_task(json_client(url, stop, counters, True, "/api/celery-status/tasks?state=active"))
          for _ in range(args.search_clients)),
        *(asyncio.create_task(websocket_client(url, stop, counters)) for _ in range(args.websockets)),
        *(asyncio.create_task(grpc_stream(target, stop, counters)) for _ in range(args.grpc_streams)),
        asyncio.create_task(grpc_calls(target, stop, counters)),
        asyncio.create_task(workers.supervise(stop, counters)),
        asyncio.create_task(workers.feed(stop)),
    ]
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    restart_at = args.duration / 2
    restarted = False
    while (elapsed := time.monotonic() - started) < args.duration:
        samples.append({"t": round(elapsed, 1), "rss_mb": round(server.rss_bytes() / 2**20, 1),
                        "fds": server.open_descriptors(), "fd_kinds": descriptor_kinds(server.pid)})
        if not restarted and elapsed >= restart_at:
            restarted = True
            print(f"[{elapsed:.0f}s] stopping the broker for {args.outage:g}s", flush=True)
            await asyncio.to_thread(redis.stop)
            await asyncio.sleep(args.outage)
            await asyncio.to_thread(redis.start)
            print(f"[{time.monotonic() - started:.0f}s] broker back", flush=True)
            continue
        await asyncio.sleep(args.sample_every)
    stop.set()
    await asyncio.wait(tasks, timeout=15)
    for task in tasks:
        task.cancel()
    first_minute = [s for s in samples if s["t"] <= 60] or samples[:1]
    after_warmup = [s for s in samples if s["t"] >= 60] or samples[-1:]
    reference = first_minute[-1]
    end = samples[-1]
    return {
        "duration_s": args.duration,
        "at_1min": reference,
        "end": end,
        "max_rss_mb_after_1min": max(s["rss_mb"] for s in after_warmup),
        "max_fds_after_1min": max(s["fds"] for s in after_warmup),
        "requests": counters.ok,
        "errors": counters.errors,
        "json_connected_false": counters.connected_false,
        "json_connected_but_no_workers": counters.empty_while_connected,
        "worker_restarts": counters.worker_restarts,
        "load_average_end": load_average(),
        "samples": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--outage", type=float, default=3.0, help="seconds the broker stays down mid-run")
    parser.add_argument("--sample-every", type=float, default=5.0)
    parser.add_argument("--json-clients", type=int, default=8)
    parser.add_argument("--search-clients", type=int, default=2)
    parser.add_argument("--websockets", type=int, default=20)
    parser.add_argument("--grpc-streams", type=int, default=10)
    parser.add_argument("--max-growth", type=float, default=0.2, help="allowed RSS growth after minute 1 (0.2: 20 %%)")
    parser.add_argument("--fd-slack", type=int, default=16, help="descriptors the end may exceed minute 1 by")
    parser.add_argument("--json", action="store_true", help="print the whole result, samples included")
    args = parser.parse_args()

    logs = Path(tempfile.mkdtemp(prefix="soak-"))
    with ExitStack() as stack:
        redis = RedisProcess()
        redis.start()
        stack.callback(redis.close)
        broker = redis.url(0)
        workers = Workers(broker, logs)
        stack.callback(workers.close)
        workers.start("soak1")
        workers.start("soak2")
        for index in range(4):
            workers.control.send_task("tasks.evaluate_code", args=[f"soak-later-{index}"], countdown=3600)
        server = ServeProcess(broker, logs / "server.log", args=[
            "--refresh-interval", "1", "--rate-limit", "0", "--max-streams", "1000",
            "--max-streams-per-caller", "1000", "--log-level", "info",
        ])
        server.start()
        stack.callback(server.stop)
        load_start = load_average()
        print(f"logs in {logs}; server pid {server.pid}; load average at start {load_start}", flush=True)
        result = asyncio.run(soak(server, redis, workers, args))
        result["load_average"] = {"start": load_start, "end": result.pop("load_average_end")}
        result["server_log_bytes"] = (logs / "server.log").stat().st_size
    samples = result.pop("samples")
    if args.json:
        result["samples"] = samples
    print(json.dumps(result, indent=2))
    ref, end = result["at_1min"], result["end"]
    # Descriptors move with the clients' reconnections; growth means more than that.
    grew = end["rss_mb"] > ref["rss_mb"] * (1 + args.max_growth) or end["fds"] > ref["fds"] + args.fd_slack
    return 1 if grew else 0


if __name__ == "__main__":
    raise SystemExit(main())
