"""The collector: one background loop per process that refreshes the cluster snapshot.

Every request is served from the latest snapshot, so N clients cost one
inspection round per refresh interval. A round is bounded in time whatever the
broker does (refuses, freezes, drops the connection): past its deadline the
round is abandoned, ``connected`` turns false and the last good data stays
available, marked stale.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kombu.connection import Connection

from celerystatus.v1 import celery_status_pb2 as pb

from . import assemble, broker
from .config import Settings, SettingsError, option
from .descriptors import stop_libuuid_descriptor_leak
from .liveness import DEFAULT_HEARTBEAT_FREQ, EventMonitor, WorkerRegistry
from .logconfig import StateLog
from .mailbox import Command, Mailbox, RoundReplies
from .snapshot import SnapshotStore
from .urls import mask_text, mask_url
from .worker_extension import COMMAND as EXTENSION_COMMAND
from .worker_extension import STATS_MARKER as EXTENSION_MARKER

log = logging.getLogger(__name__)

STOCK = ("stats", "active", "scheduled", "reserved")
#: Longest pause between a Celery worker's broker reconnection attempts (kombu's interval_max).
MAX_RECONNECT_BACKOFF = 30.0
STATIC = ("registered", "active_queues")


def load_app(settings: Settings) -> Any:
    """The user's Celery app (for its queues, key prefix, serializer), or a bare one."""
    from celery import Celery

    if settings.app:
        module_name, _, attr = settings.app.partition(":")
        try:
            module = importlib.import_module(module_name)
            app = getattr(module, attr or "app")
        except Exception as exc:  # the user's module may raise anything while it is imported
            detail = " ".join(str(exc).split())  # one line, whatever the exception says
            raise SettingsError(
                f"{option('app')}: cannot load {settings.app!r}: {type(exc).__name__}: {detail}"
            ) from None
        if callable(app) and not hasattr(app, "control"):
            app = app()
        return app
    return Celery("celery-status", broker=settings.broker_url, set_as_current=False)


@dataclass
class _Static:
    registered: list[str]
    active_queues: list[dict[str, Any]]
    restarts: int
    pid: int | None = None


@dataclass
class _RoundResult:
    replies: RoundReplies | None = None
    asked: list[str] = field(default_factory=list)
    queues: list[pb.QueueDepth] = field(default_factory=list)
    discovery: bool = False
    error: str | None = None
    #: set when the connection must not be reused (failure, or a round that timed out)
    drop_connection: bool = False
    conn: Connection | None = None


class Collector:
    """Runs inspection rounds and publishes snapshots into a :class:`SnapshotStore`."""

    def __init__(self, settings: Settings, store: SnapshotStore | None = None, app: Any = None) -> None:
        self.settings = settings
        self.store = store or SnapshotStore()
        self.broker_url = mask_url(settings.broker_url)
        if not settings.enabled:
            self.store.publish(
                assemble.disabled_status(
                    "Celery status is disabled on this server (CELERY_STATUS_ENABLED=false)"
                )
            )
            self.app = None
            return
        # One thread per round: see stop_libuuid_descriptor_leak.
        stop_libuuid_descriptor_leak()
        self.app = app if app is not None else load_app(settings)
        self.mailbox = Mailbox(self.app)
        self.registry = WorkerRegistry(settings.heartbeat_misses, missed_rounds=settings.missed_rounds)
        self._transport_options = dict(self.app.conf.broker_transport_options or {})
        # Only a Redis broker gets PINGed between rounds (AMQP has no cheap equivalent).
        self._redis_broker = broker.transport_name(settings.broker_url) == "redis"
        self._errors = broker.BROKER_ERRORS
        self._conn: Connection | None = None
        self._static: dict[str, _Static] = {}
        self._extension: dict[str, tuple[bool, int]] = {}
        self._reports: dict[str, assemble.WorkerReport] = {}
        self._last_good: pb.CeleryStatus | None = None
        self._last_discovery = float("-inf")
        self._rounds = 0
        self._failures = 0
        #: One warning when the broker becomes unreachable (and when the reason changes),
        #: a reminder every minute, one line when it is back: not one per failed round.
        self._outage = StateLog(log, "celery status rounds failing")
        #: Workers known when the current (or last) outage began, and until when
        #: they are carried over after it; see _carry_over.
        self._failing = False
        self._outage_began = 0.0
        self._before_outage: dict[str, assemble.WorkerReport] = {}
        self._recovery_deadline: float | None = None
        self._round_thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._monitor = EventMonitor(
            self.app,
            self.registry,
            connect=lambda: broker.open_connection(
                settings.broker_url, settings.inspect_timeout, self._transport_options
            ),
            errors=self._errors,
        )
        self.store.publish(
            assemble.failed_status(None, broker_url=self.broker_url, error="no inspection round yet")
        )

    # -- lifecycle -------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        self._monitor.start()
        self._thread = threading.Thread(target=self._loop, name="celery-status-collector", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if not self.enabled:
            return
        self._stopping.set()
        self._wake.set()
        self._monitor.stop()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._monitor.ident is not None:  # never started when start-up failed before the collector
            self._monitor.join(timeout)
        if self._conn is not None:
            broker.close_quietly(self._conn)
            self._conn = None

    def adopt(self, status: pb.CeleryStatus) -> None:
        """Know the workers of another collector's snapshot (a replica taking over from its leader).

        The first round asks them at once instead of waiting for their heartbeats; one that is
        gone costs that round its timeout, then is not asked again.
        """
        if status.enabled and status.worker_stats:
            self.registry.on_round((), status.worker_stats.keys())

    def request_refresh(self) -> None:
        """Run a round soon (not before ``min_refresh_interval`` after the previous one)."""
        self._wake.set()

    @property
    def rounds(self) -> int:
        return self._rounds

    # -- loop ------------------------------------------------------------------
    def _loop(self) -> None:
        # The event monitor's wake-up makes every worker send a heartbeat at once;
        # waiting briefly for them turns the first round into a fast targeted one
        # (no wait for heartbeats when adopt() already named the workers). The first round
        # never runs before the monitor is connected (starting both at once was seen to block it).
        self._last_discovery = time.monotonic()
        if self._monitor.connected.wait(self.settings.inspect_timeout):
            deadline = time.monotonic() + 0.5
            while not self.registry.targets() and time.monotonic() < deadline:
                if self._stopping.wait(0.02):
                    return
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self.run_round()
            except Exception:
                log.exception("inspection round failed unexpectedly")
            self._sleep_after(started)

    def _sleep_after(self, started: float) -> None:
        next_round = started + self.settings.refresh_interval
        probe_every = self.settings.broker_probe_interval
        probing = probe_every > 0 and self._redis_broker
        while not self._stopping.is_set():
            remaining = next_round - time.monotonic()
            if remaining <= 0:
                return
            if probing:
                remaining = min(remaining, probe_every)
            if not self._wake.wait(remaining):
                if probing and self._probe_broker():
                    return  # the broker is back: do not wait for the next scheduled round
                continue
            self._wake.clear()
            floor = started + self.settings.min_refresh_interval - time.monotonic()
            if floor > 0:
                self._stopping.wait(floor)
            return

    def _probe_broker(self) -> bool:
        """Check a Redis broker between rounds; True when a new round should run now.

        A broker that stops or freezes is reported within ``broker_probe_interval`` +
        ``inspect_timeout`` instead of at the next round, and one that comes back is
        inspected at once instead of after the rest of the interval.
        """
        conn = self._conn
        if conn is None:
            if self.store.latest().status.connected or (
                self._round_thread is not None and self._round_thread.is_alive()
            ):
                return False
            try:
                conn = broker.open_connection(
                    self.settings.broker_url, self.settings.inspect_timeout, self._transport_options
                )
            except self._errors:
                return False
            except Exception:
                log.exception("broker probe failed")
                return False
            self._conn = conn
            return True
        try:
            channel: Any = conn.default_channel  # kombu's Redis channel: .client is its redis-py client
            channel.client.ping()
        except self._errors + broker.broker_errors(conn) as exc:
            self._conn = None
            broker.close_quietly(conn)
            self._publish_failure(f"cannot reach broker: {mask_text(_describe(exc))}", time.monotonic())
        except Exception:
            log.exception("broker probe failed")
        return False

    def run_round(self) -> pb.CeleryStatus:
        """One bounded inspection round; publishes and returns the resulting status."""
        settings = self.settings
        started = time.monotonic()
        if self._round_thread is not None and self._round_thread.is_alive():
            return self._publish_failure(
                "broker unresponsive: the previous inspection round is still blocked", started
            )
        result = _RoundResult()
        conn, self._conn = self._conn, None
        thread = threading.Thread(
            target=self._inspect, args=(result, conn), name="celery-status-round", daemon=True
        )
        self._round_thread = thread
        thread.start()
        thread.join(settings.round_deadline)
        if thread.is_alive():
            # The round thread closes its own connection when it finally returns.
            result.drop_connection = True
            return self._publish_failure(
                f"broker did not answer within {settings.round_deadline:g} s", started
            )
        if result.error is not None:
            return self._publish_failure(result.error, started)
        if not result.drop_connection:
            self._conn = result.conn
        return self._publish_success(result, started)

    # -- one round (runs in its own thread) ------------------------------------
    def _inspect(self, result: _RoundResult, conn: Connection | None) -> None:
        settings = self.settings
        try:
            if conn is None:
                conn = broker.open_connection(
                    settings.broker_url, settings.inspect_timeout, self._transport_options
                )
            result.conn = conn
            now = time.monotonic()
            targets = self.registry.targets()
            # Without a working event stream, or with nothing known, only a broadcast
            # that waits the whole timeout can find workers.
            discovery = now - self._last_discovery >= settings.discovery_interval or (
                not targets and not self._monitor.connected.is_set()
            )
            result.discovery = discovery
            result.asked = targets
            commands = self._commands(targets, discovery)
            result.replies = self.mailbox.call(conn, commands, settings.inspect_timeout)
            if not result.replies.reusable:
                # A timed-out kombu drain leaves a blocking read pending on this
                # connection, which would swallow the next round's replies.
                result.drop_connection = True
            result.queues = broker.queue_depths(conn, self._queue_names(result.replies))
        except self._errors + broker.broker_errors(conn) as exc:
            result.error = f"cannot reach broker: {mask_text(_describe(exc))}"
            result.drop_connection = True
        except Exception as exc:
            log.exception("inspection round error")
            result.error = f"inspection failed: {mask_text(_describe(exc))}"
            result.drop_connection = True
        finally:
            if result.drop_connection and conn is not None:
                broker.close_quietly(conn)
                result.conn = None

    def _commands(self, targets: list[str], discovery: bool) -> list[Command]:
        if discovery:
            # Ask everybody and wait the whole timeout: finds workers that send no events.
            everyone = [Command(m, _args(m)) for m in STOCK + STATIC]
            return everyone
        # A worker is sent the extension's command only once its stock stats
        # carried the extension's marker: a stock worker logs an ERROR with a
        # traceback for every unknown command it receives.
        extension: list[str] = []
        stock: list[str] = []
        for host in targets:
            (extension if self._extension_state(host) else stock).append(host)
        need_static = [h for h in targets if not self._static_fresh(h)]
        commands: list[Command] = []
        ext_static = tuple(h for h in extension if h in need_static)
        ext_plain = tuple(h for h in extension if h not in need_static)
        if ext_static:
            commands.append(Command(EXTENSION_COMMAND, {"static": True}, ext_static, label="ext+static"))
        if ext_plain:
            commands.append(Command(EXTENSION_COMMAND, {"static": False}, ext_plain, label="ext"))
        if stock:
            commands += [Command(m, _args(m), tuple(stock)) for m in STOCK]
            static_stock = tuple(h for h in stock if h in need_static)
            if static_stock:
                commands += [Command(m, _args(m), static_stock) for m in STATIC]
        return commands

    def _extension_state(self, host: str) -> bool | None:
        known = self._extension.get(host)
        if known is None or known[1] != self.registry.restarts.get(host, 0):
            return None
        return known[0]

    def _static_fresh(self, host: str) -> bool:
        cached = self._static.get(host)
        return cached is not None and cached.restarts == self.registry.restarts.get(host, 0)

    def _queue_names(self, replies: RoundReplies) -> set[str]:
        names = set(self.settings.queues)
        assert self.app is not None  # rounds run only when enabled
        conf = self.app.conf
        if conf.task_default_queue:
            names.add(conf.task_default_queue)
        for queue in conf.task_queues or ():
            names.add(getattr(queue, "name", str(queue)))
        for cached in self._static.values():
            names.update(str(q.get("name")) for q in cached.active_queues if q.get("name"))
        for key in ("active_queues", "ext+static"):
            for reply in replies.replies.get(key, {}).values():
                queues = reply.get("active_queues") if isinstance(reply, dict) else reply
                if isinstance(queues, list):
                    names.update(str(q.get("name")) for q in queues if isinstance(q, dict) and q.get("name"))
        return {n for n in names if n}

    # -- publishing ----------------------------------------------------------------
    def _reports_from(self, replies: RoundReplies) -> dict[str, assemble.WorkerReport]:
        got = replies.replies
        reports: dict[str, assemble.WorkerReport] = {}
        hosts: set[str] = set()
        for key in got:
            hosts.update(got[key])
        for host in hosts:
            restarts = self.registry.restarts.get(host, 0)
            ext = got.get("ext+static", {}).get(host) or got.get("ext", {}).get(host)
            if isinstance(ext, dict) and "version" in ext:
                self._extension[host] = (True, restarts)
                data: Mapping[str, Any] = ext
                extension = True
            else:
                data = {m: got.get(m, {}).get(host) for m in STOCK + STATIC}
                extension = False
                stock_stats = data.get("stats")
                if isinstance(ext, dict) and "error" in ext:
                    self._extension[host] = (False, restarts)
                elif isinstance(stock_stats, dict):
                    self._extension[host] = (EXTENSION_MARKER in stock_stats, restarts)
            stats = data.get("stats")
            if not isinstance(stats, dict):
                continue  # no usable answer from this worker in this round
            if isinstance(data.get("registered"), list):
                self._static[host] = _Static(
                    registered=[str(t) for t in data["registered"]],
                    active_queues=[q for q in data.get("active_queues") or [] if isinstance(q, dict)],
                    restarts=restarts,
                    pid=stats.get("pid"),
                )
            cached = self._static.get(host)
            if cached is not None and cached.pid not in (None, stats.get("pid")):
                # Same name, new process: its tasks and queues may differ.
                self._static.pop(host, None)
                self._extension.pop(host, None)
            reports[host] = assemble.WorkerReport(
                hostname=host,
                stats=stats,
                active=_list(data.get("active")),
                scheduled=_list(data.get("scheduled")),
                reserved=_list(data.get("reserved")),
                registered=cached.registered if cached else [],
                active_queues=cached.active_queues if cached else [],
                extension=extension,
            )
        return reports

    def _publish_success(self, result: _RoundResult, started: float) -> pb.CeleryStatus:
        assert result.replies is not None
        if result.discovery:
            self._last_discovery = started
        reports = self._reports_from(result.replies)
        answered = set(reports)
        self.registry.on_round(result.asked, reports)
        for host, previous in self._reports.items():
            if host not in reports and self.registry.keeps(host):
                reports[host] = previous
        self._reports = dict(reports)
        carried = self._carry_over(reports, answered, started)
        sightings = {h: s for h in reports if (s := self.registry.sighting(h)) is not None}
        status = assemble.build_status(
            reports.values(),
            broker_url=self.broker_url,
            queues=result.queues,
            sightings=sightings,
            # Arguments are always collected: the service decides per caller
            # (security.redaction) who may see them.
            show_args=True,
        )
        self._rounds += 1
        methods = {r.extension for r in reports.values()}
        status.inspection.method = (
            pb.INSPECTION_METHOD_MIXED
            if len(methods) > 1
            else pb.INSPECTION_METHOD_EXTENSION
            if methods == {True}
            else pb.INSPECTION_METHOD_STOCK
        )
        if carried:
            status.stale = True
            status.message = (
                f"broker reachable again; {len(carried)} worker(s) from before the outage not heard from yet "
                "(their last known data is shown): "
                + ", ".join(sorted(carried))
            )
        self._finish(status, started)
        self._last_good = status
        self.store.publish(status)
        self._outage.clear("broker reachable again")
        return status

    def _carry_over(
        self, reports: dict[str, assemble.WorkerReport], answered: set[str], started: float
    ) -> list[str]:
        """After an outage, keep the workers known before it until they have had time to be heard.

        Workers reconnect on their own schedule after a broker restart (seconds,
        with Celery's retry backoff), and the first rounds after it would report
        ``connected: true, workers: 0`` while every worker is alive: a router or
        an alert would act on it. So the last known workers stay in the snapshot,
        which is marked stale, until each answers again or as long as a live
        worker can stay silent (``heartbeat_misses`` heartbeats) has passed since
        the broker came back, plus the outage's length up to 30 s (workers retry
        with backoff). A worker that really died then drops out as usual.
        """
        if self._failing:
            self._failing = False
            # Celery workers retry their broker connection with a growing backoff
            # (kombu: 2 s more per attempt, at most 30 s), so the longer the outage,
            # the longer a live worker may take to come back after it.
            outage = min(started - self._outage_began, MAX_RECONNECT_BACKOFF)
            self._recovery_deadline = started + outage + self.settings.heartbeat_misses * DEFAULT_HEARTBEAT_FREQ
            # Ask everybody next round: also finds workers that send no events.
            self._last_discovery = float("-inf")
        if self._recovery_deadline is None:
            return []
        unheard = [h for h in self._before_outage if h not in answered]
        if not unheard or started >= self._recovery_deadline:
            self._recovery_deadline = None
            self._before_outage = {}
            return []
        for host in unheard:
            reports.setdefault(host, self._before_outage[host])
        return unheard

    def _publish_failure(self, error: str, started: float) -> pb.CeleryStatus:
        self._rounds += 1
        self._failures += 1
        if not self._failing:
            self._failing = True
            self._outage_began = started
            # An outage during the recovery from another keeps the workers still owed.
            carried = self._before_outage if self._recovery_deadline is not None else {}
            self._before_outage = {**carried, **self._reports}
            self._recovery_deadline = None
        status = assemble.failed_status(self._last_good, broker_url=self.broker_url, error=error)
        self._finish(status, started)
        # The age of stale data keeps counting from when it was really observed.
        observed = self.store.latest().observed_monotonic if self._last_good is not None else None
        self.store.publish(status, observed_monotonic=observed)
        self._outage.report(error)
        return status

    def _finish(self, status: pb.CeleryStatus, started: float) -> None:
        info = status.inspection
        info.duration.FromNanoseconds(int((time.monotonic() - started) * 1e9))
        info.round = self._rounds
        info.errors = self._failures
        info.refresh_interval.FromNanoseconds(int(self.settings.refresh_interval * 1e9))


def _args(method: str) -> dict[str, Any]:
    # safe=True: argument reprs always serialize, whatever serializer the tasks use.
    return {"safe": True} if method == "active" else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _describe(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}" if text != exc.__class__.__name__ else text
