"""Task-search query parameters and their translation to gRPC requests.

The bridge only validates and translates; matching is done by the server so
the JSON and gRPC clients see the same results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Query, Request

from celerystatus._values import seconds_to_duration
from celerystatus.v1 import celery_status_pb2 as pb

from .errors import BadRequest

StateName = Literal["active", "scheduled", "reserved"]
ViewName = Literal["summary", "full"]

_STATES = {
    "active": pb.TASK_STATE_ACTIVE,
    "scheduled": pb.TASK_STATE_SCHEDULED,
    "reserved": pb.TASK_STATE_RESERVED,
}
_VIEWS = {"summary": pb.STATUS_VIEW_SUMMARY, "full": pb.STATUS_VIEW_FULL}

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


@dataclass(frozen=True)
class TaskFilterParams:
    task_name: str = ""
    eval_id: str = ""
    arg: str = ""
    worker: str = ""
    states: tuple[StateName, ...] = ()
    task_id: str = ""

    def to_proto(self) -> pb.TaskFilter:
        return pb.TaskFilter(
            task_name=self.task_name,
            eval_id=self.eval_id,
            arg=self.arg,
            worker=self.worker,
            states=[_STATES[state] for state in self.states],
            task_id=self.task_id,
        )


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
    task_name: Annotated[str, Query(max_length=512, description="Exact task name.")] = "",
    eval_id: Annotated[
        str,
        Query(
            max_length=512,
            description="A positional argument equal to this value, or kwarg eval_id.",
        ),
    ] = "",
    arg: Annotated[str, Query(max_length=512, description="Any positional or keyword argument value.")] = "",
    worker: Annotated[str, Query(max_length=512, description="Worker hostname.")] = "",
    state: Annotated[
        list[StateName] | None,
        Query(description="Task state; repeat the parameter to include several."),
    ] = None,
    task_id: Annotated[str, Query(max_length=512, description="Exact task id.")] = "",
) -> TaskFilterParams:
    return TaskFilterParams(
        task_name=task_name,
        eval_id=eval_id,
        arg=arg,
        worker=worker,
        states=tuple(dict.fromkeys(state or ())),
        task_id=task_id,
    )


@dataclass(frozen=True)
class StatusParams:
    filter: TaskFilterParams
    view: ViewName
    max_age: float | None

    @property
    def is_plain(self) -> bool:
        """No filter, full view, no freshness demand: the latest snapshot as is."""
        return self.filter == TaskFilterParams() and self.view == "full" and not self.max_age

    def to_proto(self) -> pb.GetStatusRequest:
        request = pb.GetStatusRequest(view=_VIEWS[self.view], filter=self.filter.to_proto())
        if self.max_age:
            request.max_age.CopyFrom(seconds_to_duration(self.max_age))
        return request
