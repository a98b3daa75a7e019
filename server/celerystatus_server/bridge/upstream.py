"""The bridge's connection to CeleryStatusService: the SDK's async client, tuned for a proxy.

Every unary call carries a short deadline and is not retried: the bridge must
answer its HTTP clients within a second even when the status service is gone,
so it never waits for a channel to become ready.  Status streams, on the other
hand, must never stop: they resume after any error, for ever, and report each
gap so the bridge can tell its own clients.  Both behaviours are the SDK's
(``RetryPolicy``); the bridge only picks the numbers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from celerystatus import (
    AsyncCeleryStatusClient,
    CeleryStatus,
    CeleryStatusError,
    History,
    OnDisconnect,
    RetryPolicy,
    ServingStatus,
    StatusView,
    TaskFilter,
    TaskSearchResult,
    TLSConfig,
    Trends,
    Unimplemented,
)
from celerystatus.alerts import AlertList, AlertState, AlertUpdate
from celerystatus.timespec import DurationLike, TimeLike

__all__ = ["UNAVAILABLE_ERROR", "Timeouts", "Upstream", "unavailable_status"]

UNAVAILABLE_ERROR = "status service unavailable"

# Reconnection of the channel itself; gRPC's default backoff grows to two
# minutes, far too slow for a bridge whose whole job is that one connection.
CHANNEL_OPTIONS: dict[str, Any] = {
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.min_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 2000,
    "grpc.keepalive_time_ms": 30000,
    "grpc.keepalive_timeout_ms": 5000,
}


@dataclass(frozen=True)
class Timeouts:
    #: Deadline of a plain GetStatus / SearchTasks, answered from the server's
    #: snapshot; short so an unreachable backend is reported within a second.
    request: float = 0.8
    #: Deadline when ``max_age`` may make the server run an inspection round first.
    refresh: float = 5.0
    #: Deadline of the readiness check.
    ready: float = 0.5
    #: Longest pause between two attempts to reopen a status stream.
    reconnect_max: float = 2.0
    #: Deadline of GetHistory / GetTrends, which read a database.
    history: float = 20.0


def unavailable_status(error: str = UNAVAILABLE_ERROR) -> dict[str, Any]:
    """The status body used when the backend cannot be asked.

    Built by the SDK, so it carries exactly the keys of a real answer; scripts
    that index ``.workers`` keep working. ``enabled`` stays true: the bridge
    cannot know otherwise, and ``connected: false`` is what alerting on the
    seed's shape already looks at.
    """
    return CeleryStatus(enabled=True, connected=False, error=error).to_dict()


class Upstream:
    """The status service as the bridge sees it; owns the client (and its channel).

    Create it inside the event loop that will use it: ``grpc.aio`` channels
    bind to the loop that creates them.
    """

    def __init__(
        self,
        target: str,
        *,
        timeouts: Timeouts | None = None,
        token: str | None = None,
        tls: TLSConfig | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.target = target
        self.timeouts = timeouts or Timeouts()
        self.client = AsyncCeleryStatusClient(
            target,
            timeout=self.timeouts.request,
            token=token,
            tls=tls,
            retries=RetryPolicy.watch_forever(max_backoff=self.timeouts.reconnect_max),
            options={**CHANNEL_OPTIONS, **(options or {})},
        )

    async def close(self) -> None:
        await self.client.close()

    async def get_status(
        self, *, filter: TaskFilter, view: StatusView, max_age: float | None, redact_args: bool
    ) -> CeleryStatus:
        return await self.client.get_status(
            max_age,
            view=view,
            filter=filter,
            redact_args=redact_args,
            timeout=self.timeouts.refresh if max_age else self.timeouts.request,
        )

    async def search_tasks(self, *, filter: TaskFilter, limit: int, redact_args: bool) -> TaskSearchResult:
        return await self.client.search_tasks(filter, limit=limit, redact_args=redact_args)

    async def get_history(
        self,
        since: TimeLike,
        until: TimeLike,
        *,
        step: DurationLike | None,
        series: list[str],
        include_runs: bool,
        runs_limit: int,
        redact_args: bool,
    ) -> History:
        return await self.client.get_history(
            since,
            until,
            step=step,
            series=series,
            include_runs=include_runs,
            runs_limit=runs_limit,
            redact_args=redact_args,
            timeout=self.timeouts.history,
        )

    async def get_trends(self, window: DurationLike | None, *, long_running_floor: DurationLike | None) -> Trends:
        return await self.client.get_trends(
            window, long_running_floor=long_running_floor, timeout=self.timeouts.history
        )

    async def list_alerts(self, states: list[AlertState]) -> AlertList:
        return await self.client.list_alerts(states)

    def watch_alerts(self, *, on_disconnect: OnDisconnect) -> AsyncIterator[AlertUpdate]:
        """Every change of the alert set, for as long as the client is open; gaps go to ``on_disconnect``."""
        return self.client.watch_alerts(on_disconnect=on_disconnect)

    def watch(self, *, redact_args: bool, on_disconnect: OnDisconnect) -> AsyncIterator[CeleryStatus]:
        """Every snapshot, for as long as the client is open; gaps go to ``on_disconnect``."""
        return self.client.watch_status(view=StatusView.FULL, redact_args=redact_args, on_disconnect=on_disconnect)

    async def check_ready(self) -> tuple[bool, str]:
        """Whether the backend answers now, and how we know."""
        timeout = self.timeouts.ready
        try:
            serving = await self.client.check_health(timeout=timeout)
        except Unimplemented:
            pass  # a server without the health service still proves itself by answering
        except CeleryStatusError as error:
            return False, str(error)
        else:
            return serving is ServingStatus.SERVING, f"grpc.health.v1: {serving.value}"
        try:
            await self.client.get_status(view=StatusView.SUMMARY, redact_args=True, timeout=timeout)
        except CeleryStatusError as error:
            return False, str(error)
        return True, "GetStatus answered"
