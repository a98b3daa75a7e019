"""Task-search query parameters and their translation to gRPC requests.

The bridge only validates and translates; matching is done by the server so
the JSON and gRPC clients see the same results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Query, Request

from celerystatus import StatusView, TaskFilter, TaskState

from .errors import BadRequest

StateName = Literal["active", "scheduled", "reserved"]
ViewName = Literal["summary", "full"]

# A max_age beyond a day cannot ask for anything the periodic refresh does
# not already give; the bound also keeps the value inside Duration's range.
MAX_AGE_LIMIT = 86400.0
SEARCH_LIMIT_MAX = 10000

FILTER_PARAMS = frozenset({"task_name", "eval_id", "arg", "worker", "state", "task_id"})
STATUS_PARAMS = FILTER_PARAMS | {"view", "max_age"}
SEARCH_PARAMS = FILTER_PARAMS | {"limit"}
# "_" is what browser libraries append to defeat caches; tolerating it keeps
# such dashboards working while typos in real parameters are still reported.
_IGNORED_PARAMS = frozenset({"_"})


def reject_unknown(request: Request, allowed: frozenset[str]) -> None:
    # A misspelt filter would otherwise silently return every task, which is
    # the worst answer to "where is my evaluation?".
    unknown = sorted(set(request.query_params) - allowed - _IGNORED_PARAMS)
    if unknown:
        raise BadRequest(
            f"unknown query parameter(s): {', '.join(unknown)}",
            detail={"unknown": unknown, "allowed": sorted(allowed)},
        )


def task_filter(
    task_name: Annotated[str, Query(
            max_length=512,
            description="Task name: exact with a dot (tasks.evaluate_code); without one, also the last "
            "dotted component (evaluate_code).",
        )] = "",
    eval_id: Annotated[
        str,
        Query(
            max_length=512,
            description="A positional argument equal to this value, or kwarg eval_id; matched on the real "
            "arguments even when they are withheld (the tasks come back still masked).",
        ),
    ] = "",
    arg: Annotated[
        str, Query(max_length=512, description="Any positional or keyword argument value the caller may see.")
    ] = "",
    worker: Annotated[str, Query(max_length=512, description="Worker hostname.")] = "",
    state: Annotated[
        list[StateName] | None,
        Query(description="Task state; repeat the parameter to include several."),
    ] = None,
    task_id: Annotated[str, Query(max_length=512, description="Exact task id.")] = "",
) -> TaskFilter:
    return TaskFilter(
        task_name=task_name,
        eval_id=eval_id,
        arg=arg,
        worker=worker,
        states=tuple(TaskState(s) for s in dict.fromkeys(state or ())),
        task_id=task_id,
    )


@dataclass(frozen=True)
class StatusParams:
    filter: TaskFilter
    view: StatusView
    max_age: float | None
