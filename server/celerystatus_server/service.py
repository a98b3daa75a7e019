"""CeleryStatusService on grpc.aio, answering from the collector's latest snapshot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Protocol

import grpc
from google.protobuf import duration_pb2

from celerystatus.v1 import alerts_pb2 as apb
from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc
from celerystatus.values import duration_to_seconds

from . import search
from .history.query import QueryError
from .history.reader import HistoryReader, HistoryUnavailable
from .security.principal import current_principal
from .security.redaction import Redactor
from .snapshot import Snapshot, SnapshotStore

if TYPE_CHECKING:
    from .alerts import AlertRunner
    from .config import Settings


class Refresher(Protocol):
    """Runs a fresh round on request: the collector, or a replica that asks its leader."""

    settings: Settings

    @property
    def enabled(self) -> bool: ...

    def request_refresh(self) -> None: ...

DEFAULT_SEARCH_LIMIT = 1000
MAX_SEARCH_LIMIT = 100_000
#: Longest a client may ask a stream to pause between messages.
MAX_MIN_INTERVAL = 3600.0


def _seconds(duration: duration_pb2.Duration) -> float:
    return duration_to_seconds(duration)


def render(
    snap: Snapshot,
    view: int = pb.STATUS_VIEW_FULL,
    flt: pb.TaskFilter | None = None,
    base: pb.CeleryStatus | None = None,
    history: pb.HistoryInfo | None = None,
) -> pb.CeleryStatus:
    """A copy of the snapshot (or of its variant ``base``) for one caller: age stamped, view and filter applied.

    The filter sees the snapshot's real arguments where ``search`` says so.
    """
    status = pb.CeleryStatus()
    status.CopyFrom(snap.status if base is None else base)
    if status.enabled:
        status.age.FromNanoseconds(int(snap.age() * 1e9))
    if history is not None:
        status.history.CopyFrom(history)
    if view == pb.STATUS_VIEW_SUMMARY:
        status.ClearField("queue_details")
    elif flt is not None and not search.is_empty(flt):
        search.filter_details(status, flt, real=snap.status)
    return status


class RedactedVariant:
    """The viewer's variant of the latest snapshot, computed once per snapshot version.

    Every viewer request of one version shares the same redacted message, so
    redaction costs one pass per inspection round, not one per request.
    """

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._version = -1
        self._status = pb.CeleryStatus()
        #: Redaction passes run so far (tests check it does not grow per request).
        self.computed = 0

    def of(self, snap: Snapshot) -> pb.CeleryStatus:
        if snap.version != self._version:
            self._status = self.redactor.redact_status(snap.status)
            self._version = snap.version
            self.computed += 1
        return self._status


class CeleryStatusServicer(pb_grpc.CeleryStatusServiceServicer):
    def __init__(
        self,
        store: SnapshotStore,
        collector: Refresher | None = None,
        *,
        redactor: Redactor | None = None,
        anonymous_sees_args: bool = False,
        history: HistoryReader | None = None,
        history_info: Callable[[], pb.HistoryInfo] | None = None,
        alerts: AlertRunner | None = None,
    ) -> None:
        self._store = store
        self._alerts = alerts
        self._collector = collector
        self._history = history
        #: Stamped into every status sent (the history store's state is not part of the snapshot).
        self._history_info = history_info
        self.redacted = RedactedVariant(redactor or Redactor())
        # Without the security interceptor in front (embedded use), callers are anonymous.
        self._anonymous_sees_args = anonymous_sees_args

    def _sees_args(self, redact_args: bool) -> bool:
        principal = current_principal.get()
        sees_args = self._anonymous_sees_args if principal is None else principal.sees_arguments
        return sees_args and not redact_args

    def _variant(self, snap: Snapshot, redact_args: bool) -> pb.CeleryStatus:
        """The snapshot as this caller may see it: full for admins, redacted otherwise."""
        if self._sees_args(redact_args):
            return snap.status
        return self.redacted.of(snap)

    def _render(self, snap: Snapshot, view: int, flt: pb.TaskFilter, base: pb.CeleryStatus) -> pb.CeleryStatus:
        history = self._history_info() if self._history_info is not None else None
        return render(snap, view, flt, base, history)

    async def _invalid(self, context: grpc.aio.ServicerContext, message: str) -> None:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)

    async def _check_view_and_filter(
        self, context: grpc.aio.ServicerContext, view: int, flt: pb.TaskFilter
    ) -> None:
        if view not in (pb.STATUS_VIEW_UNSPECIFIED, pb.STATUS_VIEW_SUMMARY, pb.STATUS_VIEW_FULL):
            await self._invalid(context, f"view: unknown value {view}")
        try:
            search.validate(flt)
        except search.FilterError as exc:
            await self._invalid(context, str(exc))

    async def GetStatus(
        self, request: pb.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetStatusResponse:
        await self._check_view_and_filter(context, request.view, request.filter)
        max_age = _seconds(request.max_age) if request.HasField("max_age") else 0.0
        if max_age < 0:
            await self._invalid(context, "max_age must not be negative")
        snap = self._store.latest()
        collector = self._collector
        if max_age > 0 and snap.age() > max_age and collector is not None and collector.enabled:
            collector.request_refresh()
            remaining = context.time_remaining()
            budget = collector.settings.round_deadline + collector.settings.min_refresh_interval + 0.5
            if remaining is not None:
                # Leave time to send the answer we already have if no fresher one
                # comes: a quarter of the deadline, at most 0.25 s, covers a busy loop.
                budget = min(budget, max(0.0, remaining - min(0.25, remaining / 4)))
            snap = await self._store.wait_newer(snap.version, budget) or self._store.latest()
        base = self._variant(snap, request.redact_args)
        return pb.GetStatusResponse(status=self._render(snap, request.view, request.filter, base))

    async def WatchStatus(
        self, request: pb.WatchStatusRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchStatusResponse]:
        await self._check_view_and_filter(context, request.view, request.filter)
        min_interval = _seconds(request.min_interval) if request.HasField("min_interval") else 0.0
        if not 0 <= min_interval <= MAX_MIN_INTERVAL:
            await self._invalid(context, f"min_interval must be between 0 and {MAX_MIN_INTERVAL:g} s")
        snap = self._store.latest()
        base = self._variant(snap, request.redact_args)
        yield pb.WatchStatusResponse(status=self._render(snap, request.view, request.filter, base))
        sent_at = time.monotonic()
        while True:
            newer = await self._store.wait_newer(snap.version)
            if newer is None:
                continue
            pause = sent_at + min_interval - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)  # rate limit requested by the client
            snap = self._store.latest()
            base = self._variant(snap, request.redact_args)
            yield pb.WatchStatusResponse(status=self._render(snap, request.view, request.filter, base))
            sent_at = time.monotonic()

    async def SearchTasks(
        self, request: pb.SearchTasksRequest, context: grpc.aio.ServicerContext
    ) -> pb.SearchTasksResponse:
        await self._check_view_and_filter(context, pb.STATUS_VIEW_UNSPECIFIED, request.filter)
        if not 0 <= request.limit <= MAX_SEARCH_LIMIT:
            await self._invalid(context, f"limit must be between 0 and {MAX_SEARCH_LIMIT}")
        limit = request.limit or DEFAULT_SEARCH_LIMIT
        snap = self._store.latest()
        response = pb.SearchTasksResponse(stale=snap.status.stale)
        response.observed_at.CopyFrom(snap.status.observed_at)
        variant = self._variant(snap, request.redact_args)
        if request.filter.arg and variant is not snap.status:
            response.search_limited = search.ARGUMENTS_WITHHELD
        # Tasks come from the caller's variant; search.matches decides which
        # criteria may look at the real arguments behind it.
        for task, real in search.iter_tasks(variant, snap.status):
            if search.matches(task, request.filter, real):
                if len(response.tasks) >= limit:
                    response.truncated = True
                    break
                response.tasks.append(task)
        return response

    async def _history_or_abort(self, context: grpc.aio.ServicerContext) -> HistoryReader:
        if self._history is None:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, "history is off on this server (--history-url none)"
            )
        assert self._history is not None
        return self._history

    async def GetHistory(
        self, request: pb.GetHistoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetHistoryResponse:
        reader = await self._history_or_abort(context)
        redactor = None if self._sees_args(request.redact_args) else self.redacted.redactor
        try:
            return await reader.history(request, redactor=redactor)
        except QueryError as exc:
            await self._invalid(context, str(exc))
        except HistoryUnavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        raise AssertionError("unreachable")

    async def GetTrends(
        self, request: pb.GetTrendsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTrendsResponse:
        reader = await self._history_or_abort(context)
        status = self._store.latest().status
        try:
            return await reader.trends(request, status if status.enabled else None)
        except QueryError as exc:
            await self._invalid(context, str(exc))
        except HistoryUnavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        raise AssertionError("unreachable")

    async def ListAlerts(
        self, request: apb.ListAlertsRequest, context: grpc.aio.ServicerContext
    ) -> apb.ListAlertsResponse:
        from .alerts.grpc import alert_states

        states = await alert_states(request.states, context)
        if self._alerts is None:
            return apb.ListAlertsResponse()
        return self._alerts.board.list_response(states)

    async def WatchAlerts(
        self, request: apb.WatchAlertsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[apb.WatchAlertsResponse]:
        from .alerts.grpc import alert_states, watch_alerts

        states = await alert_states(request.states, context)
        if self._alerts is None:
            yield apb.WatchAlertsResponse()
            return
        async for message in watch_alerts(self._alerts, states):
            yield message
