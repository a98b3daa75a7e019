"""Bounded failure: a refused, frozen or restarted broker (a private redis-server each time)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus_server.collector import Collector
from celerystatus_server.config import Settings
from celerystatus_server.local_redis import RedisProcess
from celerystatus_server.snapshot import SnapshotStore
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory

pytestmark = pytest.mark.slow

INTERVAL = 0.5


@pytest.fixture
def cluster(redis_process: RedisProcess, worker_factory: WorkerFactory) -> Iterator[Collector]:
    url = redis_process.url(0)
    worker_factory("survivor", broker_url=url)
    collector = Collector(Settings(broker_url=url, refresh_interval=INTERVAL), SnapshotStore())
    collector.start()
    wait_for(lambda: collector.store.latest().status.workers == 1, timeout=15, message="worker seen")
    yield collector
    collector.stop()


def status(collector: Collector) -> pb.CeleryStatus:
    return collector.store.latest().status


def detect_outage(collector: Collector) -> pb.CeleryStatus:
    # How soon an outage shows is measured by bench/bench_bounds.py.
    down: pb.CeleryStatus = wait_for(lambda: not (s := status(collector)).connected and s, timeout=15)
    return down


def test_refused_broker_is_reported_fast_and_recovery_is_seen(
    cluster: Collector, redis_process: RedisProcess
) -> None:
    redis_process.stop()
    down = detect_outage(cluster)
    assert down.error and "broker" in down.error
    assert down.stale and down.workers == 1, "last good data must stay available"
    assert down.inspection.duration.ToNanoseconds() <= cluster.settings.round_deadline * 1e9 + 0.3e9
    # The service keeps answering quickly while the broker is down.
    before = status(cluster).inspection.round
    wait_for(lambda: status(cluster).inspection.round >= before + 2, timeout=10)
    assert not status(cluster).connected

    redis_process.start()
    up = wait_for(lambda: (s := status(cluster)).connected and s.workers == 1 and s, timeout=30)
    assert not up.stale and up.error == ""


def test_frozen_broker_is_bounded_by_the_round_deadline(
    cluster: Collector, redis_process: RedisProcess
) -> None:
    redis_process.freeze()
    try:
        down = detect_outage(cluster)
        assert down.stale and down.workers == 1
        assert "broker" in down.error
        # Rounds keep ending (cut at the round deadline) while the broker stays frozen.
        before = status(cluster).inspection.round
        wait_for(lambda: status(cluster).inspection.round >= before + 2, timeout=15)
    finally:
        redis_process.thaw()
    wait_for(lambda: (s := status(cluster)).connected and s.workers == 1, timeout=30)
    assert not status(cluster).stale


def test_stale_age_keeps_growing_during_an_outage(cluster: Collector, redis_process: RedisProcess) -> None:
    redis_process.stop()
    detect_outage(cluster)
    first = cluster.store.latest().age()
    wait_for(lambda: cluster.store.latest().age() > first + 2 * INTERVAL, timeout=10)
    redis_process.start()


@pytest.mark.parametrize("outage", ["stop", "freeze"])
def test_probe_reports_outage_and_recovery_before_the_next_round(
    redis_process: RedisProcess, worker_factory: WorkerFactory, outage: str
) -> None:
    """With a long refresh interval, the between-rounds PING still reports within ~2 s."""
    url = redis_process.url(0)
    worker_factory("probed", broker_url=url)
    collector = Collector(Settings(broker_url=url, refresh_interval=8.0), SnapshotStore())
    collector.start()
    try:
        wait_for(lambda: status(collector).workers == 1, timeout=20)
        round_before = status(collector).inspection.round
        redis_process.stop() if outage == "stop" else redis_process.freeze()
        wait_for(lambda: not status(collector).connected, timeout=8)
        assert status(collector).stale
        redis_process.start() if outage == "stop" else redis_process.thaw()
        wait_for(lambda: status(collector).connected, timeout=8)
        assert status(collector).inspection.round <= round_before + 4
    finally:
        if outage == "freeze":
            redis_process.thaw()
        collector.stop()
