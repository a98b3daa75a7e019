"""What replicas need from a coordination store, whichever engine it is.

A store holds one lease (who leads, until when, with a fencing token that grows
with every new leader), the latest published snapshot, and two channels: new
snapshots, and requests for a fresh one. Every call is bounded by the store's
operation timeout and raises :class:`StoreUnavailable` when the store cannot
be reached, so the replica's election loop never blocks past its lease.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Attempt", "CoordinationStore", "Lease", "SnapshotHandler", "StoreUnavailable", "open_store"]


class StoreUnavailable(Exception):
    """The coordination store did not answer (refused, timed out, dropped the connection)."""


@dataclass(frozen=True)
class Lease:
    """A held leadership: only its holder may renew it or publish under it."""

    holder: str
    #: Fencing token: strictly larger for every new leader of the same store.
    token: int


@dataclass(frozen=True)
class Attempt:
    """The outcome of trying to lead."""

    lease: Lease | None
    #: Who leads when the attempt failed ("" when unknown).
    leader: str = ""
    #: Seconds until the current leader's lease ends unless renewed; when to try again.
    expires_in: float = 0.0


#: Called with a published snapshot (serialised ``CeleryStatus``) and whether it arrived live
#: (False: read back from the store after (re)subscribing).
SnapshotHandler = Callable[[bytes, bool], None]


class CoordinationStore(Protocol):
    kind: str

    def acquire(self, holder: str, ttl: float) -> Attempt:
        """Lead for *ttl* seconds if nobody does."""

    def renew(self, lease: Lease, ttl: float) -> bool:
        """Extend *lease* by *ttl* from now; False when it is no longer held (expired or taken)."""

    def release(self, lease: Lease) -> None:
        """Give the lease up at once (a clean shutdown hands over without waiting for the TTL)."""

    def publish(self, lease: Lease, payload: bytes) -> bool:
        """Store *payload* as the latest snapshot and announce it, only while *lease* is held (fencing)."""

    def latest(self) -> bytes | None:
        """The latest published snapshot, if any."""

    def request_refresh(self, requester: str) -> None:
        """Ask the leader for a fresh round."""

    def listen(
        self,
        on_snapshot: SnapshotHandler,
        on_refresh: Callable[[], None],
        stopping: threading.Event,
    ) -> None:
        """Deliver snapshots and refresh requests until *stopping* is set.

        After subscribing, the latest snapshot is delivered once (``live=False``) so a replica
        that (re)connects does not wait a whole round. Raises :class:`StoreUnavailable` when the
        connection is lost; the caller calls again.
        """

    def close(self) -> None: ...


def open_store(url: str, key: str, timeout: float) -> CoordinationStore:
    """The store at *url* (``redis://``, ``rediss://``, ``postgresql://``), for the replica set *key*.

    Nothing is contacted here: an unreachable store is found out, and survived, by the replicas.
    """
    scheme = url.partition("://")[0].lower()
    if scheme in ("redis", "rediss"):
        from .redis_store import RedisStore

        return RedisStore(url, key, timeout)
    from .postgres_store import PostgresStore

    return PostgresStore(url, key, timeout)
