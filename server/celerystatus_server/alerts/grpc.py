"""The gRPC side of alerts: request validation and the WatchAlerts stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import grpc

from celerystatus.v1 import alerts_pb2 as apb

from .model import AlertState
from .runner import AlertRunner

__all__ = ["alert_states", "watch_alerts"]


async def alert_states(values: Iterable[int], context: grpc.aio.ServicerContext) -> set[AlertState]:
    states: set[AlertState] = set()
    for value in values:
        state = AlertState.from_proto(value)
        if state is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"states: unknown alert state {value}")
            raise AssertionError("unreachable")
        states.add(state)
    return states


async def watch_alerts(runner: AlertRunner, states: set[AlertState]) -> AsyncIterator[apb.WatchAlertsResponse]:
    """The current set at once, then the set again after every change."""
    board = runner.board
    sent: dict[str, AlertState] = {}
    while True:
        yield board.watch_response(states, sent)
        sent = {a.fingerprint: a.state for a in board.selected(states)}
        newer = None
        while newer is None:
            if not runner.running:
                return  # the server is shutting down
            newer = await runner.wait_newer(board.version, timeout=30.0)
        board = newer
