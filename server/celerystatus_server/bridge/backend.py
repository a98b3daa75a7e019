"""The bridge's side of the gRPC connection to CeleryStatusService.

Every call carries a deadline: the bridge must answer its HTTP clients within
a second even when the status service is gone, so it never waits for a
channel to become ready.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from celerystatus.models import CeleryStatus
from celerystatus.v1 import alerts_pb2 as apb
from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc

UNAVAILABLE_ERROR = "status service unavailable"

# Reconnection is driven by the channel; its default backoff grows to two
# minutes, far too slow for a bridge whose whole job is that one connection.
CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.keepalive_time_ms", 30000),
    ("grpc.keepalive_timeout_ms", 5000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
)

# Codes meaning "the backend did not answer", as opposed to "it answered no".
_UNREACHABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
    }
)


@dataclass(frozen=True)
class Timeouts:
    #: Deadline of a plain GetStatus / SearchTasks, answered from the server's
    #: snapshot; short so an unreachable backend is reported within a second.
    request: float = 0.8
    #: Deadline when ``max_age`` may make the server run an inspection round first.
    refresh: float = 5.0
    #: Deadline of the readiness check.
    ready: float = 0.5


def is_unreachable(error: grpc.RpcError) -> bool:
    return isinstance(error, grpc.aio.AioRpcError) and error.code() in _UNREACHABLE


def describe(error: grpc.RpcError) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        details = error.details() or ""
        return f"{error.code().name}: {details}".rstrip(": ")
    return str(error)


def unavailable_status(error: str = UNAVAILABLE_ERROR) -> dict[str, Any]:
    """The status body used when the backend cannot be asked.

    Built through the SDK from an empty message so it carries exactly the keys
    of a real answer; scripts that index ``.workers`` keep working. ``enabled``
    stays true: the bridge cannot know otherwise, and ``connected: false`` is
    what alerting on the seed's shape already looks at.
    """
    return CeleryStatus.from_proto(pb.CeleryStatus(enabled=True, connected=False, error=error)).to_dict()


class Backend:
    """Stubs over one channel; owns the channel's lifetime."""

    def __init__(
        self,
        target: str,
        *,
        timeouts: Timeouts | None = None,
        channel: grpc.aio.Channel | None = None,
        token: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        channel_options: tuple[tuple[str, Any], ...] = (),
    ) -> None:
        self.target = target
        self.timeouts = timeouts or Timeouts()
        self._owns_channel = channel is None
        options = CHANNEL_OPTIONS + channel_options
        if channel is None:
            channel = (
                grpc.aio.secure_channel(target, credentials, options=options)
                if credentials is not None
                else grpc.aio.insecure_channel(target, options=options)
            )
        self.channel = channel
        #: Sent with every call: the bridge's own identity towards the service.
        self.metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        self.status = pb_grpc.CeleryStatusServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)

    async def close(self) -> None:
        if self._owns_channel:
            await self.channel.close(grace=None)

    async def get_status(self, request: pb.GetStatusRequest) -> pb.CeleryStatus:
        has_max_age = request.HasField("max_age") and (request.max_age.seconds or request.max_age.nanos)
        timeout = self.timeouts.refresh if has_max_age else self.timeouts.request
        response: pb.GetStatusResponse = await self.status.GetStatus(
            request, timeout=timeout, metadata=self.metadata or None
        )
        return response.status

    async def search_tasks(self, request: pb.SearchTasksRequest) -> pb.SearchTasksResponse:
        reply: pb.SearchTasksResponse = await self.status.SearchTasks(
            request, timeout=self.timeouts.request, metadata=self.metadata or None
        )
        return reply

    async def list_alerts(self, request: apb.ListAlertsRequest) -> apb.ListAlertsResponse:
        reply: apb.ListAlertsResponse = await self.status.ListAlerts(
            request, timeout=self.timeouts.request, metadata=self.metadata or None
        )
        return reply

    async def check_ready(self) -> tuple[bool, str]:
        """Whether the backend answers now, and how we know."""
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(service=""), timeout=self.timeouts.ready)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                return False, describe(error)
        else:
            serving = reply.status == health_pb2.HealthCheckResponse.SERVING
            name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            return serving, f"grpc.health.v1: {name}"
        # A server without the health service still proves itself by answering.
        try:
            await self.status.GetStatus(
                pb.GetStatusRequest(view=pb.STATUS_VIEW_SUMMARY, redact_args=True),
                timeout=self.timeouts.ready,
                metadata=self.metadata or None,
            )
        except grpc.aio.AioRpcError as error:
            return False, describe(error)
        return True, "GetStatus answered"
