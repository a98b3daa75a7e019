"""One replica of a set: leads (collects and publishes), follows (serves what the leader published),
or, while the coordination store is unreachable, collects on its own (degraded).

Timeline, with ``ttl`` the lease (``--coordination-ttl``, default 2 refresh intervals):

- every ``ttl / 3`` the leader renews its lease; a follower tries to take it the moment the
  current one would expire (it learns when from the store), so a SIGKILLed leader is replaced
  within ``ttl`` of its last renewal;
- a leader that cannot renew stops its collector ``ttl / 6`` before its lease ends, and every
  publish is checked against the lease in the store (fencing), so a paused leader that wakes up
  after being replaced publishes nothing and steps down;
- a follower whose snapshot is older than 2 refresh intervals (the leader is gone, a new one is
  not elected yet) keeps serving it, marked ``stale``;
- a replica that has not reached the store for ``ttl`` starts its own collector (``degraded``)
  and takes part in the election again as soon as the store answers.

Each term of leadership gets a fresh :class:`~celerystatus_server.collector.Collector`
publishing into a private store; :meth:`Replica._relay` stamps, fences and forwards its
snapshots, so the collector itself knows nothing about replicas.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from celerystatus.v1 import celery_status_pb2 as pb

from .. import assemble
from ..collector import Collector, load_app
from ..config import Settings
from ..snapshot import Snapshot, SnapshotStore
from ..urls import mask_url
from .leadership import Leadership
from .store import CoordinationStore, Lease, StoreUnavailable, open_store

__all__ = ["Replica", "default_replica_name"]

log = logging.getLogger(__name__)

ROLE_NAMES = {
    pb.REPLICA_ROLE_LEADER: "leader",
    pb.REPLICA_ROLE_FOLLOWER: "follower",
    pb.REPLICA_ROLE_DEGRADED: "degraded",
}


def default_replica_name() -> str:
    # In Kubernetes the host name is the pod name.
    return f"{socket.gethostname()}-{os.getpid()}"[:48]


class Replica(Leadership):
    """Runs the election and the snapshot relay; serves through *store* (the process's SnapshotStore).

    Offers what the gRPC service needs of a collector (``settings``, ``enabled``,
    ``request_refresh``) and what once-per-deployment jobs need (:class:`Leadership`).
    """

    def __init__(
        self,
        settings: Settings,
        store: SnapshotStore,
        *,
        app: Any = None,
        coordination: CoordinationStore | None = None,
    ) -> None:
        super().__init__()
        assert settings.coordination_url, "a Replica needs --coordination-url"
        self.settings = settings
        self.store = store
        self.name = settings.replica_name or default_replica_name()
        self.ttl = settings.lease_ttl
        #: Renewal (leader) and election (follower) period.
        self.tick = self.ttl / 3
        #: A leader that has not renewed stops collecting this long before its lease ends.
        self.margin = self.ttl / 6
        # Each store call must come back well before the leader has to step down.
        timeout = min(1.0, self.margin)
        self._app = app if app is not None else load_app(settings)
        self.coordination = coordination or open_store(settings.coordination_url, settings.coordination_key, timeout)
        self._lock = threading.RLock()
        self._role: pb.ReplicaRole.ValueType = pb.REPLICA_ROLE_FOLLOWER
        self._lease: Lease | None = None
        self._lease_deadline = 0.0
        self._last_contact = time.monotonic()
        self._collector: Collector | None = None
        self._stopping = threading.Event()
        self._refresh = threading.Event()
        self._refresh_sent = float("-inf")
        self._threads: list[threading.Thread] = []
        self._last_received: tuple[int, int, int] | None = None
        self._stale_marked = -1
        #: Terms this replica has led (tests and benchmarks read it).
        self.terms = 0
        store.publish(
            assemble.failed_status(
                None, broker_url=mask_url(settings.broker_url), error="waiting for the first snapshot of the leader"
            )
        )

    # -- what the gRPC service asks of a collector -------------------------------
    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def request_refresh(self) -> None:
        """A fresh round, whoever runs the collector: ours, or the leader's through the store."""
        with self._lock:
            collector = self._collector
        if collector is not None:
            collector.request_refresh()
            return
        # Single flight: one request per floor interval from this replica; the leader's
        # collector merges requests from all replicas into one round.
        now = time.monotonic()
        if now - self._refresh_sent >= self.settings.min_refresh_interval:
            self._refresh_sent = now
            self._refresh.set()

    # -- Leadership ------------------------------------------------------------------
    def is_leader(self) -> bool:
        return self._role == pb.REPLICA_ROLE_LEADER

    @property
    def role(self) -> str:
        """``leader``, ``follower`` or ``degraded``."""
        return ROLE_NAMES[self._role]

    @property
    def collector(self) -> Collector | None:
        """The collector of the current term (leader or degraded), None for a follower."""
        return self._collector

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        for target, name in (
            (self._elect_loop, "celery-status-election"),
            (self._listen_loop, "celery-status-listen"),
            (self._refresh_loop, "celery-status-refresh"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._refresh.set()
        for thread in self._threads:
            thread.join(timeout)
        with self._lock:
            lease, self._lease = self._lease, None
            collector, self._collector = self._collector, None
            self._role = pb.REPLICA_ROLE_FOLLOWER
        if lease is not None:
            self._notify(False)  # once-per-deployment jobs stop before another replica starts them
        if collector is not None:
            collector.stop(timeout)
        if lease is not None:
            # Hand over now rather than after the TTL.
            try:
                self.coordination.release(lease)
            except StoreUnavailable:
                pass
        self.coordination.close()

    # -- the election ------------------------------------------------------------------
    def _elect_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                wait = self._elect_once()
            except Exception:
                log.exception("replica election step failed")
                wait = self.tick
            if self._role == pb.REPLICA_ROLE_FOLLOWER:
                wait = min(wait, self._mark_stale_if_old())
            self._stopping.wait(max(0.0, wait))

    def _elect_once(self) -> float:
        """One step of the election; returns how long to wait before the next."""
        now = time.monotonic()
        lease = self._lease
        if lease is not None:
            if now >= self._lease_deadline - self.margin:
                self._step_down("could not renew the lease in time")
                return 0.0
            try:
                renewed = self.coordination.renew(lease, self.ttl)
            except StoreUnavailable as exc:
                log.warning("replica %s: cannot renew the lease: %s", self.name, exc)
                return min(self.tick, max(0.0, self._lease_deadline - self.margin - time.monotonic()))
            if not renewed:
                self._step_down("the lease was taken over")
                return 0.0
            self._lease_deadline = now + self.ttl
            self._last_contact = now
            return self.tick
        try:
            attempt = self.coordination.acquire(self.name, self.ttl)
        except StoreUnavailable as exc:
            if now - self._last_contact >= self.ttl and self._role != pb.REPLICA_ROLE_DEGRADED:
                log.warning("replica %s: coordination store unreachable, collecting alone: %s", self.name, exc)
                self._become_degraded()
            return self.tick
        self._last_contact = now
        if attempt.lease is not None:
            self._become_leader(attempt.lease, now)
            return self.tick
        if self._role == pb.REPLICA_ROLE_DEGRADED:
            self._become_follower(f"the store is back and {attempt.leader} leads")
        # Try again the moment the current lease would end.
        return min(self.tick, attempt.expires_in + 0.005)

    def _become_leader(self, lease: Lease, since: float) -> None:
        with self._lock:
            self._lease = lease
            self._lease_deadline = since + self.ttl
            self._role = pb.REPLICA_ROLE_LEADER
            self.terms += 1
            if self._collector is None:  # a degraded replica keeps its running collector
                self._start_collector()
        log.warning("replica %s leads (term %d)", self.name, lease.token)
        self._notify(True)

    def _become_degraded(self) -> None:
        with self._lock:
            self._role = pb.REPLICA_ROLE_DEGRADED
            if self._collector is None:
                self._start_collector()

    def _step_down(self, reason: str) -> None:
        with self._lock:
            if self._lease is None:
                return
            self._lease = None
        log.warning("replica %s steps down: %s", self.name, reason)
        self._become_follower(reason)
        self._notify(False)

    def _become_follower(self, reason: str) -> None:
        with self._lock:
            self._role = pb.REPLICA_ROLE_FOLLOWER
            collector, self._collector = self._collector, None
        if collector is not None:
            # Stopping joins threads: not on the election thread, which must keep its schedule.
            threading.Thread(target=collector.stop, name="celery-status-collector-stop", daemon=True).start()

    def _start_collector(self) -> None:
        private = SnapshotStore()
        collector = Collector(self.settings, private, app=self._app)
        collector.adopt(self.store.latest().status)
        private.add_listener(lambda snap: self._relay(collector, snap))
        self._collector = collector
        collector.start()

    # -- snapshots out (leader, degraded) --------------------------------------------------
    def _relay(self, collector: Collector, snap: Snapshot) -> None:
        if snap.status.inspection.round == 0:
            return  # the collector's placeholder before its first round
        with self._lock:
            if self._collector is not collector:
                return  # a late round of a term that has ended
            lease = self._lease
        status = pb.CeleryStatus()
        status.CopyFrom(snap.status)
        status.replica.observed_by = self.name
        status.replica.term = lease.token if lease is not None else 0
        if lease is not None:
            shared = pb.CeleryStatus()
            shared.CopyFrom(status)
            shared.age.FromNanoseconds(int(snap.age() * 1e9))
            shared.replica.published_at.GetCurrentTime()
            try:
                accepted = self.coordination.publish(lease, shared.SerializeToString())
            except StoreUnavailable as exc:
                # Still within our lease: keep serving our own observation; the election
                # loop steps down before the lease ends if the store stays away.
                log.warning("replica %s: cannot publish: %s", self.name, exc)
                accepted = True
            if not accepted:
                self._step_down("fenced out: another replica holds the lease")
                return
            status.replica.published_at.CopyFrom(shared.replica.published_at)
        self._serve(status, snap.observed_monotonic)

    def _serve(self, status: pb.CeleryStatus, observed_monotonic: float) -> None:
        with self._lock:
            role = self._role
            status.replica.served_by = self.name
            status.replica.role = role
            status.replica.degraded = role == pb.REPLICA_ROLE_DEGRADED
            self.store.publish(status, observed_monotonic=observed_monotonic)

    # -- snapshots in (follower) ---------------------------------------------------------
    def _listen_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.coordination.listen(self._on_snapshot, self._on_refresh_request, self._stopping)
            except StoreUnavailable as exc:
                log.info("replica %s: snapshot channel interrupted: %s", self.name, exc)
                self._stopping.wait(min(1.0, self.tick))
            except Exception:
                log.exception("replica %s: snapshot channel failed", self.name)
                self._stopping.wait(min(1.0, self.tick))

    def _on_snapshot(self, payload: bytes, live: bool) -> None:
        if self._role != pb.REPLICA_ROLE_FOLLOWER:
            return  # leaders and degraded replicas serve what they observe themselves
        try:
            status = pb.CeleryStatus.FromString(payload)
        except Exception:
            log.warning("replica %s: ignoring an unreadable snapshot (%d bytes)", self.name, len(payload))
            return
        identity = (status.replica.term, status.inspection.round, status.observed_at.ToNanoseconds())
        if identity == self._last_received and not status.stale:
            return  # read back after reconnecting: already served
        self._last_received = identity
        age = status.age.ToNanoseconds() / 1e9
        if not live and status.replica.HasField("published_at"):
            # Read back from the store: it waited there since it was published.
            age += max(0.0, time.time() - status.replica.published_at.ToNanoseconds() / 1e9)
        status.ClearField("age")
        self._serve(status, time.monotonic() - age)

    def _on_refresh_request(self) -> None:
        with self._lock:
            collector = self._collector if self._lease is not None else None
        if collector is not None:
            collector.request_refresh()

    def _refresh_loop(self) -> None:
        while True:
            self._refresh.wait()
            self._refresh.clear()
            if self._stopping.is_set():
                return
            try:
                self.coordination.request_refresh(self.name)
            except StoreUnavailable as exc:
                log.info("replica %s: cannot ask the leader for a fresh round: %s", self.name, exc)

    def _mark_stale_if_old(self) -> float:
        """During a failover, keep serving the last snapshot, but say it is stale.

        Returns the seconds until the snapshot served now turns stale (when to look again).
        """
        snap = self.store.latest()
        status = snap.status
        if snap.version == self._stale_marked or status.stale or not status.HasField("observed_at"):
            return self.tick
        limit = 2 * self.settings.refresh_interval
        remaining = limit - snap.age()
        if remaining >= 0:
            return remaining + 0.01
        marked = pb.CeleryStatus()
        marked.CopyFrom(status)
        marked.stale = True
        marked.error = f"no snapshot from the leader for more than {limit:g} s (failover in progress?)"
        with self._lock:
            if self.store.latest() is not snap:
                return 0.0  # a new snapshot arrived meanwhile
            self._stale_marked = self.store.publish(marked, observed_monotonic=snap.observed_monotonic).version
        return self.tick
