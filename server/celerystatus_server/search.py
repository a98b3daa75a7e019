"""Task search over a snapshot: the filter behind GetStatus(filter) and SearchTasks.

How criteria match:

* ``task_name``: with a dot, the exact name (``tasks.evaluate_code``); without
  one, also the last dotted component of a name (``evaluate_code`` finds
  ``tasks.evaluate_code`` and ``evaluate_code``, not ``evaluate_code_v2``).
* ``eval_id``: a positional argument, or the keyword argument ``eval_id``,
  equal to it, compared on the *real* arguments even when the caller's view
  withholds them: the caller learns only that a value they already hold
  matched, and gets the task back with its arguments still withheld.
* ``arg``: any positional or keyword argument equal to it, compared on the
  values the caller may see.  It reaches every keyword argument (``api_key``,
  ``password``), so on withheld values it would be an oracle for secrets.
* ``worker``, ``task_id``: exact; ``states``: any of them.

Arguments compare as text: strings as they are, whole numbers without a
decimal point, booleans as ``true``/``false``.
"""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf import struct_pb2

from celerystatus.v1 import celery_status_pb2 as pb

MAX_FILTER_TEXT = 1024
#: Said in a response whose ``arg`` filter could only look at the values the caller may see.
ARGUMENTS_WITHHELD = "arguments withheld"


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


def name_matches(name: str, wanted: str) -> bool:
    if name == wanted:
        return True
    return "." not in wanted and name.rpartition(".")[2] == wanted


def matches(task: pb.Task, flt: pb.TaskFilter, real: pb.Task | None = None) -> bool:
    """Whether ``task`` (as the caller sees it) matches; ``real`` is the same
    task with its arguments intact, when they are withheld in ``task``."""
    if flt.task_name and not name_matches(task.name, flt.task_name):
        return False
    if flt.task_id and task.id != flt.task_id:
        return False
    if flt.worker and task.worker != flt.worker:
        return False
    if flt.states and task.state not in flt.states:
        return False
    if flt.eval_id:
        source = task if real is None else real
        in_args = flt.eval_id in _positional(source)
        in_kwargs = any(k == "eval_id" and v == flt.eval_id for k, v in _keyword(source))
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


def _real_tasks(real: pb.CeleryStatus | None, section: str, worker: str, count: int) -> list[pb.Task | None]:
    # The caller's variant is a copy of the snapshot with arguments masked in
    # place, so the same worker holds the same tasks in the same order.
    if real is not None:
        lists = getattr(real.queue_details, section)
        if worker in lists and len(lists[worker].tasks) == count:
            return list(lists[worker].tasks)
    return [None] * count


def iter_tasks(
    status: pb.CeleryStatus, real: pb.CeleryStatus | None = None
) -> Iterator[tuple[pb.Task, pb.Task | None]]:
    """Every task of ``status`` with its unmasked twin in ``real`` (None without one)."""
    for section, _state in _SECTIONS:
        lists = getattr(status.queue_details, section)
        for worker in sorted(lists):
            tasks = lists[worker].tasks
            yield from zip(tasks, _real_tasks(real, section, worker, len(tasks)), strict=True)


def filter_details(status: pb.CeleryStatus, flt: pb.TaskFilter, real: pb.CeleryStatus | None = None) -> None:
    """Keep only matching tasks in ``status.queue_details`` (in place, on a copy)."""
    for section, _state in _SECTIONS:
        lists = getattr(status.queue_details, section)
        for worker in list(lists):
            tasks = lists[worker].tasks
            twins = _real_tasks(real, section, worker, len(tasks))
            kept = [t for t, twin in zip(tasks, twins, strict=True) if matches(t, flt, twin)]
            del tasks[:]
            tasks.extend(kept)
