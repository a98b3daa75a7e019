"""RabbitMQ: publishes are confirmed by the broker, and a rejected publish falls back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection, Exchange, Queue

from celerystatus.models import CeleryStatus
from celerystatus_router import Backend, CeleryProducer, QueueRouter, Reason, RedisLegacyQueue
from tests.support.router_jobs import Ledger
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory

HEALTHY = CeleryStatus(enabled=True, connected=True, workers=1)


@pytest.fixture
def queue_name(rabbitmq_url: str) -> Iterator[str]:
    name = f"router-test-{uuid.uuid4().hex[:8]}"
    yield name
    with Connection(rabbitmq_url) as conn:
        channel = conn.default_channel
        channel.queue_delete(name)
        channel.exchange_delete(name)


@pytest.fixture
def router(rabbitmq_url: str, redis_legacy: RedisLegacyQueue) -> Iterator[QueueRouter]:
    producer = CeleryProducer(rabbitmq_url, send_timeout=2.0)
    router = QueueRouter(producer=producer, legacy=redis_legacy)
    # No status service here: the test reports the cluster healthy itself.
    router.observe(HEALTHY)
    router.observe(HEALTHY)
    yield router
    router.close()
    producer.close()


def test_confirmed_jobs_run_on_a_rabbitmq_worker(
    router: QueueRouter, worker_factory: WorkerFactory, ledger: Ledger, rabbitmq_url: str, queue_name: str
) -> None:
    worker_factory(broker_url=rabbitmq_url, queues=[queue_name], concurrency=1)
    results = [router.route("tests.record_job", job_id=f"amqp-{i}", queue=queue_name) for i in range(10)]
    assert all(r.celery for r in results)
    channel = router.producer._executor.submit(lambda: router.producer._local.producer.channel).result()
    assert channel._confirm_selected, "the producer's channel must be in confirm mode"
    wait_for(lambda: len(ledger.effects()) == 10, timeout=30, message="jobs not executed")
    assert set(ledger.effects().values()) == {1}


def test_publish_rejected_by_the_broker_goes_to_legacy(
    router: QueueRouter, redis_legacy: RedisLegacyQueue, rabbitmq_url: str, queue_name: str
) -> None:
    # A queue that refuses every message: with confirms the broker's nack reaches us;
    # without them the publish would have "succeeded" and the job vanished.
    with Connection(rabbitmq_url) as conn:
        Queue(
            queue_name,
            Exchange(queue_name, "direct"),
            routing_key=queue_name,
            queue_arguments={"x-max-length": 0, "x-overflow": "reject-publish"},
            channel=conn.default_channel,
        ).declare()
    result = router.route(
        "tests.record_job", job_id="rejected", options={"exchange": queue_name, "routing_key": queue_name}
    )
    assert (result.backend, result.reason) == (Backend.LEGACY, Reason.SEND_FAILED)
    assert redis_legacy.job_ids()["pending"] == ["rejected"]
