"""Runs the alert engine beside the collector, in the server's event loop.

Follows the snapshot store's change notification (as WatchStatus does) and a
timer (so `for` durations and StatusStale advance without new snapshots),
evaluates in a worker thread (rules and the state file stay off the loop),
and publishes an immutable :class:`AlertBoard` that ListAlerts, WatchAlerts
and the notifier read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from celerystatus.v1 import alerts_pb2 as apb
from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.values import epoch_to_timestamp

from ..snapshot import SnapshotStore
from .engine import AlertEngine, Evaluation
from .model import Alert, AlertState
from .notify import Notifier
from .state import StateFile

__all__ = ["AlertBoard", "AlertRunner"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertBoard:
    """The alerts after one evaluation that changed something."""

    version: int
    alerts: tuple[Alert, ...] = ()
    changed: tuple[Alert, ...] = ()
    evaluated_at: float | None = None
    receivers: tuple[apb.ReceiverStats, ...] = field(default_factory=tuple)

    def selected(self, states: set[AlertState]) -> list[Alert]:
        return [a for a in self.alerts if not states or a.state in states]

    def list_response(self, states: set[AlertState]) -> apb.ListAlertsResponse:
        response = apb.ListAlertsResponse(
            alerts=[a.to_proto() for a in self.selected(states)], receivers=list(self.receivers)
        )
        if self.evaluated_at is not None:
            response.evaluated_at.CopyFrom(epoch_to_timestamp(self.evaluated_at))
        return response

    def watch_response(self, states: set[AlertState], previous: dict[str, AlertState]) -> apb.WatchAlertsResponse:
        """The set, and what changed since the set described by ``previous`` (fingerprint -> state)."""
        selected = self.selected(states)
        response = apb.WatchAlertsResponse(
            alerts=[a.to_proto() for a in selected],
            changed=[a.to_proto() for a in selected if previous.get(a.fingerprint) is not a.state],
            receivers=list(self.receivers),
        )
        if self.evaluated_at is not None:
            response.evaluated_at.CopyFrom(epoch_to_timestamp(self.evaluated_at))
        return response


class AlertRunner:
    def __init__(
        self,
        store: SnapshotStore,
        engine: AlertEngine,
        *,
        notifier: Notifier | None = None,
        state: StateFile | None = None,
        interval: float = 2.0,
    ) -> None:
        self.store = store
        self.engine = engine
        self.notifier = notifier or Notifier(())
        self.state = state
        self.interval = interval
        self._board = AlertBoard(0)
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        #: Evaluations run so far (tests wait on it).
        self.evaluations = 0

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def board(self) -> AlertBoard:
        return self._board

    async def start(self) -> None:
        if self.state is not None:
            saved = await asyncio.to_thread(self.state.load)
            if saved:
                restored = self.engine.load_state(saved)
                log.info("restored %d alerts from %s", restored, self.state.path)
        self.notifier.start()
        await self._publish(self.engine.alerts(), [], force=True)
        self._task = asyncio.create_task(self._run(), name="celery-status-alerts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self.notifier.stop)
        async with self._changed:
            self._changed.notify_all()

    async def _run(self) -> None:
        seen = 0
        while True:
            await self.store.wait_newer(seen, self.interval)
            snap = self.store.latest()
            fresh = snap.version != seen
            seen = snap.version
            if snap.version == 0 or (snap.status.enabled and snap.status.inspection.round == 0):
                continue  # no inspection round yet: nothing is known, not even the broker's state
            try:
                evaluation, alerts = await asyncio.to_thread(self._evaluate, snap.status, fresh)
                await self._publish(alerts, evaluation.changed, force=evaluation.any)
            except Exception:  # the next snapshot gets another chance; the loop must not die
                log.exception("alert evaluation failed")

    def _evaluate(self, status: pb.CeleryStatus, fresh: bool) -> tuple[Evaluation, list[Alert]]:
        evaluation = self.engine.evaluate(status, observe=fresh)
        alerts = self.engine.alerts()
        self.evaluations += 1
        if evaluation.any and self.state is not None:
            self.state.save(self.engine.export_state())
        self.notifier.handle(evaluation, alerts)
        return evaluation, alerts

    async def _publish(self, alerts: list[Alert], changed: list[Alert], *, force: bool) -> None:
        receivers = tuple(self.notifier.stats())
        board = self._board
        if not force and receivers == board.receivers:
            # Only the evaluation time moved; no message for watchers.
            self._board = AlertBoard(board.version, board.alerts, board.changed, self.engine.evaluated_at, receivers)
            return
        self._board = AlertBoard(
            board.version + 1, tuple(alerts), tuple(changed), self.engine.evaluated_at, receivers
        )
        async with self._changed:
            self._changed.notify_all()

    async def wait_newer(self, version: int, timeout: float | None = None) -> AlertBoard | None:
        async def newer() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: self._board.version > version or self._task is None)

        try:
            await asyncio.wait_for(newer(), timeout)
        except asyncio.TimeoutError:
            return None
        return self._board if self._board.version > version else None
