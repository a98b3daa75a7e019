"""Helpers of the alert tests: a settable clock, hand-made snapshots, a webhook receiver."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.values import epoch_to_timestamp, seconds_to_duration

__all__ = ["FakeClock", "WebhookReceiver", "make_status"]


class FakeClock:
    """The alert clock, moved by the test; starts at the real time so wall data lines up."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


def make_status(
    now: float,
    *,
    workers: dict[str, dict[str, Any]] | None = None,
    queues: dict[str, int] | None = None,
    connected: bool = True,
    stale: bool = False,
    active: dict[str, list[tuple[str, str, float]]] | None = None,
) -> pb.CeleryStatus:
    """A snapshot observed at ``now``; ``workers`` maps hostname to total/active/pids/concurrency/pid."""
    workers = {"w1@h": {}, "w2@h": {}} if workers is None else workers
    status = pb.CeleryStatus(
        enabled=True, connected=connected, stale=stale, workers=len(workers) if connected else 0,
        broker_url="redis://127.0.0.1:6379/0",
        error="" if connected else "broker unreachable",
    )
    status.observed_at.CopyFrom(epoch_to_timestamp(now))
    status.inspection.refresh_interval.CopyFrom(seconds_to_duration(2.0))
    for name, spec in workers.items():
        stats = status.worker_stats[name]
        stats.hostname = name
        stats.total = spec.get("total", 0)
        stats.active_tasks = spec.get("active", 0)
        stats.pid = spec.get("pid", 100)
        stats.pool.implementation = "prefork"
        stats.pool.max_concurrency = spec.get("concurrency", 2)
        stats.pool.processes.extend(spec.get("processes", [1000, 1001]))
    status.active_tasks = sum(w.active_tasks for w in status.worker_stats.values())
    for queue, depth in (queues or {}).items():
        status.queues.append(pb.QueueDepth(name=queue, messages=depth))
    for worker, tasks in (active or {}).items():
        for task_id, name, started in tasks:
            status.queue_details.active[worker].tasks.append(
                pb.Task(id=task_id, name=name, time_start=started, worker=worker, state=pb.TASK_STATE_ACTIVE)
            )
    return status


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 recording every JSON body POSTed to it."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[tuple[str, Any]] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                receiver.bodies.append((self.path, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/secret-token-123"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def messages(self, alertname: str) -> list[str]:
        """``status`` of each generic-webhook message about ``alertname``, in arrival order."""
        return [
            b["status"] for _, b in self.bodies if isinstance(b, dict) and b.get("alert", {}).get("name") == alertname
        ]
