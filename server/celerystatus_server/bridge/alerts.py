"""The bridge's alert stream: one WatchAlerts per bridge process, for metrics and WebSockets.

Alerts are the same for every caller (they carry no task arguments), so one
stream serves all. It follows the SDK's watch (which resumes after any gap);
a backend from before alerts existed answers UNIMPLEMENTED, and the hub then
stays quiet instead of asking again forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from celerystatus import CeleryStatusError, Unimplemented
from celerystatus.alerts import AlertUpdate

from .hub import EncodedStatus, Subscription
from .upstream import Upstream

__all__ = ["AlertHub"]

log = logging.getLogger(__name__)


class AlertHub:
    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        #: The latest message, as a model and as a WebSocket frame.
        self.latest: AlertUpdate | None = None
        self.frame: EncodedStatus | None = None
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
        self.frame = EncodedStatus.of(update.to_dict())
        for subscription in self._subscribers:
            subscription.offer(self.frame)

    def _gap(self, error: CeleryStatusError) -> None:
        self.stream_connected = False
        self.last_error = str(error)
        if isinstance(error, Unimplemented):
            raise error  # an older server does not grow alerts by being asked again

    async def _run(self) -> None:
        try:
            async for update in self._upstream.watch_alerts(on_disconnect=self._gap):
                self.stream_connected = True
                self.last_error = None
                self._publish(update)
        except Unimplemented:
            self.unsupported = True
            log.info("the status service has no alerts; alert stream off")
        self.stream_connected = False
