"""The router's status watchers on the SDK's stream: every gap reported, never giving up."""

from __future__ import annotations

import socket
import threading

import grpc

from celerystatus import CeleryStatus
from celerystatus_router.health import AsyncStatusWatcher, StatusWatcher
from tests.sdk.conftest import ScriptedServer, ScriptedServicer
from tests.support.waiting import wait_for, wait_for_async


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: list[CeleryStatus] = []
        self.failures: list[str] = []

    def status(self, status: CeleryStatus) -> None:
        with self.lock:
            self.statuses.append(status)

    def failure(self, reason: str) -> None:
        with self.lock:
            self.failures.append(reason)


def test_watcher_reports_each_failure_and_recovers_when_the_service_appears() -> None:
    port = _free_port()
    seen = Recorder()
    watcher = StatusWatcher(f"127.0.0.1:{port}", seen.status, seen.failure, retry_delay=0.05)
    watcher.start()
    server = ScriptedServer(ScriptedServicer(), port=port)
    try:
        # Nothing listens yet: every attempt is a failure the router hears about.
        wait_for(lambda: len(seen.failures) >= 3, timeout=15)
        assert all(f.startswith("status service: UNAVAILABLE") for f in seen.failures)
        server.start()
        wait_for(lambda: seen.statuses, timeout=15)
        assert seen.statuses[0].inspection.round == 7
        # A refusal that the SDK's default policy would not resume (a wrong
        # token, a server bug) is also reported, and the watcher keeps going.
        failures = len(seen.failures)
        refusing = ScriptedServicer()
        refusing.abort_code = grpc.StatusCode.PERMISSION_DENIED
        server.restart(refusing, graceful=False)
        wait_for(lambda: any("PERMISSION_DENIED" in f for f in seen.failures[failures:]), timeout=15)
        server.servicer.abort_code = None
        statuses = len(seen.statuses)
        wait_for(lambda: len(seen.statuses) > statuses, timeout=15)
    finally:
        watcher.close()
        server.stop()


async def test_async_watcher_reports_failures_then_follows_the_stream() -> None:
    port = _free_port()
    seen = Recorder()
    watcher = AsyncStatusWatcher(f"127.0.0.1:{port}", seen.status, seen.failure, retry_delay=0.05)
    watcher.start()
    server = ScriptedServer(ScriptedServicer(), port=port)
    try:
        await wait_for_async(lambda: len(seen.failures) >= 3, timeout=15)
        server.start()
        await wait_for_async(lambda: bool(seen.statuses), timeout=15)
        assert seen.statuses[0].workers == CeleryStatus.from_proto(server.servicer.status).workers
    finally:
        await watcher.close()
        server.stop()
