"""Which workers are alive right now, learned cheaply.

Waiting for replies from "every worker" costs the whole inspect timeout per round,
because nobody knows how many will answer. Workers announce themselves with
events (worker-online, a heartbeat every ~2 s, worker-offline on a clean stop),
so the collector can ask exactly the live set and stop as soon as all of them
have answered. A worker that misses a round is not waited for again until it
proves it is alive with a newer heartbeat, so one SIGKILLed worker costs at
most one slow round.

A worker that does not answer stays in the snapshot (with its last data) until
it has missed ``missed_rounds`` rounds in a row *and* sent no heartbeat for
:data:`HEARTBEAT_GRACE` heartbeat periods. One round missed because the worker
was busy never removes it; a SIGKILLed worker, silent on both counts, leaves
after K rounds once its last heartbeat is 1.5 periods old: within three
2-second intervals with the defaults (K = 2, heartbeats every 2 s).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .logconfig import StateLog

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_FREQ = 2.0
#: Heartbeat periods of silence that, with the missed rounds, make a worker gone.
HEARTBEAT_GRACE = 1.5


@dataclass
class WorkerSighting:
    hostname: str
    #: monotonic time of the last event or reply from this worker
    last_seen: float
    #: monotonic time of the last heartbeat/online event; None if it sends none
    last_event: float | None = None
    #: epoch seconds of the last heartbeat, as the worker stamped it
    heartbeat_at: float | None = None
    freq: float = DEFAULT_HEARTBEAT_FREQ
    loadavg: tuple[float, ...] = ()
    sw_ver: str = ""
    #: monotonic time of the last round this worker was asked in and did not answer
    missed_at: float | None = None
    #: Rounds in a row this worker has not answered (asked, or skipped because it missed one).
    missed_rounds: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class WorkerRegistry:
    """Thread-safe record of worker sightings from events and round replies."""

    def __init__(
        self,
        heartbeat_misses: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        missed_rounds: int = 2,
    ) -> None:
        self._lock = threading.Lock()
        self._workers: dict[str, WorkerSighting] = {}
        self._misses = heartbeat_misses
        self._missed_rounds = missed_rounds
        self._clock = clock
        self.events_seen = False
        #: bumped when a worker goes online, so per-worker caches can be dropped
        self.restarts: dict[str, int] = {}

    # -- inputs --------------------------------------------------------------
    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        hostname = event.get("hostname")
        if not hostname or not kind.startswith("worker-"):
            return
        now = self._clock()
        with self._lock:
            self.events_seen = True
            if kind == "worker-offline":
                self._workers.pop(hostname, None)
                return
            seen = self._workers.get(hostname)
            if seen is None:
                seen = self._workers[hostname] = WorkerSighting(hostname, now)
            if kind == "worker-online":
                self.restarts[hostname] = self.restarts.get(hostname, 0) + 1
            seen.last_seen = now
            seen.last_event = now
            seen.heartbeat_at = _float(event.get("timestamp"))
            seen.freq = _float(event.get("freq")) or DEFAULT_HEARTBEAT_FREQ
            seen.loadavg = tuple(float(x) for x in event.get("loadavg") or ())
            seen.sw_ver = str(event.get("sw_ver") or "")

    def on_round(self, asked: Iterable[str], answered: Iterable[str]) -> None:
        now = self._clock()
        answered = set(answered)
        with self._lock:
            for hostname in answered:
                seen = self._workers.get(hostname)
                if seen is None:
                    seen = self._workers[hostname] = WorkerSighting(hostname, now)
                seen.last_seen = now
                seen.missed_at = None
                seen.missed_rounds = 0
            asked = set(asked)
            for hostname, seen in self._workers.items():
                if hostname in answered:
                    continue
                if hostname in asked:
                    seen.missed_at = now
                    seen.missed_rounds += 1
                elif seen.missed_rounds:
                    # Not asked because it missed the last one: still a round without it.
                    seen.missed_rounds += 1

    def forget(self, hostname: str) -> None:
        with self._lock:
            self._workers.pop(hostname, None)

    # -- queries -------------------------------------------------------------
    def _alive(self, seen: WorkerSighting, now: float) -> bool:
        if seen.last_event is not None and now - seen.last_event <= seen.freq * self._misses:
            return True
        # Workers started without heartbeats are alive as long as they answer rounds.
        return seen.last_event is None and seen.missed_at is None

    def targets(self) -> list[str]:
        """Workers to ask in the next round, so that it can stop at the last expected reply."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            return sorted(
                s.hostname
                for s in self._workers.values()
                if self._alive(s, now)
                and (s.missed_at is None or (s.last_event is not None and s.last_event > s.missed_at))
            )

    def keeps(self, hostname: str) -> bool:
        """True if a worker that did not answer this round stays in the snapshot (see the module doc)."""
        now = self._clock()
        with self._lock:
            seen = self._workers.get(hostname)
            if seen is None:
                return False
            if seen.missed_rounds < self._missed_rounds:
                return True
            return seen.last_event is not None and now - seen.last_event <= seen.freq * HEARTBEAT_GRACE

    def sighting(self, hostname: str) -> WorkerSighting | None:
        with self._lock:
            seen = self._workers.get(hostname)
            return None if seen is None else WorkerSighting(**seen.__dict__)

    def known(self) -> list[str]:
        with self._lock:
            return sorted(self._workers)

    def _expire(self, now: float) -> None:
        for hostname, seen in list(self._workers.items()):
            limit = max(seen.freq * self._misses, 1.0) * 10
            if now - seen.last_seen > limit:
                del self._workers[hostname]


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


class EventMonitor(threading.Thread):
    """Feeds worker events into a :class:`WorkerRegistry`, reconnecting after failures."""

    def __init__(
        self,
        app: Any,
        registry: WorkerRegistry,
        connect: Callable[[], Any],
        errors: tuple[type[BaseException], ...],
        retry_interval: float = 1.0,
    ) -> None:
        super().__init__(name="celery-status-events", daemon=True)
        self._app = app
        self._registry = registry
        self._connect = connect
        self._errors = errors
        self._retry_interval = retry_interval
        self._stopping = threading.Event()
        self._receiver: Any = None
        self.connected = threading.Event()
        self._outage = StateLog(log, "worker event stream interrupted", level=logging.INFO)

    def _expected(self, exc: BaseException, conn: Any) -> bool:
        """A broker error (also the transport's own classes, e.g. redis-py's ConnectionError)?"""
        if isinstance(exc, self._errors):
            return True
        try:
            transport = tuple(conn.connection_errors) + tuple(conn.channel_errors) if conn is not None else ()
        except Exception:
            transport = ()
        return bool(transport) and isinstance(exc, transport)

    def stop(self) -> None:
        self._stopping.set()
        receiver = self._receiver
        if receiver is not None:
            receiver.should_stop = True

    def run(self) -> None:
        while not self._stopping.is_set():
            conn = None
            try:
                conn = self._connect()
                receiver = self._app.events.Receiver(
                    conn, handlers={"*": self._registry.on_event}, node_id=None
                )
                self._receiver = receiver
                if self._stopping.is_set():
                    break
                self.connected.set()
                self._outage.clear("reconnected")
                # wakeup=True asks every worker for a heartbeat now, so the live set
                # is known within milliseconds of (re)connecting.
                receiver.capture(limit=None, timeout=None, wakeup=True)
            except Exception as exc:
                if self._expected(exc, conn):
                    # A broker outage: logged once, not once per reconnect attempt.
                    self._outage.report(f"{type(exc).__name__}: {exc}")
                else:
                    log.exception("worker event stream failed")
            finally:
                self.connected.clear()
                self._receiver = None
                if conn is not None:
                    try:
                        conn.release()
                    except Exception:
                        pass
            self._stopping.wait(self._retry_interval)
