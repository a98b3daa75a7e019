"""Who runs the once-per-deployment jobs (history writing, alert evaluation, ...).

Every server has a :class:`Leadership`: a server running alone always leads; a replica
(``--coordination-url``) leads while it holds the lease. A job either asks
:meth:`Leadership.is_leader` before each run, or registers a callback with
:meth:`Leadership.add_listener` to start when it becomes true and stop when it becomes false.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["Leadership", "LeadershipListener"]

log = logging.getLogger(__name__)

#: Called with True when this process becomes the leader and False when it stops leading.
LeadershipListener = Callable[[bool], None]


class Leadership:
    """The single-process case: always the leader. :class:`~.replica.Replica` overrides it."""

    def __init__(self) -> None:
        self._listeners: list[LeadershipListener] = []
        self._listeners_lock = threading.Lock()

    def is_leader(self) -> bool:
        return True

    def add_listener(self, listener: LeadershipListener) -> None:
        """Call *listener* now with the current state, then on every change (from a background thread).

        A listener must return quickly: it runs on the election thread, whose schedule keeps the
        lease. Start or stop your own thread or task from it.
        """
        with self._listeners_lock:
            self._listeners.append(listener)
        self._call(listener, self.is_leader())

    def remove_listener(self, listener: LeadershipListener) -> None:
        with self._listeners_lock:
            self._listeners = [known for known in self._listeners if known is not listener]

    def _notify(self, leader: bool) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            self._call(listener, leader)

    @staticmethod
    def _call(listener: LeadershipListener, leader: bool) -> None:
        try:
            listener(leader)
        except Exception:
            log.exception("leadership listener failed")
