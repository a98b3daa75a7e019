"""CeleryStatusService on grpc.aio, answering from the collector's latest snapshot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

import grpc

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc

from . import search
from .security.principal import current_principal
from .security.redaction import Redactor
from .snapshot import Snapshot, SnapshotStore

if TYPE_CHECKING:
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


def _seconds(duration: object) -> float:
    return duration.ToNanoseconds() / 1e9  # type: ignore[attr-defined]


def render(
    snap: Snapshot,
    view: int = pb.STATUS_VIEW_FULL,
    flt: pb.TaskFilter | None = None,
    base: pb.CeleryStatus | None = None,
) -> pb.CeleryStatus:
    """A copy of the snapshot (or of its variant ``base``) for one caller: age stamped, view and filter applied."""
    status = pb.CeleryStatus()
    status.CopyFrom(snap.status if base is None else base)
    if status.enabled:
        status.age.FromNanoseconds(int(snap.age() * 1e9))
    if view == pb.STATUS_VIEW_SUMMARY:
        status.ClearField("queue_details")
    elif flt is not None and not search.is_empty(flt):
        search.filter_details(status, flt)
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
    ) -> None:
        self._store = store
        self._collector = collector
        self.redacted = RedactedVariant(redactor or Redactor())
        # Without the security interceptor in front (embedded use), callers are anonymous.
        self._anonymous_sees_args = anonymous_sees_args

    def _variant(self, snap: Snapshot, redact_args: bool) -> pb.CeleryStatus:
        """The snapshot as this caller may see it: full for admins, redacted otherwise."""
        principal = current_principal.get()
        sees_args = self._anonymous_sees_args if principal is None else principal.sees_arguments
        if sees_args and not redact_args:
            return snap.status
        return self.redacted.of(snap)

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
                # Leave time to send the answer we already have if no fresher one comes.
                budget = min(budget, max(0.0, remaining - 0.05))
            snap = await self._store.wait_newer(snap.version, budget) or self._store.latest()
        base = self._variant(snap, request.redact_args)
        return pb.GetStatusResponse(status=render(snap, request.view, request.filter, base))

    async def WatchStatus(
        self, request: pb.WatchStatusRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchStatusResponse]:
        await self._check_view_and_filter(context, request.view, request.filter)
        min_interval = _seconds(request.min_interval) if request.HasField("min_interval") else 0.0
        if not 0 <= min_interval <= MAX_MIN_INTERVAL:
            await self._invalid(context, f"min_interval must be between 0 and {MAX_MIN_INTERVAL:g} s")
        snap = self._store.latest()
        base = self._variant(snap, request.redact_args)
        yield pb.WatchStatusResponse(status=render(snap, request.view, request.filter, base))
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
            yield pb.WatchStatusResponse(status=render(snap, request.view, request.filter, base))
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
        # Searching the caller's variant: a viewer's argument filter matches only
        # the values a viewer may see, so a search cannot probe withheld ones.
        for task in search.iter_tasks(self._variant(snap, request.redact_args)):
            if search.matches(task, request.filter):
                if len(response.tasks) >= limit:
                    response.truncated = True
                    break
                response.tasks.append(task)
        return response
