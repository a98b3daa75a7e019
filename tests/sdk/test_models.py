"""Models: protobuf and JSON conversions, pinned by golden files and the JSON Schema."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from celerystatus import values as _values
from celerystatus.models import (
    CeleryStatus,
    InspectionMethod,
    Pool,
    StatusView,
    Task,
    TaskState,
    WorkerStats,
)
from celerystatus.schema import STATUS_JSON_SCHEMA
from celerystatus.v1 import celery_status_pb2 as pb
from tests.support.schemas import validate_closed

from .samples import disabled_status_proto, full_status_proto

GOLDEN = Path(__file__).parent / "golden"


def _golden(name: str) -> Any:
    return json.loads((GOLDEN / f"{name}.json").read_text())


@pytest.mark.parametrize(
    ("name", "factory"),
    [("full_status", full_status_proto), ("disabled_status", disabled_status_proto)],
)
def test_to_dict_matches_golden_file(name: str, factory: Any) -> None:
    document = CeleryStatus.from_proto(factory()).to_dict()
    # Through json so tuples/ints/floats compare as a JSON consumer sees them.
    assert json.loads(json.dumps(document)) == _golden(name)


@pytest.mark.parametrize("name", ["full_status", "disabled_status"])
def test_golden_documents_satisfy_the_schema(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(STATUS_JSON_SCHEMA)
    validate_closed(_golden(name), STATUS_JSON_SCHEMA)


def test_schema_rejects_a_missing_key() -> None:
    document = _golden("full_status")
    del document["worker_stats"]["celery@worker-1"]["pool"]["max-tasks-per-child"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, STATUS_JSON_SCHEMA)


def test_schema_requires_every_key_the_model_produces() -> None:
    document = CeleryStatus().to_dict()
    assert set(STATUS_JSON_SCHEMA["required"]) == set(document)


def test_disabled_status_has_every_key() -> None:
    disabled = CeleryStatus.disabled("off").to_dict()
    assert set(disabled) == set(_golden("full_status"))
    assert disabled["workers"] == 0
    assert disabled["message"] == "off"
    assert disabled["queue_details"] == {"active": {}, "scheduled": {}, "reserved": {}}


def test_seed_keys_and_types() -> None:
    document = CeleryStatus.from_proto(full_status_proto()).to_dict()
    worker = document["worker_stats"]["celery@worker-1"]
    assert worker["pool"] == {
        "max-concurrency": 4,
        "processes": [12345, 12346, 12347, 12348],
        "max-tasks-per-child": 1000,
        "implementation": "prefork",
    }
    assert document["worker_stats"]["celery@worker-2"]["pool"]["max-tasks-per-child"] is None
    task = document["queue_details"]["active"]["celery@worker-1"][0]
    assert task["args"] == ["eval-456", 3, 2.5, [1, "x"], {"nested": True}]
    assert type(task["args"][1]) is int
    assert task["kwargs"] == {"language": "python", "attempt": 1}
    assert task["time_start"] == 1_699_999_990.123
    assert document["observed_at"] == 1_700_000_000.25
    assert document["age"] == 1.5
    assert document["queues"] == {
        "celery": {"messages": 45, "consumers": None},
        "priority": {"messages": 0, "consumers": 2},
    }


def test_proto_round_trip_is_lossless() -> None:
    msg = full_status_proto()
    status = CeleryStatus.from_proto(msg)
    assert status.to_proto() == msg
    assert CeleryStatus.from_proto(status.to_proto()) == status


def test_dict_round_trip_is_lossless() -> None:
    status = CeleryStatus.from_proto(full_status_proto())
    assert CeleryStatus.from_dict(status.to_dict()) == status
    # And through real JSON text, as the bridge serves it.
    assert CeleryStatus.from_dict(json.loads(json.dumps(status.to_dict()))) == status


def test_disabled_round_trips() -> None:
    status = CeleryStatus.from_proto(disabled_status_proto())
    assert not status.enabled
    assert CeleryStatus.from_dict(status.to_dict()) == status
    assert status.to_proto() == disabled_status_proto()


def test_tasks_know_their_worker_and_state() -> None:
    status = CeleryStatus.from_proto(full_status_proto())
    located = {(t.id, t.worker, t.state) for t in status.tasks()}
    assert located == {
        ("task-123", "celery@worker-1", TaskState.ACTIVE),
        ("task-124", "celery@worker-1", TaskState.SCHEDULED),
        ("task-125", "celery@worker-2", TaskState.RESERVED),
    }


def test_position_fills_worker_and_state_left_unset_by_the_server() -> None:
    msg = pb.CeleryStatus()
    msg.queue_details.scheduled["celery@w"].tasks.append(pb.Task(id="t"))
    (task,) = CeleryStatus.from_proto(msg).tasks()
    assert (task.worker, task.state) == ("celery@w", TaskState.SCHEDULED)


def test_seed_minimal_document_is_readable() -> None:
    seed = {
        "enabled": True,
        "connected": True,
        "workers": 1,
        "broker_url": "redis://celery-redis:6379/0",
        "active_tasks": 1,
        "scheduled_tasks": 0,
        "registered_tasks": ["tasks.evaluate_code"],
        "worker_stats": {
            "celery@w1": {
                "total": 5,
                "pool": {"max-concurrency": 4, "processes": [1, 2], "max-tasks-per-child": None},
            }
        },
        "queue_details": {
            "active": {
                "celery@w1": [
                    {"id": "t", "name": "tasks.evaluate_code", "args": ["e"], "time_start": 1.5}
                ]
            },
            "scheduled": {},
        },
    }
    status = CeleryStatus.from_dict(seed)
    assert status.worker_stats["celery@w1"].pool == Pool(max_concurrency=4, processes=(1, 2))
    (task,) = status.tasks()
    assert task == Task(
        id="t",
        name="tasks.evaluate_code",
        args=("e",),
        time_start=1.5,
        worker="celery@w1",
        state=TaskState.ACTIVE,
    )
    assert status.observed_at is None and status.inspection.method is None


def test_models_are_frozen() -> None:
    stats = WorkerStats(hostname="w")
    with pytest.raises(AttributeError):
        stats.total = 3  # type: ignore[misc]


def test_enums_map_to_proto_and_back() -> None:
    for state in TaskState:
        assert TaskState.from_proto(state.to_proto()) is state
    assert TaskState.from_proto(pb.TASK_STATE_UNSPECIFIED) is None
    for view in StatusView:
        assert StatusView.from_proto(view.to_proto()) is view
    assert StatusView.from_proto(pb.STATUS_VIEW_UNSPECIFIED) is StatusView.FULL
    for method in InspectionMethod:
        assert InspectionMethod.from_proto(method.to_proto()) is method


def test_whole_numbers_come_back_as_int_but_huge_ones_stay_float() -> None:
    values = _values.list_to_list_value([7, 7.5, 2.0**60, True, None])
    assert _values.list_value_to_list(values) == [7, 7.5, 2.0**60, True, None]
    converted = _values.list_value_to_list(values)
    assert type(converted[0]) is int and type(converted[2]) is float
    assert type(converted[3]) is bool


def test_non_json_arguments_are_sent_as_repr() -> None:
    values = _values.list_to_list_value([b"raw", math.inf, (1, 2), object])
    out = _values.list_value_to_list(values)
    assert out[0] == "b'raw'" and out[1] == "inf" and out[2] == [1, 2]
    assert isinstance(out[3], str)


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_epoch_round_trips_through_timestamp(epoch: float) -> None:
    back = _values.timestamp_to_epoch(_values.epoch_to_timestamp(epoch))
    assert abs(back - epoch) <= 1e-6


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_seconds_round_trip_through_duration(seconds: float) -> None:
    duration = _values.seconds_to_duration(seconds)
    assert duration.seconds * duration.nanos >= 0  # the two never disagree in sign
    assert abs(_values.duration_to_seconds(duration) - seconds) <= 1e-6
