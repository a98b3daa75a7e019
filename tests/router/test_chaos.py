"""Chaos: route >= 2,000 jobs through broker outages, a frozen broker and a killed worker.

Afterwards every routed job id must have run exactly once (counted in the
dedupe store on the shared Redis, which the broker's restarts do not touch),
and nothing may be left waiting in either queue.

The broker is a private redis-server made durable for this test (RDB written on
SIGTERM, loaded at start): the router can only promise not to lose what the
broker promised to keep.  Celery 5.7 workers exit when the broker connection
drops while they hold unacknowledged messages; a supervisor thread starts a
replacement, as a process manager would, and the messages come back through
the Redis transport's visibility timeout.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
import redis

from celerystatus_router import (
    Backend,
    BreakerConfig,
    BreakerState,
    JobNotRouted,
    QueueRouter,
    RedisDedupe,
    RedisLegacyQueue,
    RedisOutbox,
    RouteResult,
)
from celerystatus_server.config import Settings
from celerystatus_server.local_redis import RedisProcess
from tests.support.router_jobs import DONE_PREFIX, Ledger
from tests.support.server import running_server
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

JOBS = 2000
RATE = 110.0  # jobs/s: slow enough that every phase sees a few hundred jobs
VISIBILITY_TIMEOUT = "4"
# Longer than a redelivery through the visibility timeout takes, so the outbox only resends real losses.
RECONCILE_AFTER = 12.0


def make_durable(broker: RedisProcess) -> None:
    client = redis.Redis.from_url(broker.url(0))
    try:
        client.config_set("save", "3600 1")
    finally:
        client.close()


class Supervisor:
    """Restarts workers that exited, like a process manager would."""

    def __init__(self, factory: WorkerFactory, broker_url: str, env: dict[str, str], initial: int) -> None:
        self.factory = factory
        self.broker_url = broker_url
        self.env = env
        self.restarts = 0
        self._stop = threading.Event()
        self.live = [self._start() for _ in range(initial)]
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _start(self) -> object:
        name = f"chaos{len(self.factory.workers) + 1}"
        return self.factory(name, broker_url=self.broker_url, concurrency=2, env=self.env, wait=False)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for index, worker in enumerate(self.live):
                if not worker.running:  # type: ignore[attr-defined]
                    self.live[index] = self._start()
                    self.restarts += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


class Traffic:
    """Routes jobs at a steady rate on its own thread."""

    def __init__(self, router: QueueRouter) -> None:
        self.router = router
        self.results: list[RouteResult] = []
        self.not_routed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def count(self) -> int:
        return len(self.results) + len(self.not_routed)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        began = time.monotonic()
        n = 0
        while not self._stop.is_set() or n < JOBS:
            pause = began + n / RATE - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # pacing the load, not waiting for an event
            try:
                self.results.append(self.router.route("tests.record_job", (n,), job_id=f"chaos-{n}"))
            except JobNotRouted as exc:
                self.not_routed.append(exc.job_id)
            n += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def wait_count(self, count: int, timeout: float = 30) -> None:
        wait_for(lambda: self.count >= count, timeout=timeout, message=f"traffic stuck below {count} jobs")


def diagnose(missing: set[str], traffic: Traffic, broker_url: str, phases: list[str]) -> str:
    client = redis.Redis.from_url(broker_url, decode_responses=True)
    try:
        queued = {json.loads(m)["headers"]["id"] for m in client.lrange("celery", 0, -1)}
        unacked = {json.loads(v)[0]["headers"]["id"] for v in client.hgetall("unacked").values()}
    finally:
        client.close()
    routes = {r.job_id: f"{r.backend.value}/{r.reason.value}" for r in traffic.results}
    sample = sorted(missing)[:8]
    where = {i: (routes.get(i), i in queued, i in unacked) for i in sample}
    return (
        f"{len(missing)} jobs never ran; (route, in broker queue, in unacked): {where}; "
        f"broker queue {len(queued)}, unacked {len(unacked)}; phases: {phases}"
    )


def test_chaos_no_job_lost_none_run_twice(
    redis_process: RedisProcess,
    worker_factory: WorkerFactory,
    ledger: Ledger,
    redis_legacy: RedisLegacyQueue,
    request: pytest.FixtureRequest,
) -> None:
    began = time.monotonic()
    broker = redis_process
    make_durable(broker)
    broker_url = broker.url(0)
    env = {"CELERY_STATUS_TEST_VISIBILITY_TIMEOUT": VISIBILITY_TIMEOUT}
    supervisor = Supervisor(worker_factory, broker_url, env, initial=2)
    # Before the worker factory's teardown, or a failed run would keep starting workers.
    request.addfinalizer(supervisor.stop)
    phases: list[str] = []

    def mark(what: str) -> None:
        phases.append(f"{time.monotonic() - began:5.1f}s {traffic.count:5d} jobs: {what}")

    settings = Settings(broker_url=broker_url, grpc_address="127.0.0.1:0", refresh_interval=0.5)
    breaker = BreakerConfig(open_after=2, open_after_failures=3, close_after=2, min_open_time=1.0, silence_timeout=5)
    outbox = RedisOutbox(redis_legacy.client, "chaos-outbox")
    dedupe = RedisDedupe(ledger.client, DONE_PREFIX)
    with (
        running_server(settings) as server,
        QueueRouter(
            broker_url, legacy=redis_legacy, status=server.grpc_target, breaker=breaker, send_timeout=0.3, outbox=outbox
        ) as router,
    ):
        traffic = Traffic(router)
        try:
            supervisor.start()
            assert router.wait_for_state(BreakerState.HALF_OPEN, BreakerState.CLOSED, timeout=40), router.breaker.reason
            traffic.start()
            recovered: Callable[[], bool] = lambda: router.breaker.state is BreakerState.CLOSED  # noqa: E731

            traffic.wait_count(200)
            mark("broker stopped (SIGTERM)")
            broker.stop()
            traffic.wait_count(traffic.count + 250)
            broker.restart()
            make_durable(broker)
            mark("broker started again")
            wait_for(recovered, timeout=40, message="Celery never came back after the stop")

            traffic.wait_count(traffic.count + 100)
            mark("broker frozen (SIGSTOP)")
            broker.freeze()
            traffic.wait_count(traffic.count + 200)
            broker.thaw()
            mark("broker thawed")
            wait_for(recovered, timeout=40, message="Celery never came back after the freeze")

            traffic.wait_count(traffic.count + 100)
            victim = next(w for w in supervisor.live if w.running)  # type: ignore[attr-defined]
            victim.kill()  # type: ignore[attr-defined]
            mark("worker SIGKILLed")
            traffic.wait_count(traffic.count + 100)
            mark("broker restarted")
            broker.restart()
            make_durable(broker)
            wait_for(recovered, timeout=40, message="Celery never came back after the restart")
        finally:
            traffic.stop()
        mark("traffic stopped")

        routed = [r.job_id for r in traffic.results]
        assert len(routed) >= JOBS and len(set(routed)) == len(routed)
        assert traffic.not_routed == [], "the legacy queue was up the whole time"

        # Drain what waited in the legacy queue, while Celery stays healthy.
        drained = 0
        deadline = time.monotonic() + 40
        while redis_legacy.pending() or redis_legacy.in_flight():
            assert time.monotonic() < deadline, f"legacy queue not drained: {redis_legacy.job_ids()}"
            wait_for(recovered, timeout=30)
            drained += router.drain().moved
            redis_legacy.recover()
        mark(f"drained {drained} legacy jobs")

        # Whatever Celery accepted but no worker recorded after a while is sent again.
        expected = set(routed)
        resent = 0

        def all_ran() -> bool:
            nonlocal resent
            if set(ledger.effects()) >= expected:
                return True
            resent += router.reconcile(dedupe, older_than=RECONCILE_AFTER).resent
            return False

        try:
            wait_for(all_ran, timeout=60, interval=0.5)
        except AssertionError:
            raise AssertionError(diagnose(expected - set(ledger.effects()), traffic, broker_url, phases)) from None
        mark("every job ran")
        supervisor.stop()

    effects = ledger.effects()
    deliveries = ledger.deliveries()
    broker_client = redis.Redis.from_url(broker_url)
    leftovers = [json.loads(m)["headers"]["id"] for m in broker_client.lrange("celery", 0, -1)]
    broker_client.close()
    by_backend = Counter(r.backend.value for r in traffic.results)
    by_reason = Counter(f"{r.backend.value}/{r.reason.value}" for r in traffic.results)
    summary = {
        "routed": len(routed),
        "by_backend": dict(by_backend),
        "by_reason": dict(by_reason),
        "drained": drained,
        "resent_from_outbox": resent,
        "executed": len(effects),
        "executed_twice": sum(1 for n in effects.values() if n > 1),
        "extra_ids": len(set(effects) - expected),
        "redelivered_and_deduplicated": sum(n - 1 for n in deliveries.values() if n > 1),
        "left_in_broker_queue": len(leftovers),
        "legacy_left": redis_legacy.job_ids(),
        "worker_restarts": supervisor.restarts,
        "seconds": round(time.monotonic() - began, 1),
        "phases": phases,
    }
    print("CHAOS " + json.dumps(summary, indent=1))
    assert set(effects) == expected
    assert set(effects.values()) == {1}
    assert by_backend[Backend.CELERY.value] > 0 and by_backend[Backend.LEGACY.value] > 0
    assert set(leftovers) <= expected, "only redelivered copies of executed jobs may remain"
    assert redis_legacy.job_ids() == {"pending": [], "processing": [], "dead": []}
