"""Pure conversion of worker replies into the snapshot."""

from __future__ import annotations

import pytest

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus_server import assemble, search
from celerystatus_server.urls import mask_text, mask_url

STATS = {
    "total": {"tasks.evaluate_code": 1500, "tasks.cleanup_old_evaluations": 23},
    "pid": 4242,
    "uptime": 61,
    "prefetch_count": 8,
    "pool": {
        "max-concurrency": 4,
        "processes": [12345, 12346, 12347, 12348],
        "max-tasks-per-child": "N/A",
        "implementation": "celery.concurrency.prefork:TaskPool",
    },
    "broker": {"transport": "redis"},
    "rusage": {"maxrss": 51200},
}


def report(**overrides: object) -> assemble.WorkerReport:
    values: dict[str, object] = {
        "hostname": "celery@worker-1",
        "stats": STATS,
        "active": [
            {
                "id": "task-123",
                "name": "tasks.evaluate_code",
                "args": "('eval-456',)",
                "kwargs": "{'priority': 'high'}",
                "time_start": 1643723400.123,
                "worker_pid": 12345,
                "acknowledged": True,
                "delivery_info": {"routing_key": "celery", "exchange": "", "priority": 0},
            }
        ],
        "scheduled": [
            {
                "eta": "2026-01-01T00:00:10+00:00",
                "priority": 6,
                "request": {"id": "task-9", "name": "tasks.cleanup_old_evaluations", "args": [], "kwargs": {}},
            }
        ],
        "reserved": [],
        "registered": ["tasks.evaluate_code [rate_limit=10/s]", "tasks.cleanup_old_evaluations"],
        "active_queues": [{"name": "celery"}],
    }
    values.update(overrides)
    return assemble.WorkerReport(**values)  # type: ignore[arg-type]


def build(show_args: bool = True, *reports: assemble.WorkerReport) -> pb.CeleryStatus:
    return assemble.build_status(
        reports or (report(),),
        broker_url="redis://celery-redis:6379/0",
        queues=[pb.QueueDepth(name="celery", messages=7)],
        sightings={},
        show_args=show_args,
        observed_at=1700000000.5,
    )


def test_total_is_the_sum_of_the_per_task_counts() -> None:
    ws = build().worker_stats["celery@worker-1"]
    assert ws.total == 1523
    assert dict(ws.total_by_task) == {"tasks.evaluate_code": 1500, "tasks.cleanup_old_evaluations": 23}


def test_unlimited_max_tasks_per_child_is_null_not_a_string() -> None:
    pool = build().worker_stats["celery@worker-1"].pool
    assert not pool.HasField("max_tasks_per_child")
    assert pool.max_concurrency == 4
    assert list(pool.processes) == [12345, 12346, 12347, 12348]
    assert pool.implementation == "prefork"


def test_numeric_max_tasks_per_child_is_kept() -> None:
    stats = dict(STATS, pool=dict(STATS["pool"], **{"max-tasks-per-child": 1000}))  # type: ignore[arg-type]
    pool = build(True, report(stats=stats)).worker_stats["celery@worker-1"].pool
    assert pool.max_tasks_per_child == 1000


def test_counts_registered_names_and_observed_at() -> None:
    status = build()
    assert (status.workers, status.active_tasks, status.scheduled_tasks, status.reserved_tasks) == (1, 1, 1, 0)
    assert list(status.registered_tasks) == ["tasks.cleanup_old_evaluations", "tasks.evaluate_code"]
    assert status.observed_at.ToNanoseconds() == 1_700_000_000_500_000_000
    assert [(q.name, q.messages) for q in status.queues] == [("celery", 7)]


def test_active_task_fields_come_from_the_safe_reprs() -> None:
    task = build().queue_details.active["celery@worker-1"].tasks[0]
    assert (task.id, task.name, task.worker) == ("task-123", "tasks.evaluate_code", "celery@worker-1")
    assert [v.string_value for v in task.args.values] == ["eval-456"]
    assert task.kwargs.fields["priority"].string_value == "high"
    assert task.time_start == 1643723400.123
    assert task.state == pb.TASK_STATE_ACTIVE
    assert task.routing_key == "celery"
    assert not task.args_redacted


def test_scheduled_eta_becomes_epoch_seconds() -> None:
    task = build().queue_details.scheduled["celery@worker-1"].tasks[0]
    assert task.eta == 1767225610.0
    assert task.priority == 6
    assert task.state == pb.TASK_STATE_SCHEDULED


def test_arguments_are_withheld_unless_allowed() -> None:
    task = build(False).queue_details.active["celery@worker-1"].tasks[0]
    assert task.args_redacted
    assert len(task.args.values) == 0 and len(task.kwargs.fields) == 0


def test_every_live_worker_gets_a_list_in_each_section_even_when_empty() -> None:
    status = build(True, report(hostname="a", active=[], scheduled=[]), report(hostname="b"))
    assert set(status.queue_details.active) == {"a", "b"}
    assert set(status.queue_details.scheduled) == {"a", "b"}
    assert len(status.queue_details.active["a"].tasks) == 0


def test_truncated_argsrepr_is_kept_as_text() -> None:
    assert assemble.parse_args("('eval-1', 'aaaa...") == ["('eval-1', 'aaaa..."]
    assert assemble.parse_args("['x', 2]") == ["x", 2]
    assert assemble.parse_args(None) == []
    assert assemble.parse_kwargs("{'a': 1}") == {"a": 1}


def test_failed_status_keeps_last_good_data_marked_stale() -> None:
    good = build()
    failed = assemble.failed_status(good, broker_url="redis://h/0", error="cannot reach broker: refused")
    assert failed.stale and not failed.connected and failed.enabled
    assert failed.workers == 1 and failed.error.startswith("cannot reach broker")
    first = assemble.failed_status(None, broker_url="redis://h/0", error="x")
    assert first.workers == 0 and not first.stale


def test_disabled_status() -> None:
    status = assemble.disabled_status("off")
    assert not status.enabled and status.message == "off"


def test_password_is_masked_everywhere() -> None:
    assert mask_url("redis://:s3cret@celery-redis:6379/0") == "redis://:***@celery-redis:6379/0"
    assert mask_url("amqp://guest:guest@rabbit:5672//") == "amqp://guest:***@rabbit:5672//"
    assert mask_url("redis://celery-redis:6379/0") == "redis://celery-redis:6379/0"
    assert "s3cret" not in mask_url("redis://:s3cret@a:1/0;redis://:s3cret@b:1/0")
    assert mask_text("Error connecting to redis://u:pw@h:6379/0.") == "Error connecting to redis://u:***@h:6379/0."


def test_search_matches_eval_id_in_args_and_kwargs() -> None:
    status = build()
    flt = pb.TaskFilter(eval_id="eval-456")
    def found(flt: pb.TaskFilter) -> list[str]:
        return [t.id for t, real in search.iter_tasks(status) if search.matches(t, flt, real)]

    assert found(flt) == ["task-123"]
    assert not found(pb.TaskFilter(eval_id="eval-4"))
    assert found(pb.TaskFilter(states=[pb.TASK_STATE_SCHEDULED])) == ["task-9"]
    assert not found(pb.TaskFilter(task_name="tasks.evaluate_code", worker="celery@worker-2"))


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("tasks.evaluate_code", True),  # the full name, exactly
        ("evaluate_code", True),  # no dot: the last dotted component too
        ("code", False),  # a component must match whole
        ("evaluate", False),
        ("other.evaluate_code", False),  # with a dot: exact only
        ("evaluate_code.tasks", False),
        ("", True),
    ],
)
def test_task_name_matches_the_full_name_or_its_last_component(wanted: str, expected: bool) -> None:
    task = pb.Task(id="t", name="tasks.evaluate_code")
    assert search.matches(task, pb.TaskFilter(task_name=wanted)) is expected


def test_eval_id_matches_the_real_arguments_behind_a_masked_copy() -> None:
    from celerystatus_server.security.redaction import Redactor

    real = build()
    masked = Redactor().redact_status(real)
    flt = pb.TaskFilter(eval_id="eval-456")
    pairs = list(search.iter_tasks(masked, real))
    assert [t.id for t, twin in pairs if search.matches(t, flt, twin)] == ["task-123"]
    # The arg criterion stays on what the caller sees.
    assert not [t for t, twin in pairs if search.matches(t, pb.TaskFilter(arg="eval-456"), twin)]
    search.filter_details(masked, flt, real)
    (kept,) = [t for tl in masked.queue_details.active.values() for t in tl.tasks]
    assert kept.id == "task-123" and kept.args_redacted
    assert all(v.string_value == "***" for v in kept.args.values)


def test_filter_details_keeps_worker_keys() -> None:
    status = build()
    search.filter_details(status, pb.TaskFilter(task_id="nope"))
    assert set(status.queue_details.active) == {"celery@worker-1"}
    assert len(status.queue_details.active["celery@worker-1"].tasks) == 0


def test_multiline_string_arguments_parse_into_a_list() -> None:
    # Celery's saferepr leaves the newline raw inside the quotes.
    assert assemble.parse_args("('eval-132', 'def add(a, b):\n    return a + b')") == [
        "eval-132",
        "def add(a, b):\n    return a + b",
    ]
    assert assemble.parse_kwargs("{'code': 'x\ny'}") == {"code": "x\ny"}
    assert assemble.parse_kwargs("{broken") == {"__repr__": "{broken"}
