"""The blocking client.  Only I/O lives here; see ``_base`` for the rest."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from types import TracebackType
from typing import Any

import grpc
from tenacity import Retrying

from celerystatus import analysis
from celerystatus._base import (
    BaseClient,
    Seconds,
    StreamResumer,
    build_get_status_request,
    build_list_alerts_request,
    build_search_request,
    build_watch_alerts_request,
    build_watch_request,
    make_filter,
)
from celerystatus.alerts import AlertList, AlertState, AlertUpdate
from celerystatus.exceptions import CeleryStatusError, Unavailable, from_rpc_error
from celerystatus.models import (
    CeleryStatus,
    StatusView,
    TaskFilter,
    TaskSearchResult,
    TaskState,
)
from celerystatus.v1 import alerts_pb2 as apb
from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1.celery_status_pb2_grpc import CeleryStatusServiceStub

__all__ = ["CeleryStatusClient"]


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

    def close(self) -> None:
        """Close the channel; ends any watch stream of this client."""
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
        timeout: Seconds | None = None,
    ) -> CeleryStatus:
        """The latest snapshot.

        ``max_age`` (seconds): when the server's snapshot is older, it takes
        a fresh one first.  ``view=StatusView.SUMMARY`` leaves out the tasks.
        ``filter`` restricts ``queue_details`` (counters stay cluster-wide).
        """
        request = build_get_status_request(max_age, view, filter)
        response: pb.GetStatusResponse = self._unary(self._stub.GetStatus, request, timeout)
        return CeleryStatus.from_proto(response.status)

    def watch_status(
        self,
        min_interval: Seconds | None = None,
        *,
        view: StatusView | str = StatusView.FULL,
        filter: TaskFilter | None = None,
    ) -> Generator[CeleryStatus, None, None]:
        """The latest snapshot at once, then every new one, without end.

        ``min_interval`` (seconds) thins the stream out.  When the server
        goes away (restart, network failure) the stream reconnects with
        backoff and goes on; it raises
        :class:`~celerystatus.exceptions.Unavailable` only after failing for
        ``retries.reconnect_timeout`` seconds.  Stop by breaking out of the
        loop or closing the iterator.
        """
        request = build_watch_request(min_interval, view, filter)
        resumer = StreamResumer(self.retry_policy)
        while True:
            call = self._stub.WatchStatus(request, **self._stream_kwargs())
            try:
                for response in call:
                    status = CeleryStatus.from_proto(response.status)
                    if resumer.received(status.observed_at):
                        yield status
                error: CeleryStatusError = Unavailable("the server ended the stream")
            except grpc.RpcError as exc:
                error = from_rpc_error(exc)
                error.__cause__ = exc
            finally:
                call.cancel()
            time.sleep(resumer.failed(error))

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
        timeout: Seconds | None = None,
    ) -> TaskSearchResult:
        """Tasks matching ``filter`` and/or the keyword criteria (ANDed).

        ``limit`` 0 means the server's default (1000); ``truncated`` on the
        result tells when more matched.
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
        request = build_search_request(merged, limit)
        response: pb.SearchTasksResponse = self._unary(self._stub.SearchTasks, request, timeout)
        return TaskSearchResult.from_proto(response)

    def find_task(
        self, eval_id: str, *, timeout: Seconds | None = None
    ) -> analysis.TaskLocation | None:
        """Where the evaluation's task is (worker, state, for how long), or None."""
        result = self.search_tasks(eval_id=eval_id, timeout=timeout)
        return analysis.find_task(result.tasks, eval_id)

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

    def list_alerts(
        self, states: Sequence[AlertState | str] = (), *, timeout: Seconds | None = None
    ) -> AlertList:
        """Firing and pending alerts, then recently resolved ones (``states`` narrows it)."""
        request = build_list_alerts_request(states)
        response: apb.ListAlertsResponse = self._unary(self._stub.ListAlerts, request, timeout)
        return AlertList.from_proto(response)

    def watch_alerts(
        self, states: Sequence[AlertState | str] = ()
    ) -> Generator[AlertUpdate, None, None]:
        """The current alerts at once, then the whole set again after every change.

        ``AlertUpdate.changed`` holds the alerts whose state changed.  After a
        reconnection the first message is the current set again.
        """
        request = build_watch_alerts_request(states)
        resumer = StreamResumer(self.retry_policy)
        while True:
            call = self._stub.WatchAlerts(request, **self._stream_kwargs())
            try:
                for response in call:
                    resumer.received(None)
                    yield AlertUpdate.from_proto(response)
                error: CeleryStatusError = Unavailable("the server ended the stream")
            except grpc.RpcError as exc:
                error = from_rpc_error(exc)
                error.__cause__ = exc
            finally:
                call.cancel()
            time.sleep(resumer.failed(error))
