"""The asyncio client.  Only I/O lives here; see ``celerystatus._base``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tenacity import AsyncRetrying

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

__all__ = ["AsyncCeleryStatusClient"]


_T = TypeVar("_T")

class AsyncCeleryStatusClient(BaseClient):
    """Asyncio client of the celery-status gRPC service.

    ::

        async with AsyncCeleryStatusClient("127.0.0.1:50051") as client:
            status = await client.get_status()
            async for status in client.watch_status(min_interval=5):
                ...

    Same arguments, methods and errors as
    :class:`~celerystatus.CeleryStatusClient`.
    """

    def _connect(self) -> None:
        if self._credentials is None:
            self._channel = grpc.aio.insecure_channel(self.target, options=self._options)
        else:
            self._channel = grpc.aio.secure_channel(
                self.target, self._credentials, options=self._options
            )
        self._stub = CeleryStatusServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def close(self) -> None:
        """Close the channel; ends any watch stream of this client."""
        self._closed = True
        await self._channel.close()

    async def __aenter__(self) -> AsyncCeleryStatusClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _unary(
        self, method: Callable[..., Awaitable[Any]], request: Any, timeout: Seconds | None
    ) -> Any:
        kwargs = self._call_kwargs(timeout)

        async def attempt() -> Any:
            try:
                return await method(request, **kwargs)
            except grpc.RpcError as exc:
                raise from_rpc_error(exc) from exc

        return await AsyncRetrying(**self.retry_policy.tenacity_kwargs(unary=True))(attempt)

    async def get_status(
        self,
        max_age: Seconds | None = None,
        *,
        view: StatusView | str = StatusView.FULL,
        filter: TaskFilter | None = None,
        redact_args: bool = False,
        timeout: Seconds | None = None,
    ) -> CeleryStatus:
        """See :meth:`celerystatus.CeleryStatusClient.get_status`."""
        request = build_get_status_request(max_age, view, filter, redact_args)
        response: pb.GetStatusResponse = await self._unary(self._stub.GetStatus, request, timeout)
        return CeleryStatus.from_proto(response.status)

    async def watch_status(
        self,
        min_interval: Seconds | None = None,
        *,
        view: StatusView | str = StatusView.FULL,
        filter: TaskFilter | None = None,
        redact_args: bool = False,
        on_disconnect: OnDisconnect | None = None,
        retries: RetryPolicy | None = None,
    ) -> AsyncGenerator[CeleryStatus, None]:
        """See :meth:`celerystatus.CeleryStatusClient.watch_status`."""
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
        async with contextlib.aclosing(stream):  # cancels the call when the consumer stops
            async for status in stream:
                yield status

    async def _follow(
        self,
        open_call: Callable[[], Any],
        convert: Callable[[Any], _T],
        resumer: StreamResumer,
        *,
        observed_at: Callable[[_T], float | None] = lambda _: None,
        on_disconnect: OnDisconnect | None = None,
    ) -> AsyncGenerator[_T, None]:
        """The one resume loop of this client's server streams: reopen with backoff until closed."""
        while not self._closed:
            call = open_call()
            try:
                async for response in call:
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
            await asyncio.sleep(delay)

    async def check_health(self, service: str = "", *, timeout: Seconds | None = None) -> ServingStatus:
        """See :meth:`celerystatus.CeleryStatusClient.check_health`."""
        reply: health_pb2.HealthCheckResponse = await self._unary(
            self._health.Check, build_health_request(service), timeout
        )
        return ServingStatus.from_proto(reply.status)

    async def search_tasks(
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
        """See :meth:`celerystatus.CeleryStatusClient.search_tasks`."""
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
        response: pb.SearchTasksResponse = await self._unary(
            self._stub.SearchTasks, request, timeout
        )
        return TaskSearchResult.from_proto(response)

    async def find_task(
        self, eval_id: str, *, timeout: Seconds | None = None
    ) -> analysis.TaskLocation | None:
        """See :meth:`celerystatus.CeleryStatusClient.find_task`."""
        result = await self.search_tasks(eval_id=eval_id, timeout=timeout)
        return analysis.find_task(result.tasks, eval_id, matched=True)

    async def worker_health(
        self, *, timeout: Seconds | None = None, **thresholds: float
    ) -> dict[str, analysis.WorkerHealth]:
        """See :func:`celerystatus.analysis.worker_health`."""
        status = await self.get_status(view=StatusView.SUMMARY, timeout=timeout)
        return analysis.worker_health(status, **thresholds)

    async def scaling_advice(
        self,
        min_workers: int,
        max_workers: int,
        *,
        timeout: Seconds | None = None,
        **tuning: Any,
    ) -> analysis.ScalingAdvice:
        """See :func:`celerystatus.analysis.scaling_advice`."""
        status = await self.get_status(view=StatusView.SUMMARY, timeout=timeout)
        return analysis.scaling_advice(status, min_workers, max_workers, **tuning)

    async def get_history(
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
        """See :meth:`celerystatus.CeleryStatusClient.get_history`."""
        request = build_history_request(
            since, until, step, series, include_runs=include_runs, runs_limit=runs_limit
        )
        request.redact_args = redact_args
        response: pb.GetHistoryResponse = await self._unary(self._stub.GetHistory, request, timeout)
        return History.from_proto(response)

    async def get_trends(
        self,
        window: DurationLike | None = None,
        *,
        long_running_floor: DurationLike | None = None,
        timeout: Seconds | None = None,
    ) -> Trends:
        """See :meth:`celerystatus.CeleryStatusClient.get_trends`."""
        request = build_trends_request(window, long_running_floor)
        response: pb.GetTrendsResponse = await self._unary(self._stub.GetTrends, request, timeout)
        return Trends.from_proto(response)
    async def list_alerts(
        self, states: Sequence[AlertState | str] = (), *, timeout: Seconds | None = None
    ) -> AlertList:
        """See :meth:`celerystatus.CeleryStatusClient.list_alerts`."""
        request = build_list_alerts_request(states)
        response: apb.ListAlertsResponse = await self._unary(self._stub.ListAlerts, request, timeout)
        return AlertList.from_proto(response)

    async def watch_alerts(
        self,
        states: Sequence[AlertState | str] = (),
        *,
        on_disconnect: OnDisconnect | None = None,
        retries: RetryPolicy | None = None,
    ) -> AsyncGenerator[AlertUpdate, None]:
        """See :meth:`celerystatus.CeleryStatusClient.watch_alerts`."""
        request = build_watch_alerts_request(states)
        stream = self._follow(
            lambda: self._stub.WatchAlerts(request, **self._stream_kwargs()),
            AlertUpdate.from_proto,
            StreamResumer(retries or self.retry_policy),
            on_disconnect=on_disconnect,
        )
        async with contextlib.aclosing(stream):
            async for update in stream:
                yield update
