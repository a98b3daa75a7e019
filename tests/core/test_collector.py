"""The collector against a real Redis and real prefork workers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus_server.collector import Collector
from celerystatus_server.config import Settings
from celerystatus_server.snapshot import SnapshotStore
from tests.support.holds import Hold
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory

pytestmark = pytest.mark.slow


def make_collector(broker_url: str, **overrides: Any) -> Collector:
    values: dict[str, Any] = {"broker_url": broker_url, "refresh_interval": 0.5, "show_args": True}
    values.update(overrides)
    return Collector(Settings(**values), SnapshotStore())


@pytest.fixture
def collectors() -> Iterator[list[Collector]]:
    made: list[Collector] = []
    yield made
    for collector in made:
        collector.stop()


def latest(collector: Collector) -> pb.CeleryStatus:
    return collector.store.latest().status


def test_snapshot_reports_exact_values(
    redis_url: str, worker_factory: WorkerFactory, collectors: list[Collector]
) -> None:
    w1 = worker_factory("alpha")
    w2 = worker_factory("beta")
    hold = Hold(redis_url)
    sent_at = time.time()
    worker_factory.send("tasks.evaluate_code", "eval-456", "print(1)", kwargs={"hold": hold.token})
    hold.wait_started()
    started_seen = time.time()
    worker_factory.send("tasks.cleanup_old_evaluations", countdown=120)

    collector = make_collector(redis_url)
    collectors.append(collector)
    collector.start()
    status = wait_for(
        lambda: (s := latest(collector)).connected and s.active_tasks == 1 and s.scheduled_tasks == 1 and s,
        timeout=15,
        message="snapshot with one active and one scheduled task",
    )
    assert status.enabled and not status.stale and status.error == ""
    assert status.workers == 2
    assert set(status.worker_stats) == {w1.hostname, w2.hostname}
    assert {"tasks.evaluate_code", "tasks.cleanup_old_evaluations", "tasks.monitor_dead_letter_queue"} <= set(
        status.registered_tasks
    )
    for worker in (w1, w2):
        ws = status.worker_stats[worker.hostname]
        assert ws.pool.max_concurrency == 2
        assert len(ws.pool.processes) == 2 == ws.pool.max_concurrency
        assert sorted(ws.pool.processes) == sorted(worker.pool_pids())
        assert not ws.pool.HasField("max_tasks_per_child")
        assert ws.pid == worker.pid
        assert isinstance(ws.total, int)
        assert "celery" in ws.active_queues
    (active_worker,) = [w for w, lst in status.queue_details.active.items() if lst.tasks]
    task = status.queue_details.active[active_worker].tasks[0]
    assert task.name == "tasks.evaluate_code"
    assert [v.string_value for v in task.args.values] == ["eval-456", "print(1)"]
    assert task.kwargs.fields["hold"].string_value == hold.token
    # Epoch seconds, taken when the task started running.
    assert sent_at - 1 <= task.time_start <= started_seen + 1
    (scheduled,) = [t for lst in status.queue_details.scheduled.values() for t in lst.tasks]
    assert scheduled.name == "tasks.cleanup_old_evaluations"
    assert scheduled.eta == pytest.approx(sent_at + 120, abs=5)

    hold.release()
    done = wait_for(lambda: (s := latest(collector)).active_tasks == 0 and s, timeout=15)
    assert sum(ws.total for ws in done.worker_stats.values()) >= 1
    assert done.worker_stats[active_worker].total_by_task["tasks.evaluate_code"] == 1
    hold.close()


def test_worker_joining_and_dying(
    redis_url: str, worker_factory: WorkerFactory, collectors: list[Collector]
) -> None:
    first = worker_factory("first")
    collector = make_collector(redis_url)
    collectors.append(collector)
    collector.start()
    wait_for(lambda: latest(collector).workers == 1, timeout=15, message="first worker seen")

    second = worker_factory("second")  # returns once it answers ping
    # How soon joins and deaths show is measured by bench/bench_bounds.py.
    wait_for(lambda: second.hostname in latest(collector).worker_stats, timeout=10)

    second.kill()
    wait_for(lambda: set(latest(collector).worker_stats) == {first.hostname}, timeout=20)
    # Later rounds do not wait for the dead worker any more.
    round_before = latest(collector).inspection.round
    wait_for(lambda: latest(collector).inspection.round >= round_before + 2, timeout=10)
    assert latest(collector).inspection.duration.ToNanoseconds() < 0.9e9


def test_round_after_a_timed_out_round_gets_every_reply(
    redis_url: str, worker_factory: WorkerFactory
) -> None:
    """A timed-out drain leaves a blocking read on the connection; the next round must not lose replies."""
    w1 = worker_factory("one")
    w2 = worker_factory("two")
    collector = make_collector(redis_url, discovery_interval=3600.0, inspect_timeout=0.5, round_deadline=2.0)
    # Drive rounds by hand: no loop, no event stream, so the registry only knows what rounds tell it.
    collector._last_discovery = float("-inf")
    first = collector.run_round()  # discovery: waits the whole timeout
    assert first.workers == 2
    # Redis 6.2+: replies are popped in batches, so even a round that waited out
    # its timeout leaves nothing pending and its connection is kept.
    assert collector.mailbox._batch_on is not None and collector.mailbox._batch_on[1]
    connection = collector._conn
    assert connection is not None
    w2.kill()
    timed_out = collector.run_round()  # waits for the dead worker until the timeout
    assert w1.hostname in timed_out.worker_stats
    assert collector._conn is connection
    for _ in range(3):
        status = collector.run_round()
        assert status.connected
        assert w1.hostname in status.worker_stats, "reply lost after a timed-out round"
        assert status.inspection.duration.ToNanoseconds() < 0.45e9


def test_extension_answers_in_one_command(
    redis_url: str, worker_factory: WorkerFactory, collectors: list[Collector]
) -> None:
    plain = worker_factory("plain")
    extended = worker_factory("extended", extension=True)
    collector = make_collector(redis_url)
    collectors.append(collector)
    collector.start()
    status = wait_for(
        lambda: (s := latest(collector)).workers == 2 and s.inspection.method == pb.INSPECTION_METHOD_MIXED and s,
        timeout=15,
    )
    assert status.worker_stats[extended.hostname].extension
    assert not status.worker_stats[plain.hostname].extension
    # Both paths give the same picture of a worker.
    for host in (plain.hostname, extended.hostname):
        ws = status.worker_stats[host]
        assert ws.pool.max_concurrency == 2 and len(ws.pool.processes) == 2
        assert "tasks.evaluate_code" in ws.registered_tasks


def test_disabled_never_touches_the_broker() -> None:
    # Nothing listens on port 1: any connection attempt would fail loudly.
    collector = make_collector("redis://127.0.0.1:1/0", enabled=False)
    collector.start()
    status = latest(collector)
    assert not status.enabled and "disabled" in status.message
    assert collector.app is None
    assert not [t for t in threading.enumerate() if t.name.startswith("celery-status")]
    collector.stop()


def test_queue_depth_sums_priorities_and_honours_key_prefix(redis_url: str) -> None:
    app = Celery("depth", broker=redis_url, set_as_current=False)
    app.conf.broker_transport_options = {"global_keyprefix": "pfx:", "queue_order_strategy": "priority"}
    app.conf.task_queues = ()
    for priority in (0, 3, 9):
        app.send_task("tasks.evaluate_code", args=[f"eval-{priority}"], queue="deep", priority=priority)
    client = redis.Redis.from_url(redis_url)
    assert any(k.startswith(b"pfx:deep") for k in client.keys("*")), "prefix not applied by kombu"
    collector = Collector(Settings(broker_url=redis_url, queues=("deep", "empty")), SnapshotStore(), app=app)
    collector._last_discovery = time.monotonic()  # no workers here: skip the discovery wait
    status = collector.run_round()
    depths = {q.name: q.messages for q in status.queues}
    assert depths["deep"] == 3
    assert depths["empty"] == 0
    client.close()
    app.close()


def test_password_never_appears_in_the_snapshot(redis_url: str) -> None:
    url = redis_url.replace("redis://", "redis://:hunter2@")
    collector = make_collector(url)
    status = collector.run_round()
    assert "hunter2" not in str(status)
    assert ":***@" in status.broker_url
