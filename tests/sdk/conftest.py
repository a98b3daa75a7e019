"""SDK fixtures: a scripted in-process gRPC server on a free loopback port.

The server is real gRPC (real HTTP/2, real status codes and trailers); only
the servicer is scripted, so the tests exercise the clients' I/O paths.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc

from .samples import full_status_proto


class ScriptedServicer(pb_grpc.CeleryStatusServiceServicer):
    """Answers with ``status``, or aborts with ``abort_code`` when set."""

    def __init__(self, status: pb.CeleryStatus | None = None) -> None:
        self.status = status or full_status_proto()
        self.abort_code: grpc.StatusCode | None = None
        self.abort_details = "scripted failure"
        self.abort_trailers: tuple[tuple[str, Any], ...] = ()
        self.rich_status: Any = None  # google.rpc.status_pb2.Status for abort_with_status
        self.calls: Counter[str] = Counter()
        self.requests: list[Any] = []
        self.metadata: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._version = 0
        self._closing = False

    def _enter(self, name: str, request: Any, context: grpc.ServicerContext) -> None:
        self.calls[name] += 1
        self.requests.append(request)
        self.metadata.append(dict(context.invocation_metadata()))
        if self.rich_status is not None:
            from grpc_status import rpc_status

            context.abort_with_status(rpc_status.to_status(self.rich_status))
        if self.abort_code is not None:
            if self.abort_trailers:
                context.set_trailing_metadata(self.abort_trailers)
            context.abort(self.abort_code, self.abort_details)

    def GetStatus(self, request: Any, context: grpc.ServicerContext) -> pb.GetStatusResponse:
        self._enter("GetStatus", request, context)
        return pb.GetStatusResponse(status=self.status)

    def SearchTasks(self, request: Any, context: grpc.ServicerContext) -> pb.SearchTasksResponse:
        self._enter("SearchTasks", request, context)
        tasks = []
        for lists in (
            self.status.queue_details.active,
            self.status.queue_details.scheduled,
            self.status.queue_details.reserved,
        ):
            for task_list in lists.values():
                tasks += [
                    t
                    for t in task_list.tasks
                    if not request.filter.eval_id
                    or any(v.string_value == request.filter.eval_id for v in t.args.values)
                ]
        return pb.SearchTasksResponse(
            tasks=tasks, observed_at=self.status.observed_at, stale=self.status.stale
        )

    def WatchStatus(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        self._enter("WatchStatus", request, context)
        seen = -1
        while context.is_active():
            with self._changed:
                if self._closing:
                    return
                if seen == self._version:
                    # Bounded wait so a cancelled stream frees its thread.
                    self._changed.wait(0.05)
                    continue
                seen = self._version
                status = pb.CeleryStatus()
                status.CopyFrom(self.status)
            yield pb.WatchStatusResponse(status=status)

    def publish(self, status: pb.CeleryStatus) -> None:
        """Make ``status`` current and push it to every open watch stream."""
        with self._changed:
            self.status = status
            self._version += 1
            self._changed.notify_all()

    def close_streams(self) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()


class ScriptedServer:
    """A gRPC server on 127.0.0.1 that can be stopped and restarted on its port."""

    def __init__(self, servicer: ScriptedServicer, port: int = 0) -> None:
        self.servicer = servicer
        self.port = port
        self._server: grpc.Server | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        pb_grpc.add_CeleryStatusServiceServicer_to_server(self.servicer, server)
        port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        if port == 0:
            raise RuntimeError(f"could not bind 127.0.0.1:{self.port}")
        self.port = port
        server.start()
        self._server = server

    def stop(self, *, graceful: bool = True) -> None:
        """Stop serving.  Graceful: open streams end with OK first; otherwise
        they are cut (clients see UNAVAILABLE), as in a crash or a kill."""
        if self._server is not None:
            if graceful:
                self.servicer.close_streams()
            self._server.stop(grace=None).wait(5)
            self.servicer.close_streams()
            self._server = None

    def restart(self, servicer: ScriptedServicer, *, graceful: bool = True) -> None:
        """Stop, then serve ``servicer`` on the same port (a server restart)."""
        self.stop(graceful=graceful)
        self.servicer = servicer
        self.start()


@pytest.fixture
def servicer() -> ScriptedServicer:
    return ScriptedServicer()


@pytest.fixture
def scripted_server(servicer: ScriptedServicer) -> Iterator[ScriptedServer]:
    server = ScriptedServer(servicer)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dead_target() -> str:
    """An address nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"
