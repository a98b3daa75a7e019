"""The SDK against the real service, real Redis and real ``celery worker`` processes."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest

from celerystatus import (
    AsyncCeleryStatusClient,
    CeleryStatus,
    CeleryStatusClient,
    RetryPolicy,
    StatusView,
    TaskState,
)
from celerystatus.schema import STATUS_JSON_SCHEMA
from celerystatus_server.config import Settings
from celerystatus_server.server import StatusServer
from tests.support.holds import Hold
from tests.support.schemas import validate_closed
from tests.support.server import running_server
from tests.support.waiting import wait_for, wait_for_async
from tests.support.workers import WorkerFactory

from .test_cli import _program

pytestmark = pytest.mark.slow

RESUME = RetryPolicy(initial_backoff=0.05, max_backoff=0.5, reconnect_timeout=30)


def _settings(redis_url: str, grpc_address: str = "127.0.0.1:0") -> Settings:
    return Settings(
        broker_url=redis_url,
        grpc_address=grpc_address,
        refresh_interval=0.5,
        min_refresh_interval=0.1,
        show_args=True,
        # These tests poll with max_age faster than the default fresh budget allows
        # (that budget is tested in tests/security).
        fresh_rate_limit=0,
    )


@pytest.fixture
def hold(redis_url: str) -> Iterator[Hold]:
    held = Hold(redis_url)
    try:
        yield held
    finally:
        held.release(10)
        held.close()


def _busy_cluster(worker_factory: WorkerFactory, hold: Hold) -> tuple[str, str]:
    """Two workers; eval-int-1 held active, one cleanup task scheduled in 120s."""
    alpha = worker_factory("alpha")
    beta = worker_factory("beta")
    worker_factory.send(
        "tasks.evaluate_code", "eval-int-1", "print(1)", kwargs={"hold": hold.token}
    )
    hold.wait_started()
    worker_factory.send("tasks.cleanup_old_evaluations", countdown=120)
    return alpha.hostname, beta.hostname


def test_sync_client_against_real_workers(
    redis_url: str, worker_factory: WorkerFactory, hold: Hold
) -> None:
    hosts = _busy_cluster(worker_factory, hold)
    with running_server(_settings(redis_url)) as server:
        with CeleryStatusClient(server.grpc_target, timeout=10) as client:
            status = wait_for(
                lambda: (
                    (s := client.get_status(max_age=0.2)).workers == 2
                    and s.active_tasks == 1
                    and s.scheduled_tasks == 1
                    and s
                ),
                timeout=30,
                message="two workers, one active and one scheduled task",
            )
            assert status.enabled and status.connected and not status.stale
            assert set(status.worker_stats) == set(hosts)
            for stats in status.worker_stats.values():
                assert stats.pool.max_concurrency == 2 and len(stats.pool.processes) == 2
            document = status.to_dict()
            # A real snapshot, with unknown keys forbidden: any drift between
            # to_dict and the published schema fails here.
            validate_closed(document, STATUS_JSON_SCHEMA)
            assert CeleryStatus.from_dict(document) == status

            location = client.find_task("eval-int-1")
            assert location is not None
            assert location.state is TaskState.ACTIVE and location.worker in hosts
            assert location.running_for is not None and 0 <= location.running_for < 120
            assert client.find_task("eval-nowhere") is None

            health = client.worker_health()
            assert set(health) == set(hosts)
            assert all(h.healthy for h in health.values()), health

            summary = client.get_status(view=StatusView.SUMMARY)
            assert list(summary.tasks()) == []

            stream = client.watch_status()
            assert next(stream).active_tasks == 1
            hold.release()
            wait_for(lambda: next(stream).active_tasks == 0, timeout=30, message="task finished")
            stream.close()

        check = subprocess.run(
            [*_program(), "check", "--target", server.grpc_target, "--min-workers", "2"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.stdout.startswith("CELERY OK - 2 workers, ")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_async_client_and_watch_across_a_real_server_restart(
    redis_url: str, worker_factory: WorkerFactory, hold: Hold
) -> None:
    hosts = _busy_cluster(worker_factory, hold)
    address = f"127.0.0.1:{_free_port()}"
    server = StatusServer(_settings(redis_url, address))
    await server.start()
    try:
        async with AsyncCeleryStatusClient(address, timeout=10, retries=RESUME) as client:
            status = await wait_for_async(
                lambda: _ready(client), timeout=30, message="two workers, one active task"
            )
            assert set(status.worker_stats) == set(hosts)
            location = await client.find_task("eval-int-1")
            assert location is not None and location.state is TaskState.ACTIVE
            advice = await client.scaling_advice(1, 4)
            assert advice.demand >= 1

            stream = client.watch_status()
            before = await anext(stream)
            await server.stop(grace=0.2)
            server = StatusServer(_settings(redis_url, address))
            await server.start()
            # The stream reconnects on its own; a restarted server counts rounds from 1.
            after = await wait_for_async(
                lambda: _next_connected(stream), timeout=30, message="stream resumed"
            )
            assert after.observed_at is not None and before.observed_at is not None
            assert after.observed_at > before.observed_at
            await stream.aclose()
    finally:
        await server.stop(grace=0.2)


async def _ready(client: AsyncCeleryStatusClient) -> CeleryStatus | None:
    status = await client.get_status(max_age=0.2)
    return status if status.workers == 2 and status.active_tasks == 1 else None


async def _next_connected(stream: object) -> CeleryStatus | None:
    status: CeleryStatus = await anext(stream)  # type: ignore[call-overload]
    return status if status.connected and status.workers == 2 else None
