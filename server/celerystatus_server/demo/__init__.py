"""``celery-status demo``: a small live cluster and the status server, in one command.

Starts (or reuses) a Redis, two demo workers, a stream of demo jobs and the
status server, prints where to look, and on Ctrl-C / SIGTERM stops everything
it started, in reverse order.

Imports stay inside ``main`` so that ``celery-status --help`` does not load
Celery, and the workers (which import ``celerystatus_server.demo.tasks``) do
not load the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "main"]

DEFAULT_GRPC_ADDRESS = "127.0.0.1:50051"
DEFAULT_HTTP_ADDRESS = "127.0.0.1:8080"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
EXTENSION = "celerystatus_server.worker_extension"
WORKER_READY_TIMEOUT = 60.0
# Demo tasks may run for minutes (eval-123 is stuck on purpose); a warm
# shutdown gets this long before the workers are killed.
WORKER_STOP_TIMEOUT = 3.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--grpc-address", default=DEFAULT_GRPC_ADDRESS, help="gRPC listen address (port 0: any)"
    )
    parser.add_argument(
        "--http-address",
        default=DEFAULT_HTTP_ADDRESS,
        help="JSON bridge listen address; empty string: no bridge",
    )
    parser.add_argument(
        "--workers", type=_positive_int, default=2, help="demo workers to start (default 2)"
    )
    parser.add_argument(
        "--redis-url",
        default=DEFAULT_REDIS_URL,
        help="Redis to use as broker; when it does not answer, a private one is started",
    )
    parser.add_argument("--no-jobs", action="store_true", help="do not submit demo jobs")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _say(message: str = "") -> None:
    print(message, flush=True)


def _extension_available() -> bool:
    try:
        importlib.import_module(EXTENSION)
    except Exception:
        return False
    return True


def _http_url(http_address: str, port: int | None) -> str | None:
    if port is None:
        return None
    host = http_address.rpartition(":")[0] or "127.0.0.1"
    if host in ("0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}/api/celery-status"


def _banner(broker_url: str, hostnames: list[str], grpc_target: str, http_url: str | None,
            log_dir: Path, jobs: bool) -> str:  # fmt: skip
    lines = [
        "",
        "celery-status demo is running (Ctrl-C to stop)",
        f"  broker    {broker_url}",
        f"  workers   {', '.join(hostnames)}   (logs in {log_dir})",
        f"  gRPC      {grpc_target}",
    ]
    if http_url:
        lines.append(f"  Dashboard {http_url.removesuffix('api/celery-status')}")
        lines.append(f"  JSON      {http_url}")
    if not jobs:
        lines.append("  jobs      none (--no-jobs)")
    lines += ["", "Try:"]
    if http_url:
        lines += [
            f"  curl -s {http_url} | jq '{{connected, workers, active_tasks, scheduled_tasks}}'",
            f"  curl -s {http_url} | jq '.queue_details.active'",
            f"  curl -s {http_url} | jq '.worker_stats | map_values(.pool)'",
        ]
    service = "celerystatus.v1.CeleryStatusService"
    lines += [
        f'  grpcurl -plaintext -d \'{{"view": "STATUS_VIEW_SUMMARY"}}\' {grpc_target} '
        f"{service}/GetStatus",
        f'  grpcurl -plaintext -d \'{{"filter": {{"eval_id": "eval-123"}}}}\' {grpc_target} '
        f"{service}/SearchTasks",
        f"  grpcurl -plaintext {grpc_target} {service}/WatchStatus",
        "",
    ]
    return "\n".join(lines)


def _stop_workers(workers: list[Any]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.stop(timeout=WORKER_STOP_TIMEOUT)


async def _wait_or_stop(stop: asyncio.Event, work: Any) -> bool:
    """Runs a blocking call in a thread; False when a stop signal came first."""
    task = asyncio.ensure_future(asyncio.to_thread(work))
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task in done:
        task.result()  # re-raises what the call raised
        return True
    return False


async def _run(args: argparse.Namespace) -> int:
    from celerystatus_server.config import Settings
    from celerystatus_server.demo.jobs import JobStream
    from celerystatus_server.demo.tasks import app as demo_app
    from celerystatus_server.demo.workers import WorkerProcess
    from celerystatus_server.local_redis import ensure_redis
    from celerystatus_server.server import StatusServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    async with contextlib.AsyncExitStack() as cleanup:
        local = ensure_redis(args.redis_url)
        cleanup.callback(local.stop)
        origin = "started a private redis-server" if local.started else "using the running Redis"
        _say(f"broker: {local.url} ({origin})")
        # Celery lets this variable override any configured broker; make it ours.
        os.environ["CELERY_BROKER_URL"] = local.url

        log_dir = Path(tempfile.mkdtemp(prefix="celery-status-demo-"))
        include = (EXTENSION,) if _extension_available() else ()
        workers = [
            WorkerProcess(
                "celerystatus_server.demo.tasks",
                f"demo{i}",
                broker_url=local.url,
                concurrency=2,
                include=include,
                loglevel="info",
                log_path=log_dir / f"demo{i}.log",
            )
            for i in range(1, args.workers + 1)
        ]
        cleanup.callback(_stop_workers, workers)
        for worker in workers:
            worker.start()
        extension_note = " with the worker extension" if include else ""
        _say(f"workers: starting {len(workers)}{extension_note}, logs in {log_dir}")

        settings = Settings(
            broker_url=local.url,
            app="celerystatus_server.demo.tasks:app",
            grpc_address=args.grpc_address,
            http_address=args.http_address or None,
            show_args=True,
        )
        server = StatusServer(settings)
        await server.start()
        cleanup.push_async_callback(server.stop)

        def all_ready() -> None:
            for worker in workers:
                worker.wait_ready(demo_app, timeout=WORKER_READY_TIMEOUT)

        if not await _wait_or_stop(stop, all_ready):
            _say("stopping")
            return 0

        if not args.no_jobs:
            jobs = JobStream(demo_app).start()
            cleanup.callback(jobs.stop)

        http_url = _http_url(args.http_address, server.http_port)
        _say(_banner(local.url, [w.hostname for w in workers], server.grpc_target, http_url,
                     log_dir, not args.no_jobs))  # fmt: skip
        await stop.wait()
        _say("stopping: jobs, server, workers" + (", redis" if local.started else ""))
    return 0


def main(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except ImportError as exc:
        print(f"celery-status demo: missing component: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # a worker or Redis that would not start says why
        print(f"celery-status demo: {exc}", file=sys.stderr)
        return 1
