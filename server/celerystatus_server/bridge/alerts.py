"""The bridge's alert stream: one WatchAlerts per bridge process, for metrics and WebSockets.

Alerts are the same for every caller (they carry no task arguments), so one
stream serves all. A backend from before alerts existed answers UNIMPLEMENTED;
the hub then stays quiet instead of retrying forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

import grpc

from celerystatus.alerts import AlertUpdate
from celerystatus.v1 import alerts_pb2 as apb
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc

from .backend import describe
from .hub import Snapshot, Subscription

__all__ = ["AlertHub"]

log = logging.getLogger(__name__)


class AlertHub:
    def __init__(
        self,
        stub: pb_grpc.CeleryStatusServiceStub,
        *,
        metadata: tuple[tuple[str, str], ...] = (),
        backoff_initial: float = 0.1,
        backoff_max: float = 2.0,
    ) -> None:
        self._stub = stub
        self._metadata = metadata
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        #: The latest message, as a model and as a WebSocket frame.
        self.latest: AlertUpdate | None = None
        self.frame: Snapshot | None = None
        self.stream_connected = False
        #: True once the backend said it has no alerts (an older server).
        self.unsupported = False
        self.last_error: str | None = None

    def start(self) -> None:
        if self._task is None and not self._stopping:
            self._task = asyncio.create_task(self._run(), name="celery-status-alert-hub")

    async def stop(self) -> None:
        self._stopping = True
        for subscription in list(self._subscribers):
            subscription.close()
        self._subscribers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @contextlib.contextmanager
    def subscribe(self) -> Any:
        """A latest-only subscription to alert frames, primed with the current set."""
        subscription = Subscription()
        if self._stopping:
            subscription.close()
        else:
            if self.frame is not None:
                subscription.offer(self.frame)
            self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)

    def _publish(self, update: AlertUpdate) -> None:
        self.latest = update
        self.frame = Snapshot.of(update.to_dict())
        for subscription in self._subscribers:
            subscription.offer(self.frame)

    async def _run(self) -> None:
        delay = self._backoff_initial
        while not self._stopping:
            call = self._stub.WatchAlerts(apb.WatchAlertsRequest(), metadata=self._metadata or None)
            try:
                async for message in call:
                    self.stream_connected = True
                    self.last_error = None
                    delay = self._backoff_initial
                    self._publish(AlertUpdate.from_proto(message))
                self.last_error = "stream ended"
            except grpc.aio.AioRpcError as error:
                self.last_error = describe(error)
                if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                    self.unsupported = True
                    self.stream_connected = False
                    log.info("the status service has no alerts; alert stream off")
                    return
            except asyncio.CancelledError:
                call.cancel()
                raise
            self.stream_connected = False
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self._backoff_max)
