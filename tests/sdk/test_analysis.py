"""Pure helpers: find_task, worker_health, scaling_advice, the check's verdict."""

from __future__ import annotations

from dataclasses import replace

import pytest

from celerystatus.analysis import (
    FindingKind,
    ScalingAction,
    find_task,
    locate_tasks,
    scaling_advice,
    task_matches_eval_id,
    worker_health,
)
from celerystatus.cli import evaluate_check
from celerystatus.models import (
    CeleryStatus,
    Pool,
    QueueDepth,
    QueueDetails,
    Task,
    TaskState,
    WorkerStats,
)

from .samples import full_status_proto

NOW = 1_700_000_000.0


def _sample() -> CeleryStatus:
    return CeleryStatus.from_proto(full_status_proto())


def _task(id: str, state: TaskState, worker: str = "w1", **kw: object) -> Task:
    return Task(id=id, name="tasks.evaluate_code", worker=worker, state=state, **kw)  # type: ignore[arg-type]


def test_eval_id_matching_rules() -> None:
    assert task_matches_eval_id(_task("t", TaskState.ACTIVE, args=("e1",)), "e1")
    assert task_matches_eval_id(_task("t", TaskState.ACTIVE, args=(42,)), "42")
    assert task_matches_eval_id(_task("t", TaskState.ACTIVE, kwargs={"eval_id": "e1"}), "e1")
    assert not task_matches_eval_id(_task("t", TaskState.ACTIVE, kwargs={"other": "e1"}), "e1")
    assert not task_matches_eval_id(_task("t", TaskState.ACTIVE, args=(True,)), "True")


def test_find_task_active_with_runtime() -> None:
    location = find_task(_sample(), "eval-456", now=1_699_999_999.123)
    assert location is not None
    assert (location.worker, location.state, location.task.id) == (
        "celery@worker-1",
        TaskState.ACTIVE,
        "task-123",
    )
    assert location.running_for == pytest.approx(9.0)
    assert location.describe() == "active on celery@worker-1 for 9.0s"


def test_find_task_scheduled_and_reserved() -> None:
    tasks = [
        _task("s", TaskState.SCHEDULED, args=("e",), eta=NOW + 30),
        _task("r", TaskState.RESERVED, worker="w2", args=("e",)),
    ]
    found = locate_tasks(tasks, "e", now=NOW)
    # A reserved copy is further along than a scheduled one.
    assert [loc.task.id for loc in found] == ["r", "s"]
    assert found[0].describe() == "reserved on w2, waiting for a free pool slot"
    assert found[1].starts_in == 30.0
    overdue = find_task([tasks[0]], "e", now=NOW + 40)
    assert overdue is not None and overdue.describe().endswith("overdue by 10.0s")
    assert find_task(tasks, "missing", now=NOW) is None


def test_worker_health_findings() -> None:
    health = worker_health(_sample(), now=NOW)
    assert health["celery@worker-1"].healthy
    (finding,) = health["celery@worker-2"].findings
    assert finding.kind is FindingKind.CRASHED_PROCESSES
    assert finding.message == "1 of 2 pool processes alive"


def test_thread_pools_are_not_crashed() -> None:
    status = CeleryStatus(
        worker_stats={"w": WorkerStats("w", pool=Pool(max_concurrency=8, implementation="threads"))}
    )
    assert worker_health(status, now=NOW)["w"].healthy


def test_low_throughput_only_when_work_waits() -> None:
    slow = WorkerStats("w", total=2, uptime=3600, pool=Pool(max_concurrency=1, processes=(1,)))
    idle = CeleryStatus(worker_stats={"w": slow})
    assert worker_health(idle, now=NOW)["w"].healthy
    busy = replace(idle, queues=(QueueDepth("celery", messages=10),))
    (finding,) = worker_health(busy, now=NOW)["w"].findings
    assert finding.kind is FindingKind.LOW_THROUGHPUT
    young = replace(busy, worker_stats={"w": replace(slow, uptime=60)})
    assert worker_health(young, now=NOW)["w"].healthy


def test_silent_and_saturated_workers() -> None:
    stats = WorkerStats(
        "w",
        pool=Pool(max_concurrency=2, processes=(1, 2)),
        active_tasks=2,
        last_heartbeat=NOW - 120,
    )
    health = worker_health(CeleryStatus(worker_stats={"w": stats}), now=NOW)["w"]
    kinds = {f.kind for f in health.findings}
    assert kinds == {FindingKind.SILENT, FindingKind.SATURATED}
    assert not health.healthy  # silent is a warning; saturated alone would not be


def _cluster(workers: int, concurrency: int, active: int, queued: int) -> CeleryStatus:
    return CeleryStatus(
        enabled=True,
        connected=True,
        workers=workers,
        active_tasks=active,
        worker_stats={
            f"w{i}": WorkerStats(
                f"w{i}", pool=Pool(max_concurrency=concurrency, processes=(1,) * concurrency)
            )
            for i in range(workers)
        },
        queues=(QueueDepth("celery", messages=queued),),
    )


@pytest.mark.parametrize(
    ("workers", "active", "queued", "action", "desired"),
    [
        (2, 8, 40, ScalingAction.UP, 10),  # 48 / (4 * 0.8) = 15 -> capped at 10
        (2, 8, 0, ScalingAction.UP, 3),  # 8 / 3.2 = 2.5 -> 3
        (4, 4, 0, ScalingAction.DOWN, 2),  # 25% busy < 30%; 4 / 3.2 -> 2
        (4, 6, 0, ScalingAction.HOLD, 4),  # 37.5% busy: inside the dead band
        (3, 0, 0, ScalingAction.DOWN, 2),  # idle: down to min
        (1, 0, 0, ScalingAction.UP, 2),  # below min
    ],
)
def test_scaling_formula(
    workers: int, active: int, queued: int, action: ScalingAction, desired: int
) -> None:
    advice = scaling_advice(_cluster(workers, 4, active, queued), 2, 10)
    assert (advice.action, advice.desired_workers) == (action, desired)


def test_scaling_holds_on_untrustworthy_snapshots() -> None:
    down = replace(_cluster(0, 4, 0, 0), connected=False)
    assert scaling_advice(down, 2, 10).action is ScalingAction.HOLD
    stale = replace(_cluster(2, 4, 8, 100), stale=True)
    assert scaling_advice(stale, 2, 10).action is ScalingAction.HOLD
    assert scaling_advice(CeleryStatus.disabled("off"), 2, 10).action is ScalingAction.HOLD


def test_scaling_step_and_argument_checks() -> None:
    advice = scaling_advice(_cluster(2, 4, 8, 100), 2, 20, max_step=2)
    assert (advice.action, advice.desired_workers, advice.delta) == (ScalingAction.UP, 4, 2)
    with pytest.raises(ValueError):
        scaling_advice(_cluster(2, 4, 0, 0), 5, 2)
    with pytest.raises(ValueError):
        scaling_advice(_cluster(2, 4, 0, 0), 1, 2, scale_down_below=0.9)


# --- the check command's verdict ------------------------------------------------


def test_check_ok_line() -> None:
    status = _cluster(3, 4, 12, 0)
    status = replace(status, scheduled_tasks=45, age=0.5)
    code, line = evaluate_check(status, min_workers=2, max_active=100)
    assert code == 0
    assert line.startswith("CELERY OK - 3 workers, 12 active, 45 scheduled | workers=3;2:;1:;0 ")
    assert "active=12;100;;0" in line and "age=0.500s;;;0" in line


@pytest.mark.parametrize(
    ("change", "kwargs", "code", "text"),
    [
        ({"workers": 1}, {"min_workers": 2}, 1, "workers 1 < 2"),
        ({"active_tasks": 101}, {"max_active": 100}, 1, "active 101 > 100"),
        ({"scheduled_tasks": 9}, {"max_scheduled": 5}, 1, "scheduled 9 > 5"),
        ({"age": 30.0}, {"max_age": 10}, 1, "snapshot 30.0s old > 10s"),
        ({"stale": True, "error": "timeout"}, {}, 1, "snapshot stale (timeout)"),
        ({"workers": 0}, {}, 2, "no live workers"),
        ({"connected": False, "error": "refused"}, {}, 2, "broker not connected (refused)"),
        ({"enabled": False}, {}, 2, "Celery disabled"),
    ],
)
def test_check_problems(
    change: dict[str, object], kwargs: dict[str, object], code: int, text: str
) -> None:
    status = replace(_cluster(3, 4, 12, 0), **change)  # type: ignore[arg-type]
    got_code, line = evaluate_check(status, **kwargs)  # type: ignore[arg-type]
    assert got_code == code
    state = {1: "WARNING", 2: "CRITICAL"}[code]
    assert line.startswith(f"CELERY {state} - {text}")
    assert "\n" not in line


def test_check_critical_wins_over_warning() -> None:
    status = replace(_cluster(0, 4, 0, 0), connected=False)
    code, _ = evaluate_check(status, min_workers=2)
    assert code == 2


def test_queue_details_helpers() -> None:
    details = QueueDetails(active={"w": (_task("a", TaskState.ACTIVE),)})
    assert [t.id for t in details.tasks()] == ["a"]
    assert details.by_state(TaskState.RESERVED) == {}
