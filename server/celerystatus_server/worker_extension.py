"""Optional worker module: the whole status of a worker in one remote-control reply.

Load it in workers with ``celery -A proj worker -I celerystatus_server.worker_extension``.
The collector then sends one command per round instead of six, and each worker
answers from memory in a single message. Workers without it keep working: the
collector learns which workers have it from a marker in their stock ``stats``
reply (:data:`STATS_MARKER`, added by a bootstep), so it never sends the
command to a worker that would log an error for an unknown command.

Imports nothing but Celery, so a worker needs none of the server's dependencies.
"""

from __future__ import annotations

import json
from typing import Any

from celery import bootsteps, signals
from celery.worker import control
from celery.worker import state as worker_state

COMMAND = "celery_status_snapshot"
VERSION = 1
#: Key in the worker's ``stats`` reply that says the command above is available.
STATS_MARKER = "celery_status_extension"


class _Marker(bootsteps.StartStopStep):  # type: ignore[misc]  # Celery is untyped
    """Adds ``{STATS_MARKER: VERSION}`` to the worker's ``stats`` (bootstep ``info``)."""

    label = "celery-status extension marker"

    def info(self, worker: Any) -> dict[str, Any]:
        return {STATS_MARKER: VERSION}


def _add_marker(sender: Any = None, **kwargs: Any) -> None:
    # -I modules are imported before worker_init, which comes before the
    # worker builds its blueprint from app.steps.
    app = getattr(sender, "app", None)
    if app is not None:
        app.steps["worker"].add(_Marker)


signals.worker_init.connect(_add_marker, weak=False)


def _info(request: Any) -> dict[str, Any]:
    """The request's info with its real arguments when they are plain JSON, else their reprs."""
    info: dict[str, Any] = request.info(safe=False)
    try:
        json.dumps([info.get("args"), info.get("kwargs")])
    except (TypeError, ValueError):
        # pickle/yaml-serialized tasks may carry anything; reprs always serialize.
        info = request.info(safe=True)
    # The producer's own rendering (it may mask secrets), shown to viewers if the operator allows.
    for key in ("argsrepr", "kwargsrepr"):
        text = getattr(request, f"_{key}", None)
        if isinstance(text, str):
            info[key] = text
    return info


def _scheduled(state: Any) -> list[dict[str, Any]]:
    entries = []
    for waiting in state.consumer.timer.schedule.queue:
        try:
            request = waiting.entry.args[0]
        except (IndexError, TypeError, AttributeError):
            continue
        if not hasattr(request, "info"):
            continue
        entries.append(
            {
                "eta": request.eta.isoformat() if getattr(request, "eta", None) else None,
                "priority": waiting.priority,
                "request": _info(request),
            }
        )
    return entries


def _reserved(state: Any) -> list[dict[str, Any]]:
    waiting = state.tset(worker_state.reserved_requests) - state.tset(worker_state.active_requests)
    return [_info(request) for request in waiting]


@control.inspect_command(name=COMMAND)  # type: ignore[untyped-decorator]  # Celery is untyped
def celery_status_snapshot(state: Any, **kwargs: Any) -> dict[str, Any]:
    """Everything celery-status needs from this worker, in one reply."""
    reply: dict[str, Any] = {
        "version": VERSION,
        "stats": control.stats(state),
        "active": [_info(request) for request in state.tset(worker_state.active_requests)],
        "scheduled": _scheduled(state),
        "reserved": _reserved(state),
    }
    # Registered tasks and queues rarely change; the collector asks for them only
    # when it has not seen this worker process before.
    if kwargs.get("static", True):
        reply["registered"] = control.registered(state)
        reply["active_queues"] = control.active_queues(state)
    return reply
