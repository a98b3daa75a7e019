"""The collector on RabbitMQ: worker replies, passive-declare queue depth, failure bounds."""

from __future__ import annotations

import uuid

import pytest
from celery import Celery

from celerystatus_server.collector import Collector
from celerystatus_server.config import Settings
from celerystatus_server.snapshot import SnapshotStore
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory

pytestmark = pytest.mark.slow


def test_collector_on_rabbitmq(rabbitmq_url: str, redis_url: str, worker_factory: WorkerFactory) -> None:
    tag = uuid.uuid4().hex[:8]
    consumed, idle = f"cs-work-{tag}", f"cs-idle-{tag}"
    worker = worker_factory(f"rabbit-{tag}", broker_url=rabbitmq_url, queues=[consumed])
    app = Celery("rabbit-depth", broker=rabbitmq_url, set_as_current=False)
    for n in range(3):
        app.send_task("tasks.evaluate_code", args=[f"eval-{n}"], queue=idle)
    collector = Collector(
        Settings(broker_url=rabbitmq_url, refresh_interval=0.5, queues=(idle,)), SnapshotStore()
    )
    collector.start()
    try:
        status = wait_for(
            lambda: (s := collector.store.latest().status).connected and worker.hostname in s.worker_stats and s,
            timeout=20,
        )
        ws = status.worker_stats[worker.hostname]
        assert ws.transport == "amqp"
        assert ws.pool.max_concurrency == 2 and len(ws.pool.processes) == 2
        assert consumed in ws.active_queues
        depths = {q.name: q for q in status.queues}
        assert depths[idle].messages == 3
        assert depths[idle].HasField("consumers") and depths[idle].consumers == 0
        assert depths[consumed].consumers >= 1
        assert status.broker_url == "amqp://guest:***@127.0.0.1:5672//"
    finally:
        collector.stop()
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(idle)
        app.close()


def test_refused_amqp_broker_fails_within_the_deadline() -> None:
    # Port 1 refuses connections: the round must end fast with a clear error.
    collector = Collector(Settings(broker_url="amqp://guest:guest@127.0.0.1:1//"), SnapshotStore())
    status = collector.run_round()
    assert not status.connected
    assert "broker" in status.error and "guest@" not in status.error
    assert status.inspection.duration.ToNanoseconds() < collector.settings.round_deadline * 1e9 + 0.3e9
