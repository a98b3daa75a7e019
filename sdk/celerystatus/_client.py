"""The blocking client.  Only I/O lives here; see ``_base`` for the rest."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tenacity import Retrying

from celerystatus import analysis
from celerystatus._base import (
    BaseClient,
    OnDisconnect,
    RetryPolicy,
    Seconds,
    StreamResumer,
    build_get_status_request,
    build_health_request,
    build_list_alerts_request,
    build_search_request,
    build_watch_alerts_request,
    build_watch_request,
    make_filter,
)
from celerystatus.alerts import AlertList, AlertState, AlertUpdate
from celerystatus.exceptions import CeleryStatusError, Unavailable, from_rpc_error
from celerystatus.history import History, Trends, build_history_request, build_trends_request
from celerystatus.models import (
    CeleryStatus,
    ServingStatus,
    StatusView,
    TaskFilter,
    TaskSearchResult,
    TaskState,
)
from celerystatus.timespec import DurationLike, TimeLike
from celerystatus.v1 import alerts_pb2 as apb
from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1.celery_status_pb2_grpc import CeleryStatusServiceStub

__all__ = ["CeleryStatusClient"]


_T = TypeVar("_T")

class CeleryStatusClient(BaseClient):
    """Blocking client of the celery-status gRPC service.

    ::

        with CeleryStatusClient("127.0.0.1:50051") as client:
            status = client.get_status()
            print(status.workers, status.active_tasks)

    See :class:`~celerystatus._base.BaseClient` for the constructor's
    arguments.  Failed calls raise
    :class:`~celerystatus.exceptions.CeleryStatusError` subclasses.
    """

    def _connect(self) -> None:
        if self._credentials is None:
            self._channel = grpc.insecure_channel(self.target, options=self._options)
        else:
            self._channel = grpc.secure_channel(
                self.target, self._credentials, options=self._options
            )
        self._stub = CeleryStatusServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def close(self) -> None:
        """Close the channel; ends any watch stream of this client."""
        self._closed = True
        self._channel.close()

    def __enter__(self) -> CeleryStatusClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _unary(self, method: Callable[..., Any], request: Any, timeout: Seconds | None) -> Any:
        kwargs = self._call_kwargs(timeout)

        def attempt() -> Any:
            try:
                return method(request, **kwargs)
            except grpc.RpcError as exc:
                raise from_rpc_error(exc) from exc

        return Retrying(**self.retry_policy.tenacity_kwargs(unary=True))(attempt)

    def get_status(
        self,
        max_age: Seconds | None = None,
        *,
        view: StatusView | str = StatusView.FULL,
        filter: TaskFilter | None = None,
        redact_args: bool = False,
        timeout: Seconds | None = None,
    ) -> CeleryStatus:
        """The latest snapshot.

        ``max_age`` (seconds): when the server's snapshot is older, it takes
        a fresh one first.  ``view=StatusView.SUMMARY`` leaves out the tasks.
        ``filter`` restricts ``queue_details`` (counters stay cluster-wide).
        """
        request = build_get_status_request(max_age, view, filter, redact_args)
        response: pb.GetStatusResponse = self._unary(self._stub.GetStatus, request, timeout)
        return CeleryStatus.from_proto(response.status)

    def watch_status(
        self,
        min_interval: Seconds | None = None,
        *,
        view: StatusView | str = StatusView.FULL,
        filter: TaskFilter | None = None,
        redact_args: bool = False,
        on_disconnect: OnDisconnect | None = None,
        retries: RetryPolicy | None = None,
    ) -> Generator[CeleryStatus, None, None]:
        """The latest snapshot at once, then every new one, without end.

        ``min_interval`` (seconds) thins the stream out.  When the server
        goes away (restart, network failure) the stream reconnects with
        backoff and goes on; it raises
        :class:`~celerystatus.exceptions.Unavailable` only after failing for
        ``retries.reconnect_timeout`` seconds (which errors resume is
        ``retries.reconnect_on``).  ``on_disconnect(error)`` is called each
        time the stream breaks and is about to resume, before the backoff;
        with it set, the first snapshot after a gap is delivered even when it
        repeats the last one, so the consumer learns the stream is back.
        ``retries`` replaces the client's policy for this stream only.
        ``redact_args`` asks for the viewer's variant (arguments withheld)
        whatever the token's role.  The stream ends when the client is
        closed; stop it early by breaking out of the loop.
        """
        request = build_watch_request(min_interval, view, filter, redact_args)
        resumer = StreamResumer(
            retries or self.retry_policy, repeat_after_gap=on_disconnect is not None
        )
        stream = self._follow(
            lambda: self._stub.WatchStatus(request, **self._stream_kwargs()),
            lambda response: CeleryStatus.from_proto(response.status),
            resumer,
            observed_at=lambda status: status.observed_at,
            on_disconnect=on_disconnect,
        )
        with contextlib.closing(stream):  # cancels the call when the consumer stops
            yield from stream

    def _follow(
        self,
        open_call: Callable[[], Any],
        convert: Callable[[Any], _T],
        resumer: StreamResumer,
        *,
        observed_at: Callable[[_T], float | None] = lambda _: None,
        on_disconnect: OnDisconnect | None = None,
    ) -> Generator[_T, None, None]:
        """The one resume loop of this client's server streams: reopen with backoff until closed."""
        while not self._closed:
            call = open_call()
            try:
                for response in call:
                    item = convert(response)
                    if resumer.received(observed_at(item)):
                        yield item
                error: CeleryStatusError = Unavailable("the server ended the stream")
            except grpc.RpcError as exc:
                error = from_rpc_error(exc)
                error.__cause__ = exc
            finally:
                call.cancel()
            if self._closed:
                return
            delay = resumer.failed(error)
            if on_disconnect is not None:
                on_disconnect(error)
            time.sleep(delay)

    def check_health(self, service: str = "", *, timeout: Seconds | None = None) -> ServingStatus:
        """The server's answer to the standard gRPC health check for ``service``.

        ``""`` asks about the server as a whole.  Raises
        :class:`~celerystatus.exceptions.Unimplemented` when the server runs
        no health service.
        """
        reply: health_pb2.HealthCheckResponse = self._unary(
            self._health.Check, build_health_request(service), timeout
        )
        return ServingStatus.from_proto(reply.status)

    def search_tasks(
        self,
        filter: TaskFilter | None = None,
        *,
        limit: int = 0,
        task_name: str = "",
        eval_id: str = "",
        arg: str = "",
        worker: str = "",
        states: Sequence[TaskState | str] = (),
        task_id: str = "",
        redact_args: bool = False,
        timeout: Seconds | None = None,
    ) -> TaskSearchResult:
        """Tasks matching ``filter`` and/or the keyword criteria (ANDed).

        ``limit`` 0 means the server's default (1000); ``truncated`` on the
        result tells when more matched.  ``task_name`` without a dot also
        matches the last component of a dotted name (``evaluate_code`` finds
        ``tasks.evaluate_code``).  Argument criteria match the real arguments
        even when they are withheld from the caller; the tasks found keep
        their arguments withheld (masked in place).
        """
        merged = make_filter(
            filter,
            task_name=task_name,
            eval_id=eval_id,
            arg=arg,
            worker=worker,
            states=states,
            task_id=task_id,
        )
        request = build_search_request(merged, limit, redact_args)
        response: pb.SearchTasksResponse = self._unary(self._stub.SearchTasks, request, timeout)
        return TaskSearchResult.from_proto(response)

    def find_task(
        self, eval_id: str, *, timeout: Seconds | None = None
    ) -> analysis.TaskLocation | None:
        """Where the evaluation's task is (worker, state, for how long), or None."""
        result = self.search_tasks(eval_id=eval_id, timeout=timeout)
        return analysis.find_task(result.tasks, eval_id, matched=True)

    def worker_health(
        self, *, timeout: Seconds | None = None, **thresholds: float
    ) -> dict[str, analysis.WorkerHealth]:
        """Per-worker findings; see :func:`celerystatus.analysis.worker_health`."""
        status = self.get_status(view=StatusView.SUMMARY, timeout=timeout)
        return analysis.worker_health(status, **thresholds)

    def scaling_advice(
        self,
        min_workers: int,
        max_workers: int,
        *,
        timeout: Seconds | None = None,
        **tuning: Any,
    ) -> analysis.ScalingAdvice:
        """Scale up/down/hold; see :func:`celerystatus.analysis.scaling_advice`."""
        status = self.get_status(view=StatusView.SUMMARY, timeout=timeout)
        return analysis.scaling_advice(status, min_workers, max_workers, **tuning)

    def get_history(
        self,
        since: TimeLike = "1h",
        until: TimeLike = None,
        *,
        step: DurationLike | None = None,
        series: Sequence[str] | str = (),
        include_runs: bool = False,
        runs_limit: int = 0,
        redact_args: bool = False,
        timeout: Seconds | None = None,
    ) -> History:
        """Recorded samples over a range, one column per series.

        ``since``/``until``: ``"1h"`` (ago), ``"now"``, ISO 8601, epoch
        seconds or a datetime; ``step``: ``"1m"``, seconds or a timedelta
        (server default 1 minute; at most 10,000 points); ``series``: names
        such as ``workers``, ``queue:celery``, ``worker:<host>:active``,
        ``task:<name>``, ``queue:*`` (empty: the cluster series).
        ``include_runs`` adds the task runs that ended in the range
        (arguments withheld unless the caller may see them; ``redact_args``
        withholds them even from a caller who may, as a proxy for viewers does).
        """
        request = build_history_request(
            since, until, step, series, include_runs=include_runs, runs_limit=runs_limit
        )
        request.redact_args = redact_args
        response: pb.GetHistoryResponse = self._unary(self._stub.GetHistory, request, timeout)
        return History.from_proto(response)

    def get_trends(
        self,
        window: DurationLike | None = None,
        *,
        long_running_floor: DurationLike | None = None,
        timeout: Seconds | None = None,
    ) -> Trends:
        """Throughput, queue growth, saturation, runtimes and worker trouble over ``window``.

        ``long_running_floor``: running tasks younger than this are never
        flagged (server default 60 s).
        """
        request = build_trends_request(window, long_running_floor)
        response: pb.GetTrendsResponse = self._unary(self._stub.GetTrends, request, timeout)
        return Trends.from_proto(response)
    def list_alerts(
        self, states: Sequence[AlertState | str] = (), *, timeout: Seconds | None = None
    ) -> AlertList:
        """Firing and pending alerts, then recently resolved ones (``states`` narrows it)."""
        request = build_list_alerts_request(states)
        response: apb.ListAlertsResponse = self._unary(self._stub.ListAlerts, request, timeout)
        return AlertList.from_proto(response)

    def watch_alerts(
        self,
        states: Sequence[AlertState | str] = (),
        *,
        on_disconnect: OnDisconnect | None = None,
        retries: RetryPolicy | None = None,
    ) -> Generator[AlertUpdate, None, None]:
        """The current alerts at once, then the whole set again after every change.

        ``AlertUpdate.changed`` holds the alerts whose state changed.  After a
        reconnection the first message is the current set again.  The stream
        resumes as :meth:`watch_status` does (``on_disconnect``, ``retries``).
        """
        request = build_watch_alerts_request(states)
        stream = self._follow(
            lambda: self._stub.WatchAlerts(request, **self._stream_kwargs()),
            AlertUpdate.from_proto,
            StreamResumer(retries or self.retry_policy),
            on_disconnect=on_disconnect,
        )
        with contextlib.closing(stream):
            yield from stream
