"""The viewer's variant of a snapshot: task arguments withheld.

Arguments are where secrets live (API keys, user data, code under evaluation);
viewers get each withheld value replaced by ``"***"`` in place, plus
``args_redacted: true``. Positions and keyword names stay, so ``args[0]``
means the same for every role. Two operator choices loosen that:

* an allow-list of ``fnmatch`` patterns (``eval-*``): an argument value that
  matches one is kept, so searching for an evaluation by id still works. The
  whole value must match (patterns are anchored), and only plain strings and
  numbers are candidates, never nested containers;
* ``allow_argsrepr``: Celery's argsrepr/kwargsrepr text, which producers can
  set to a masked form (``apply_async(argsrepr=...)``), is passed on.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from google.protobuf import struct_pb2

from celerystatus.v1 import celery_status_pb2 as pb

#: What a viewer sees in place of a withheld argument value.
WITHHELD = "***"
MAX_PATTERNS = 64
MAX_PATTERN_LENGTH = 256


def _scalar_text(value: struct_pb2.Value) -> str | None:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        return str(int(number)) if number.is_integer() else str(number)
    return None


class Redactor:
    def __init__(self, allow_patterns: Iterable[str] = (), allow_argsrepr: bool = False) -> None:
        patterns = tuple(p for p in (p.strip() for p in allow_patterns) if p)
        if len(patterns) > MAX_PATTERNS:
            raise ValueError(f"at most {MAX_PATTERNS} argument patterns")
        for pattern in patterns:
            if len(pattern) > MAX_PATTERN_LENGTH:
                raise ValueError(f"argument pattern longer than {MAX_PATTERN_LENGTH} characters")
            if pattern.strip("*?") == "":
                # "*" would publish every argument while looking like a restriction.
                raise ValueError(f"argument pattern {pattern!r} matches everything; use an admin token instead")
        self.allow_patterns = patterns
        self.allow_argsrepr = allow_argsrepr

    def allowed(self, value: struct_pb2.Value) -> bool:
        text = _scalar_text(value)
        return text is not None and any(fnmatchcase(text, p) for p in self.allow_patterns)

    def redact_task(self, task: pb.Task) -> None:
        """Withhold ``task``'s arguments in place: each value not allowed becomes :data:`WITHHELD`."""
        withheld = False
        for value in [*task.args.values, *task.kwargs.fields.values()]:
            if not self.allowed(value):
                value.Clear()
                value.string_value = WITHHELD
                withheld = True
        if not self.allow_argsrepr:
            withheld = withheld or bool(task.argsrepr or task.kwargsrepr)
            task.argsrepr = ""
            task.kwargsrepr = ""
        task.args_redacted = task.args_redacted or withheld

    def redact_status(self, status: pb.CeleryStatus) -> pb.CeleryStatus:
        """A redacted copy of ``status`` (the original is shared and must not change)."""
        copy = pb.CeleryStatus()
        copy.CopyFrom(status)
        for section in (copy.queue_details.active, copy.queue_details.scheduled, copy.queue_details.reserved):
            for task_list in section.values():
                for task in task_list.tasks:
                    self.redact_task(task)
        return copy
