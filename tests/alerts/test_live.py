"""Alerts driven by real conditions: real workers, a real broker, the real service and SDK.

Where a rule's ``for`` would make the test wait minutes, the service runs on a
settable alert clock and the test moves it; everything else is real time.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from celerystatus import AlertState, CeleryStatusClient
from celerystatus.aio import AsyncCeleryStatusClient
from celerystatus_server.config import Settings
from celerystatus_server.local_redis import RedisProcess
from celerystatus_server.server import StatusServer
from tests.support.holds import Hold
from tests.support.server import running_server
from tests.support.waiting import WaitTimeout, wait_for, wait_for_async
from tests.support.workers import WorkerFactory

from .support import FakeClock, WebhookReceiver

pytestmark = pytest.mark.slow

#: Rules that would fire on their own in these tests (a fake clock ages every snapshot).
QUIET = """
  StatusStale: {enabled: false}
  TooManyActiveTasks: {enabled: false}
"""


@contextmanager
def alerting_server(
    tmp_path: Path, broker_url: str, rules: str, *, clock: Callable[[], float] | None = None, **settings: Any
) -> Iterator[tuple[StatusServer, CeleryStatusClient]]:
    rules_file = tmp_path / "alerts.yaml"
    rules_file.write_text(rules + "options: {evaluation_interval: 0.5s}\n")
    config = Settings(
        broker_url=broker_url,
        grpc_address="127.0.0.1:0",
        refresh_interval=0.5,
        alerts_file=str(rules_file),
        alerts_state_file=str(tmp_path / "alerts-state.json"),
        **settings,
    )
    options = {"alert_clock": clock} if clock is not None else {}
    with running_server(config, **options) as server, CeleryStatusClient(server.grpc_target) as client:
        yield server, client


def states(client: CeleryStatusClient, name: str) -> list[AlertState]:
    return [a.state for a in client.list_alerts().alerts if a.name == name]


def wait_state(client: CeleryStatusClient, name: str, state: AlertState, timeout: float = 30.0) -> None:
    wait_for(lambda: states(client, name) == [state], timeout=timeout,
             message=f"{name} {state.value}; alerts: {client.list_alerts().alerts}")


def test_killed_worker_pending_then_firing_after_for_then_resolved_and_one_notification_each(
    tmp_path: Path, redis_url: str, worker_factory: WorkerFactory
) -> None:
    clock = FakeClock(__import__("time").time())
    with WebhookReceiver() as hook:
        rules = (
            "rules:\n  WorkersBelowMinimum: {min: 2, for: 2m}\n" + QUIET
            + f"receivers:\n  - {{name: hook, type: webhook, url: '{hook.url}'}}\n"
        )
        worker_factory("first")
        doomed = worker_factory("doomed")
        with alerting_server(tmp_path, redis_url, rules, clock=clock) as (server, client):
            wait_for(lambda: server.store.latest().status.workers == 2, timeout=30, message="two workers seen")
            assert states(client, "WorkersBelowMinimum") == []
            doomed.kill()
            wait_state(client, "WorkersBelowMinimum", AlertState.PENDING)
            (pending,) = client.list_alerts().alerts
            assert "1 live worker, fewer than the minimum of 2" in pending.description
            clock.advance(119)
            evaluated = server.alerts.evaluations
            wait_for(lambda: server.alerts.evaluations > evaluated + 2, timeout=10)
            assert states(client, "WorkersBelowMinimum") == [AlertState.PENDING]
            clock.advance(1)
            wait_state(client, "WorkersBelowMinimum", AlertState.FIRING)
            firing = client.list_alerts(states=["firing"]).alerts[0]
            assert firing.fingerprint == pending.fingerprint and firing.active_since == pending.active_since
            worker_factory("newcomer")
            wait_state(client, "WorkersBelowMinimum", AlertState.RESOLVED)
            wait_for(lambda: hook.messages("WorkersBelowMinimum") == ["firing", "resolved"], timeout=15)
            # More evaluations bring no more messages.
            evaluated = server.alerts.evaluations
            wait_for(lambda: server.alerts.evaluations > evaluated + 4, timeout=15)
            receivers = client.list_alerts().receivers
            assert [(r.name, r.sent, r.failed) for r in receivers] == [("hook", 2, 0)]
    assert hook.messages("WorkersBelowMinimum") == ["firing", "resolved"]


async def test_tasks_published_with_no_worker_make_the_queue_grow(
    tmp_path: Path, redis_url: str, worker_factory: WorkerFactory
) -> None:
    queue = "alerts-growing"
    rules = (
        "rules:\n  WorkersBelowMinimum: {enabled: false}\n"
        "  QueueGrowing: {floor: 5, for: 0s, window: 5m}\n"
        "  ExhaustionPredicted: {backlog_limit: 100}\n" + QUIET
    )
    with alerting_server(tmp_path, redis_url, rules, queues=(queue,)) as (server, _):
        async with AsyncCeleryStatusClient(server.grpc_target) as client:
            stream = client.watch_alerts()
            first = await anext(stream)
            assert first.alerts == () and first.changed == ()

            def depth() -> int:
                return next((q.messages for q in server.store.latest().status.queues if q.name == queue), -1)

            for _ in range(3):
                worker_factory.send("tasks.cleanup_old_evaluations", queue=queue)
            await wait_for_async(lambda: depth() == 3, timeout=15)
            for _ in range(10):
                worker_factory.send("tasks.cleanup_old_evaluations", queue=queue)

            async def growing() -> Any:
                while True:
                    update = await anext(stream)
                    for alert in update.changed:
                        if alert.name == "QueueGrowing":
                            return alert

            changed = await asyncio.wait_for(growing(), timeout=30)
            assert (changed.state, changed.labels["queue"]) == (AlertState.FIRING, queue)
            assert changed.value > 0 and f"Queue {queue} holds 13 messages" in changed.description
            # The backlog trend heads for its limit too; that rule waits for its own `for`.
            predicted = [a for a in (await client.list_alerts()).alerts if a.name == "ExhaustionPredicted"]
            assert [(a.state, a.labels["queue"]) for a in predicted] == [(AlertState.PENDING, queue)]
            await stream.aclose()


def test_task_far_beyond_its_usual_runtime_is_running_long(
    tmp_path: Path, redis_url: str, worker_factory: WorkerFactory
) -> None:
    rules = (
        "rules:\n  WorkersBelowMinimum: {enabled: false}\n"
        "  TaskRunningLong: {factor: 3, min_runtime: 3s, min_samples: 3}\n" + QUIET
    )
    runner = worker_factory("runner")
    with alerting_server(tmp_path, redis_url, rules) as (server, client):
        trends: Any = server.alerts.engine.trends

        def active_ids() -> set[str]:
            status = server.store.latest().status
            return {t.id for tasks in status.queue_details.active.values() for t in tasks.tasks}

        # Three short runs, each seen running and then seen gone: the usual runtime.
        for index in range(3):
            hold = Hold(redis_url)
            result = worker_factory.send("tests.hold", hold.token)
            wait_for(lambda task_id=result.id: task_id in active_ids(), timeout=30)
            hold.release()
            wait_for(lambda runs=index + 1: trends.run_count == runs, timeout=30)
            hold.close()
        assert states(client, "TaskRunningLong") == []
        usual = trends.task_runtime("tests.hold", 86400.0)
        assert usual is not None and usual.count == 3
        hold = Hold(redis_url)
        slow = worker_factory.send("tests.hold", hold.token, kwargs={"timeout": 180})
        wait_for(lambda: slow.id in active_ids(), timeout=30, message="slow task seen running")

        def firing() -> bool:
            return states(client, "TaskRunningLong") == [AlertState.FIRING]

        def why() -> str:
            status = server.store.latest().status
            return (f"usual runtime {usual}, evaluations {server.alerts.evaluations}, "
                    f"snapshot stale={status.stale} connected={status.connected}, active {active_ids()}, "
                    f"workers {dict((k, (v.active_tasks, v.total)) for k, v in status.worker_stats.items())}, "
                    f"slow {slow.id}, worker log:\n{runner.log_tail(30)}")

        # The limit is max(3 s, 3 x the usual p95); a loaded machine makes the usual runs longer.
        try:
            wait_for(firing, timeout=max(60.0, 3 * usual.p95 + 30))
        except WaitTimeout:
            raise AssertionError(f"TaskRunningLong not firing: {why()}") from None
        (alert,) = client.list_alerts(states=["firing"]).alerts
        assert alert.labels["task"] == "tests.hold" and alert.labels["task_id"] == slow.id
        assert "its usual p95" in alert.description
        hold.release()
        wait_state(client, "TaskRunningLong", AlertState.RESOLVED)
        hold.close()


def test_killed_pool_process_is_reported(tmp_path: Path, redis_url: str, worker_factory: WorkerFactory) -> None:
    clock = FakeClock(__import__("time").time())
    rules = "rules:\n  WorkersBelowMinimum: {enabled: false}\n  PoolProcessesCrashed: {for: 1m}\n" + QUIET
    worker = worker_factory("prefork", concurrency=2)
    with alerting_server(tmp_path, redis_url, rules, clock=clock) as (server, client):
        def pool() -> list[int]:
            stats = server.store.latest().status.worker_stats.get(worker.hostname)
            return sorted(stats.pool.processes) if stats is not None else []

        before = wait_for(lambda: len(p := pool()) == 2 and p, timeout=30)
        assert states(client, "PoolProcessesCrashed") == []
        os.kill(before[0], signal.SIGKILL)
        wait_state(client, "PoolProcessesCrashed", AlertState.PENDING)
        assert before[0] not in pool()
        clock.advance(61)
        wait_state(client, "PoolProcessesCrashed", AlertState.FIRING)
        (alert,) = client.list_alerts(states=["firing"]).alerts
        assert alert.labels["worker"] == worker.hostname
        assert "1 pool process of" in alert.description and "was replaced" in alert.description


def test_stopped_broker_fires_and_state_survives_a_restart(
    tmp_path: Path, redis_process: RedisProcess, worker_factory: WorkerFactory
) -> None:
    clock = FakeClock(__import__("time").time())
    url = redis_process.url(0)
    rules = "rules:\n  WorkersBelowMinimum: {enabled: false}\n  BrokerDisconnected: {for: 30s}\n" + QUIET
    worker_factory("steady", broker_url=url)
    with alerting_server(tmp_path, url, rules, clock=clock) as (server, client):
        wait_for(lambda: server.store.latest().status.workers == 1, timeout=30)
        redis_process.stop()
        wait_state(client, "BrokerDisconnected", AlertState.PENDING)
        clock.advance(31)
        wait_state(client, "BrokerDisconnected", AlertState.FIRING)
        (alert,) = client.list_alerts(states=["firing"]).alerts
        assert alert.severity == "critical" and "cannot reach the broker" in alert.description
    # A new process with the same state file starts with the alert firing, not pending again.
    with alerting_server(tmp_path, url, rules, clock=clock) as (server, client):
        (restored,) = client.list_alerts().alerts
        assert (restored.fingerprint, restored.state, restored.fired_at) == (
            alert.fingerprint, AlertState.FIRING, alert.fired_at
        )
        redis_process.start()
        wait_state(client, "BrokerDisconnected", AlertState.RESOLVED)
