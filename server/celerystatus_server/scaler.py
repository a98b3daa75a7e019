"""KEDA's external scaler (``externalscaler.ExternalScaler``) on the status server.

Every answer comes from the collector's latest snapshot; nothing here talks
to the broker or the workers. The metric KEDA gets is the number of workers
the trigger wants (:func:`celerystatus.scaling.desired_workers`, the
computation ``scaling_advice`` and ``celery_workers_desired`` use) with a
target of 1 per replica, so the HorizontalPodAutoscaler's
``ceil(value / target)`` is exactly that number, and a default
``targetPerWorker`` that follows the live pool size never goes stale in the
HPA's spec.

Missing data never scales anything down. While the snapshot cannot be
trusted (broker unreachable, stale, too old, or Celery disabled) the scaler
holds: ``GetMetrics`` repeats the last good value of the same query, and
``IsActive`` repeats a last good *active*. With nothing good to repeat it
answers UNAVAILABLE, which KEDA treats as "change nothing" (or as its
``fallback``, when the ScaledObject has one); ``StreamIsActive`` sends nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from celerystatus.keda import externalscaler_pb2 as pb
from celerystatus.keda import externalscaler_pb2_grpc as pb_grpc
from celerystatus.models import CeleryStatus
from celerystatus.scaling import ClusterLoad

from .scaler_query import MetadataError, ScalerQuery
from .snapshot import Snapshot, SnapshotStore

__all__ = ["SERVICE_NAME", "ExternalScalerServicer", "Reading"]

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["ExternalScaler"].full_name
#: Held answers kept, one per distinct trigger metadata (oldest forgotten first).
MAX_HELD_QUERIES = 1024


@dataclass(frozen=True, slots=True)
class Reading:
    """One query's answer from one snapshot."""

    desired: int
    active: bool


class Untrusted(Exception):
    """The latest snapshot cannot be used; the message says why."""


class Unmeasured(Exception):
    """The trigger names queues whose depth this server does not measure."""


class LoadReader:
    """Cluster loads from the latest snapshot, converted once per snapshot."""

    def __init__(self, store: SnapshotStore, max_age: float) -> None:
        self.store = store
        self.max_age = max_age
        self._version = -1
        self._status = CeleryStatus()
        self._loads: dict[tuple[str, ...] | None, ClusterLoad] = {}

    @staticmethod
    def distrust(snap: Snapshot, max_age: float) -> str | None:
        """Why this snapshot cannot drive scaling, or None when it can."""
        status = snap.status
        if not status.enabled:
            return "Celery status is disabled on this server"
        if not status.HasField("observed_at"):
            return "no inspection round has finished yet"
        if not status.connected:
            return f"the broker is not reachable ({status.error or 'no detail'})"
        if status.stale:
            return f"the latest inspection round failed ({status.error or 'no detail'})"
        if snap.age() > max_age:
            return f"the latest snapshot is {snap.age():.1f}s old"
        return None

    def read(self, query: ScalerQuery, snap: Snapshot) -> Reading:
        reason = self.distrust(snap, self.max_age)
        if reason is not None:
            raise Untrusted(reason)
        if snap.version != self._version:
            self._status = CeleryStatus.from_proto(snap.status)
            self._loads = {}
            self._version = snap.version
        if query.queues:
            measured = {q.name for q in self._status.queues}
            missing = [name for name in query.queues if name not in measured]
            if missing:
                # Reading them as empty would keep a ScaledObject at zero forever.
                raise Unmeasured(
                    f"scalerMetadata.queues: {', '.join(missing)} not measured by this server: no live worker"
                    " consumes it and the server was not told about it (--queue NAME, or --app)"
                )
        load = self._loads.get(query.queues)
        if load is None:
            load = self._loads[query.queues] = ClusterLoad.of(self._status, query.queues)
        return Reading(query.desired(load), query.active(load))


class ExternalScalerServicer(pb_grpc.ExternalScalerServicer):
    def __init__(self, store: SnapshotStore, *, max_age: float) -> None:
        """``max_age``: a snapshot older than this is not trusted (the collector may be stuck)."""
        self._store = store
        self._reader = LoadReader(store, max_age)
        self._held: OrderedDict[ScalerQuery, Reading] = OrderedDict()

    @staticmethod
    async def _unmeasured(context: grpc.aio.ServicerContext, exc: Unmeasured) -> None:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))

    async def _query(self, ref: pb.ScaledObjectRef, context: grpc.aio.ServicerContext) -> ScalerQuery:
        try:
            return ScalerQuery.parse(ref.scalerMetadata)
        except MetadataError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise AssertionError("unreachable") from None

    def _read(self, query: ScalerQuery, snap: Snapshot | None = None) -> Reading:
        """A fresh reading, remembered as the query's last good one; Untrusted otherwise."""
        reading = self._reader.read(query, snap or self._store.latest())
        self._held[query] = reading
        self._held.move_to_end(query)
        while len(self._held) > MAX_HELD_QUERIES:
            self._held.popitem(last=False)
        return reading

    def held(self, query: ScalerQuery) -> Reading | None:
        """The last good reading of this query, if any."""
        return self._held.get(query)

    def _active(self, query: ScalerQuery, snap: Snapshot | None = None) -> tuple[bool | None, str]:
        """(answer, why-not): a fresh answer, a held *active*, or None."""
        try:
            return self._read(query, snap).active, ""
        except Untrusted as exc:
            held = self.held(query)
            return (True if held is not None and held.active else None), str(exc)

    async def IsActive(self, request: pb.ScaledObjectRef, context: grpc.aio.ServicerContext) -> pb.IsActiveResponse:
        query = await self._query(request, context)
        try:
            active, reason = self._active(query)
        except Unmeasured as exc:
            await self._unmeasured(context, exc)
            raise AssertionError("unreachable") from None
        if active is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"not deciding: {reason}")
        return pb.IsActiveResponse(result=bool(active))

    async def StreamIsActive(
        self, request: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.IsActiveResponse]:
        query = await self._query(request, context)
        snap = self._store.latest()
        sent: bool | None = None
        while True:
            try:
                active, _ = self._active(query, snap)
            except Unmeasured:
                # The polled methods report it; a worker consuming the queue may still come.
                active = None
            if active is not None and active != sent:
                yield pb.IsActiveResponse(result=active)
                sent = active
            # Woken by the collector's publish, like WatchStatus: a crossing is
            # sent as soon as the round that saw it is published.
            # With no round for a while, the timeout re-checks the snapshot's age.
            snap = await self._store.wait_newer(snap.version, timeout=self._reader.max_age) or self._store.latest()

    async def GetMetricSpec(
        self, request: pb.ScaledObjectRef, context: grpc.aio.ServicerContext
    ) -> pb.GetMetricSpecResponse:
        query = await self._query(request, context)
        spec = pb.MetricSpec(metricName=query.metric_name, targetSize=1, targetSizeFloat=1.0)
        return pb.GetMetricSpecResponse(metricSpecs=[spec])

    async def GetMetrics(
        self, request: pb.GetMetricsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetMetricsResponse:
        query = await self._query(request.scaledObjectRef, context)
        name = query.metric_name
        if request.metricName and request.metricName != name:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"metricName: this trigger's metric is {name!r}, not {request.metricName!r}",
            )
        try:
            reading = self._read(query)
        except Unmeasured as exc:
            await self._unmeasured(context, exc)
            raise AssertionError("unreachable") from None
        except Untrusted as exc:
            held = self.held(query)
            if held is None:
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"no value to hold: {exc}")
                raise AssertionError("unreachable") from None
            reading = held
        value = pb.MetricValue(metricName=name, metricValue=reading.desired, metricValueFloat=float(reading.desired))
        return pb.GetMetricsResponse(metricValues=[value])
