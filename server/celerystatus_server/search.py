"""Task search over a snapshot: the filter behind GetStatus(filter) and SearchTasks."""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf import struct_pb2

from celerystatus.v1 import celery_status_pb2 as pb

MAX_FILTER_TEXT = 1024


class FilterError(ValueError):
    """The filter cannot be applied (reported as INVALID_ARGUMENT)."""


def validate(flt: pb.TaskFilter) -> None:
    for name in ("task_name", "eval_id", "arg", "worker", "task_id"):
        if len(getattr(flt, name)) > MAX_FILTER_TEXT:
            raise FilterError(f"filter.{name} is longer than {MAX_FILTER_TEXT} characters")
    for state in flt.states:
        if state not in (pb.TASK_STATE_ACTIVE, pb.TASK_STATE_SCHEDULED, pb.TASK_STATE_RESERVED):
            raise FilterError(f"filter.states: unknown task state {state}")


def is_empty(flt: pb.TaskFilter) -> bool:
    return not (flt.task_name or flt.eval_id or flt.arg or flt.worker or flt.task_id or flt.states)


def _text(value: struct_pb2.Value) -> str | None:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        return str(int(number)) if number.is_integer() else str(number)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    return None


def _positional(task: pb.Task) -> Iterator[str]:
    for value in task.args.values:
        text = _text(value)
        if text is not None:
            yield text


def _keyword(task: pb.Task) -> Iterator[tuple[str, str]]:
    for key, value in task.kwargs.fields.items():
        text = _text(value)
        if text is not None:
            yield key, text


def matches(task: pb.Task, flt: pb.TaskFilter) -> bool:
    if flt.task_name and task.name != flt.task_name:
        return False
    if flt.task_id and task.id != flt.task_id:
        return False
    if flt.worker and task.worker != flt.worker:
        return False
    if flt.states and task.state not in flt.states:
        return False
    if flt.eval_id:
        in_args = flt.eval_id in _positional(task)
        in_kwargs = any(k == "eval_id" and v == flt.eval_id for k, v in _keyword(task))
        if not (in_args or in_kwargs):
            return False
    if flt.arg:
        if flt.arg not in _positional(task) and all(v != flt.arg for _, v in _keyword(task)):
            return False
    return True


_SECTIONS = (
    ("active", pb.TASK_STATE_ACTIVE),
    ("scheduled", pb.TASK_STATE_SCHEDULED),
    ("reserved", pb.TASK_STATE_RESERVED),
)


def iter_tasks(status: pb.CeleryStatus) -> Iterator[pb.Task]:
    for section, _state in _SECTIONS:
        lists = getattr(status.queue_details, section)
        for worker in sorted(lists):
            yield from lists[worker].tasks


def filter_details(status: pb.CeleryStatus, flt: pb.TaskFilter) -> None:
    """Keep only matching tasks in ``status.queue_details`` (in place, on a copy)."""
    for section, _state in _SECTIONS:
        lists = getattr(status.queue_details, section)
        for worker in list(lists):
            kept = [t for t in lists[worker].tasks if matches(t, flt)]
            del lists[worker].tasks[:]
            lists[worker].tasks.extend(kept)
