"""QueueRouter end to end: a private Redis broker, a real worker, the real status service."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from celerystatus_router import (
    AsyncQueueRouter,
    Backend,
    BreakerConfig,
    BreakerState,
    JobNotRouted,
    QueueRouter,
    Reason,
    RedisLegacyQueue,
)
from celerystatus_server.config import Settings
from celerystatus_server.local_redis import RedisProcess
from celerystatus_server.server import StatusServer
from tests.support.router_jobs import Ledger
from tests.support.server import running_server
from tests.support.waiting import wait_for, wait_for_async
from tests.support.workers import WorkerFactory

SEND_TIMEOUT = 0.5
BREAKER = BreakerConfig(open_after=2, open_after_failures=3, close_after=2, min_open_time=1.0, silence_timeout=5.0)


@dataclass
class Cluster:
    broker: RedisProcess
    server: StatusServer
    ledger: Ledger
    legacy: RedisLegacyQueue


@pytest.fixture
def cluster(
    redis_process: RedisProcess, worker_factory: WorkerFactory, ledger: Ledger, redis_legacy: RedisLegacyQueue
) -> Iterator[Cluster]:
    worker_factory(broker_url=redis_process.url(0), concurrency=2)
    settings = Settings(broker_url=redis_process.url(0), grpc_address="127.0.0.1:0", refresh_interval=0.5)
    with running_server(settings) as server:
        yield Cluster(redis_process, server, ledger, redis_legacy)


@pytest.fixture
def router(cluster: Cluster) -> Iterator[QueueRouter]:
    with QueueRouter(
        cluster.broker.url(0),
        legacy=cluster.legacy,
        status=cluster.server.grpc_target,
        breaker=BREAKER,
        send_timeout=SEND_TIMEOUT,
    ) as router:
        assert router.wait_for_state(BreakerState.HALF_OPEN, timeout=30), router.breaker.reason
        yield router


def test_healthy_cluster_gets_every_job_and_runs_it_once(router: QueueRouter, cluster: Cluster) -> None:
    first = router.route("tests.record_job", job_id="probe-job")
    assert (first.backend, first.reason) == (Backend.CELERY, Reason.PROBE)
    assert router.state is BreakerState.CLOSED
    results = [router.route("tests.record_job", (i,), job_id=f"job-{i}") for i in range(20)]
    assert {(r.backend, r.reason) for r in results} == {(Backend.CELERY, Reason.HEALTHY)}
    expected = {"probe-job", *(f"job-{i}" for i in range(20))}
    wait_for(lambda: set(cluster.ledger.effects()) == expected, timeout=30, message="jobs not executed")
    assert set(cluster.ledger.effects().values()) == {1}
    assert cluster.legacy.pending() == 0
    assert router.metrics.routed.labels("celery", "healthy")._value.get() == 20


def settle(router: QueueRouter, cluster: Cluster) -> None:
    """Route one job and wait until it ran.

    Celery 5.7's worker exits when the broker connection drops while it holds an
    unacknowledged message (``restore_unacked`` on a collected connection), so
    outages in these tests start with the worker idle; the chaos test restarts
    workers instead.
    """
    router.route("tests.record_job", job_id="warm-up")
    assert router.state is BreakerState.CLOSED
    wait_for(lambda: "warm-up" in cluster.ledger.effects(), timeout=30, message="warm-up job not run")


def test_broker_outage_falls_back_without_flapping_then_drains(router: QueueRouter, cluster: Cluster) -> None:
    settle(router, cluster)

    cluster.broker.stop()
    failed = router.route("tests.record_job", job_id="first-failure")
    assert failed.backend is Backend.LEGACY
    assert failed.reason in (Reason.SEND_FAILED, Reason.SEND_TIMEOUT)
    assert router.state is BreakerState.CLOSED, "one failed send must not open the breaker"

    # The status stream (and further failed sends) open it; from then on the fallback is immediate.
    wait_for(lambda: router.state is BreakerState.OPEN, timeout=15, message="breaker never opened")
    fallbacks = [router.route("tests.record_job", job_id=f"outage-{i}") for i in range(50)]
    # Straight to the legacy queue without touching the broker; how fast is bench/bench_router.py's.
    assert {r.reason for r in fallbacks} == {Reason.BREAKER_OPEN}
    assert all(r.backend is Backend.LEGACY for r in fallbacks)

    cluster.broker.restart()
    # The worker reconnects with Celery's own backoff (2 s, 4 s, ...), then must be seen again.
    assert router.wait_for_state(BreakerState.HALF_OPEN, timeout=60), router.breaker.reason
    probe = router.route("tests.record_job", job_id="probe-after")
    assert probe.reason is Reason.PROBE and probe.celery
    assert router.state is BreakerState.CLOSED

    report = router.drain()
    assert report.moved == 51 and report.stopped == ""
    expected = {"warm-up", "first-failure", "probe-after", *(f"outage-{i}" for i in range(50))}
    wait_for(lambda: expected <= set(cluster.ledger.effects()), timeout=30, message="drained jobs not run")
    assert set(cluster.ledger.effects().values()) == {1}
    assert cluster.legacy.job_ids() == {"pending": [], "processing": [], "dead": []}


def test_frozen_broker_send_is_bounded_by_the_deadline(router: QueueRouter, cluster: Cluster) -> None:
    settle(router, cluster)
    cluster.broker.freeze()
    try:
        results = [router.route("tests.record_job", job_id=f"frozen-{i}") for i in range(3)]
    finally:
        cluster.broker.thaw()
    # The deadline wrapper or the producer's own socket timeout (set to the same deadline)
    # may fire first; either way the job went to the legacy queue within the bound.
    assert all(r.reason in (Reason.SEND_TIMEOUT, Reason.SEND_FAILED) for r in results), results
    assert all(r.backend is Backend.LEGACY for r in results)
    assert router.state is BreakerState.OPEN, "three consecutive failed sends open the breaker"
    fast = router.route("tests.record_job", job_id="after-open")
    assert fast.reason is Reason.BREAKER_OPEN and fast.backend is Backend.LEGACY


def test_status_service_gone_means_unhealthy(cluster: Cluster, redis_legacy: RedisLegacyQueue) -> None:
    settings = Settings(broker_url=cluster.broker.url(0), grpc_address="127.0.0.1:0", refresh_interval=0.5)
    with running_server(settings) as server:
        router = QueueRouter(cluster.broker.url(0), legacy=redis_legacy, status=server.grpc_target, breaker=BREAKER)
        router.start()
        assert router.wait_for_state(BreakerState.HALF_OPEN, timeout=30)
        router.route("tests.record_job", job_id="while-up")
        assert router.state is BreakerState.CLOSED
    try:
        wait_for(lambda: router.state is BreakerState.OPEN, timeout=15, message="breaker stayed closed")
        assert "status" in router.breaker.reason
        assert router.route("tests.record_job", job_id="while-down").backend is Backend.LEGACY
    finally:
        router.close()


def test_both_backends_down_raises(cluster: Cluster) -> None:
    legacy = RedisLegacyQueue.from_url("redis://127.0.0.1:1/0", timeout=0.2)
    router = QueueRouter(cluster.broker.url(0), legacy=legacy, send_timeout=SEND_TIMEOUT)
    cluster.broker.stop()
    with pytest.raises(JobNotRouted) as caught:
        router.route("tests.record_job", job_id="nowhere")
    assert caught.value.job_id == "nowhere"
    router.close()


async def test_async_router(cluster: Cluster) -> None:
    async with AsyncQueueRouter(
        cluster.broker.url(0),
        legacy=cluster.legacy,
        status=cluster.server.grpc_target,
        breaker=BREAKER,
        send_timeout=SEND_TIMEOUT,
    ) as router:
        assert await router.wait_for_state(BreakerState.HALF_OPEN, timeout=30)
        results = [await router.route("tests.record_job", job_id=f"async-{i}") for i in range(10)]
        assert results[0].reason is Reason.PROBE
        assert all(r.celery for r in results)
        await wait_for_async(lambda: len(cluster.ledger.effects()) == 10, timeout=30)

        cluster.broker.freeze()
        try:
            # The deadline, not the frozen broker, ended the send: the deadline wrapper or the
            # producer's socket timeout (set to the same deadline) fires first, as in the sync test.
            result = await router.route("tests.record_job", job_id="async-frozen")
            assert result.reason in (Reason.SEND_TIMEOUT, Reason.SEND_FAILED) and result.backend is Backend.LEGACY
        finally:
            cluster.broker.thaw()
        assert cluster.legacy.job_ids()["pending"] == ["async-frozen"]
