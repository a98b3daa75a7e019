"""Bounded failure: a refused, frozen or restarted broker (a private redis-server each time)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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
    # Stale until the worker is heard again (see test_no_false_empty_cluster_after_a_broker_restart).
    up = wait_for(lambda: (s := status(cluster)).connected and s.workers == 1 and not s.stale and s, timeout=30)
    assert up.error == ""


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
    wait_for(lambda: (s := status(cluster)).connected and s.workers == 1 and not s.stale, timeout=30)


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


class RecordingStore(SnapshotStore):
    """Keeps every published status, so a test can check the whole sequence."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[pb.CeleryStatus] = []

    def publish(self, status: pb.CeleryStatus, observed_monotonic: float | None = None) -> Any:
        copy = pb.CeleryStatus()
        copy.CopyFrom(status)
        self.history.append(copy)
        return super().publish(status, observed_monotonic)


@pytest.mark.parametrize("kill_one", [False, True], ids=["both-alive", "one-killed-during-outage"])
def test_no_false_empty_cluster_after_a_broker_restart(
    redis_process: RedisProcess, worker_factory: WorkerFactory, kill_one: bool
) -> None:
    url = redis_process.url(0)
    alive = worker_factory("alive", broker_url=url)
    other = worker_factory("other", broker_url=url)
    store = RecordingStore()
    collector = Collector(Settings(broker_url=url, refresh_interval=INTERVAL), store)
    collector.start()
    try:
        wait_for(lambda: status(collector).workers == 2, timeout=20, message="both workers seen")
        redis_process.stop()
        wait_for(lambda: not status(collector).connected, timeout=15)
        if kill_one:
            other.kill()
        outage_ends = len(store.history)
        redis_process.start()
        expected = {alive.hostname} if kill_one else {alive.hostname, other.hostname}
        # Heard again: exactly the live workers, fresh, for a few rounds in a row.
        wait_for(
            lambda: all(
                s.connected and not s.stale and set(s.worker_stats) == expected for s in store.history[-3:]
            ),
            timeout=60,
            message="live workers not reported fresh after the restart",
        )
    finally:
        collector.stop()
    after = [s for s in store.history[outage_ends:] if s.connected]
    assert after, "no successful round after the restart"
    # Before: for 1-3 s, connected: true with workers: 0 while both workers were alive.
    empty = [s.inspection.round for s in after if s.workers == 0]
    assert not empty, f"rounds {empty} reported an empty cluster"
    assert all(alive.hostname in s.worker_stats for s in after)
    carried = [s for s in after if s.stale]
    assert all(s.message.startswith("broker reachable again") for s in carried)
