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
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "main"]

DEFAULT_GRPC_ADDRESS = "127.0.0.1:50051"
DEFAULT_HTTP_ADDRESS = "127.0.0.1:8080"
# A database of its own: Celery's broadcasts are per database, so the demo's
# workers never answer (or hear) an application's on the same Redis.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
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
        help="Redis database for the demo alone (default %(default)s); it must be empty or hold only "
        "a previous demo's keys, which are deleted on exit. When nothing answers, a private "
        "redis-server is started",
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
            f"  curl -s '{http_url}/history?since=5m&step=10s&series=workers,active_tasks,queue:*' | jq .series",
            f"  curl -s '{http_url}/trends?window=5m' | jq '{{throughput, saturation, runtimes}}'",
        ]
    lines.append(f"  celery-status history --target {grpc_target} --since 5m --series active_tasks,queue:*")
    lines.append(f"  celery-status trends --target {grpc_target} --window 5m")
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


class _Refused(Exception):
    """A setting the demo cannot run with: one line naming the flag to change, exit 2."""


def _check_free(flag: str, address: str | None) -> None:
    """Refuses an address something already listens on, before anything is started.

    Binding with SO_REUSEADDR, as the servers do, fails only when the port is
    really taken; the servers' own bind would fail too, but gRPC's also logs.
    """
    from celerystatus_server.config import parse_address

    if not address:
        return
    host, port = parse_address(flag, address)
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise _Refused(f"cannot listen on {address} ({exc.strerror}): choose another with {flag}") from None


def _listen_error(server: Any, settings: Any, exc: BaseException) -> _Refused:
    # The gRPC port is bound first: with it bound, the HTTP one is what failed.
    if not server.grpc_port:
        address, flag = settings.grpc_address, "--grpc-address"
    else:
        address, flag = settings.http_address, "--http-address"
    return _Refused(f"cannot listen on {address} ({exc}): is it in use? Choose another with {flag}")


async def _run(args: argparse.Namespace) -> int:
    from celerystatus_server.config import Settings, SettingsError
    from celerystatus_server.demo import broker_db
    from celerystatus_server.demo.jobs import JobStream
    from celerystatus_server.demo.tasks import QUEUE
    from celerystatus_server.demo.tasks import app as demo_app
    from celerystatus_server.demo.workers import WorkerProcess
    from celerystatus_server.local_redis import ensure_redis
    from celerystatus_server.server import StatusServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    try:
        settings = Settings(
            broker_url=args.redis_url,
            app="celerystatus_server.demo.tasks:app",
            grpc_address=args.grpc_address,
            http_address=args.http_address or None,
            show_args=True,
        )
    except SettingsError as exc:
        raise _Refused(str(exc)) from None
    _check_free("--grpc-address", settings.grpc_address)
    _check_free("--http-address", settings.http_address)

    async with contextlib.AsyncExitStack() as cleanup:
        local = ensure_redis(args.redis_url)
        cleanup.callback(local.stop)
        origin = "started a private redis-server" if local.started else "using the running Redis"
        _say(f"broker: {local.url} ({origin})")
        try:
            broker_db.claim(local.url)
        except broker_db.DatabaseInUseError as exc:
            raise _Refused(str(exc)) from None
        cleanup.callback(broker_db.release, local.url)
        # Celery lets this variable override any configured broker; make it ours.
        os.environ["CELERY_BROKER_URL"] = local.url

        # History in a throwaway data directory: the demo's samples are not worth keeping.
        data_dir = Path(tempfile.mkdtemp(prefix="celery-status-demo-data-"))
        cleanup.callback(shutil.rmtree, data_dir, True)
        # The ports first: a port in use must stop the demo before any worker exists.
        settings = settings.with_(broker_url=local.url, data_dir=str(data_dir), history_interval=2.0)
        server = StatusServer(settings)
        try:
            await server.start()
        except (OSError, RuntimeError) as exc:  # lost a race for a port checked above
            if server.grpc_port:  # the gRPC side and the collector run: the bridge failed
                await server.stop()
            raise _listen_error(server, settings, exc) from None
        cleanup.push_async_callback(server.stop)

        log_dir = Path(tempfile.mkdtemp(prefix="celery-status-demo-"))
        cleanup.callback(shutil.rmtree, log_dir, True)
        include = (EXTENSION,) if _extension_available() else ()
        workers = [
            WorkerProcess(
                "celerystatus_server.demo.tasks",
                f"demo{i}",
                broker_url=local.url,
                concurrency=2,
                queues=(QUEUE,),
                include=include,
                loglevel="info",
                log_path=log_dir / f"demo{i}.log",
                die_with_parent=True,
            )
            for i in range(1, args.workers + 1)
        ]
        cleanup.callback(_stop_workers, workers)
        for worker in workers:
            worker.start()
        extension_note = " with the worker extension" if include else ""
        _say(f"workers: starting {len(workers)}{extension_note}, logs in {log_dir}")

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
        _say("stopping: jobs, workers, server" + (", redis" if local.started else ", the demo's keys"))
    return 0


def main(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except _Refused as exc:
        print(f"celery-status demo: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"celery-status demo: missing component: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # a worker or Redis that would not start says why
        print(f"celery-status demo: {exc}", file=sys.stderr)
        return 1
