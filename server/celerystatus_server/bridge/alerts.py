"""The bridge's alert stream: one WatchAlerts per bridge process, for metrics and WebSockets.

Alerts are the same for every caller (they carry no task arguments), so one
stream serves all. It follows the SDK's watch (which resumes after any gap);
a backend from before alerts existed answers UNIMPLEMENTED, and the hub then
stays quiet instead of asking again forever.
"""

from __future__ import annotations

import logging

from celerystatus import CeleryStatusError, Unimplemented
from celerystatus.alerts import AlertUpdate

from .hub import EncodedStatus, FrameHub
from .upstream import Upstream

__all__ = ["AlertHub"]

log = logging.getLogger(__name__)


class AlertHub(FrameHub):
    _task_name = "celery-status-alert-hub"

    def __init__(self, upstream: Upstream) -> None:
        super().__init__()
        self._upstream = upstream
        #: The latest message, as a model (its WebSocket frame is what subscriptions get).
        self.latest: AlertUpdate | None = None
        #: True once the backend said it has no alerts (an older server).
        self.unsupported = False

    def _publish(self, update: AlertUpdate) -> None:
        self.latest = update
        self._offer(EncodedStatus.of(update.to_dict()))

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
