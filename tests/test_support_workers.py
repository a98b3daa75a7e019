"""Real test workers: start, answer ping, run held tasks, die without orphans."""

from __future__ import annotations

import os

import pytest

from tests.support.holds import Hold
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory

pytestmark = pytest.mark.slow


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still has a pid until its parent reaps it; it runs nothing.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_two_workers_answer_ping_with_two_pool_processes(worker_factory: WorkerFactory) -> None:
    w1 = worker_factory("w1")
    w2 = worker_factory("w2", concurrency=2)
    assert w1.hostname.startswith("w1@") and w2.hostname.startswith("w2@")
    replies = worker_factory.control().control.ping(timeout=1.0)
    answered = {name for reply in replies for name in reply}
    assert {w1.hostname, w2.hostname} <= answered
    for worker in (w1, w2):
        pool = wait_for(lambda w=worker: len(w.pool_pids()) == 2 and w.pool_pids(), timeout=15)
        assert worker.pid not in pool


def test_held_task_is_active_until_released(worker_factory: WorkerFactory, redis_url: str) -> None:
    worker = worker_factory("holder", concurrency=1)
    inspect = worker_factory.control().control.inspect(destination=[worker.hostname], timeout=1.0)
    hold = Hold(redis_url)
    result = worker_factory.send("tests.hold", hold.token, kwargs={"timeout": 60})
    hold.wait_started()

    active = inspect.active()[worker.hostname]
    assert [(t["id"], t["name"], t["args"]) for t in active] == [
        (result.id, "tests.hold", [hold.token])
    ]
    assert active[0]["worker_pid"] in worker.pool_pids()

    hold.release()
    wait_for(lambda: inspect.active()[worker.hostname] == [], timeout=15, message="still active")
    hold.close()


def test_evaluate_code_honours_a_hold(worker_factory: WorkerFactory, redis_url: str) -> None:
    worker = worker_factory("evaluator", concurrency=1)
    hold = Hold(redis_url)
    worker_factory.send("tasks.evaluate_code", "eval-123", kwargs={"hold": hold.token})
    hold.wait_started()
    inspect = worker_factory.control().control.inspect(destination=[worker.hostname], timeout=1.0)
    (task,) = inspect.active()[worker.hostname]
    assert (task["name"], task["args"], task["kwargs"]["hold"]) == (
        "tasks.evaluate_code",
        ["eval-123"],
        hold.token,
    )
    registered = set(inspect.registered()[worker.hostname])
    assert {
        "tasks.evaluate_code",
        "tasks.cleanup_old_evaluations",
        "tasks.monitor_dead_letter_queue",
        "tests.hold",
    } <= registered
    hold.release()
    wait_for(lambda: inspect.active()[worker.hostname] == [], timeout=15)
    hold.close()


def test_kill_takes_the_whole_process_group(worker_factory: WorkerFactory) -> None:
    worker = worker_factory("victim")
    pool = wait_for(lambda: len(worker.pool_pids()) == 2 and worker.pool_pids(), timeout=15)
    worker.kill()
    assert not worker.running
    wait_for(lambda: not any(_pid_alive(pid) for pid in pool), timeout=5, message="orphans left")
    assert not worker.answers_ping(worker_factory.control(), timeout=0.3)


def test_stop_is_a_warm_shutdown(worker_factory: WorkerFactory) -> None:
    worker = worker_factory("polite", queues=["polite-q"])
    inspect = worker_factory.control().control.inspect(destination=[worker.hostname], timeout=1.0)
    queues = [q["name"] for q in inspect.active_queues()[worker.hostname]]
    assert queues == ["polite-q"]
    worker.stop(timeout=20)
    assert worker.process.returncode == 0
    assert worker.pool_pids() == []
