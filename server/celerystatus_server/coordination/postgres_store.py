"""Coordination through PostgreSQL: a lease row with a fencing token, LISTEN/NOTIFY for snapshots.

One table, ``celery_status_coordination``, one row per replica set (``--coordination-key``):
who leads, the fencing token, until when (the database's clock decides, so replicas' clocks
do not matter), and the latest snapshot. A lease row rather than an advisory lock: an advisory
lock lives as long as its session, so a SIGSTOPped leader would keep it forever.

Publishing is one UPDATE guarded by the lease (holder, token, not expired) plus ``pg_notify``
in the same transaction; the UPDATE locks the row, so a follower taking over waits for it and a
paused leader that wakes up finds its lease gone and publishes nothing. NOTIFY payloads are
limited to 8000 bytes: a small snapshot travels in the notification, a larger one is announced
by its sequence number and read from the row.
"""

from __future__ import annotations

import base64
import math
import threading
from collections.abc import Callable
from typing import Any

from .store import Attempt, Lease, SnapshotHandler, StoreUnavailable

__all__ = ["TABLE", "PostgresStore"]

TABLE = "celery_status_coordination"
#: Longest NOTIFY payload we send (PostgreSQL refuses 8000 bytes and more).
MAX_NOTIFY = 7900

_CREATE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    name text PRIMARY KEY,
    holder text,
    token bigint NOT NULL DEFAULT 0,
    expires_at timestamptz,
    snapshot bytea,
    seq bigint NOT NULL DEFAULT 0
)"""
_ACQUIRE = f"""
INSERT INTO {TABLE} AS t (name, holder, token, expires_at)
VALUES (%(name)s, %(holder)s, 1, clock_timestamp() + make_interval(secs => %(ttl)s))
ON CONFLICT (name) DO UPDATE
   SET holder = EXCLUDED.holder, token = t.token + 1, expires_at = EXCLUDED.expires_at
 WHERE t.expires_at IS NULL OR t.expires_at <= clock_timestamp()
RETURNING token"""
_CURRENT = f"""
SELECT holder, greatest(0, extract(epoch FROM expires_at - clock_timestamp()))::float8
  FROM {TABLE} WHERE name = %(name)s"""
_HELD = "name = %(name)s AND holder = %(holder)s AND token = %(token)s AND expires_at > clock_timestamp()"
_RENEW = f"UPDATE {TABLE} SET expires_at = clock_timestamp() + make_interval(secs => %(ttl)s) WHERE {_HELD}"
_RELEASE = f"UPDATE {TABLE} SET expires_at = NULL WHERE {_HELD}"
_PUBLISH = f"UPDATE {TABLE} SET snapshot = %(payload)s, seq = seq + 1 WHERE {_HELD} RETURNING seq"
_LATEST = f"SELECT snapshot FROM {TABLE} WHERE name = %(name)s"


def _dsn(url: str) -> str:
    # SQLAlchemy-style "postgresql+psycopg://" names the driver; libpq wants "postgresql://".
    scheme, sep, rest = url.partition("://")
    return ("postgresql" + sep + rest) if scheme.lower() in ("postgresql+psycopg", "postgres") else url


class PostgresStore:
    kind = "postgresql"

    def __init__(self, url: str, key: str, timeout: float) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - the server extra installs it
            raise StoreUnavailable("postgresql coordination needs psycopg (pip install 'psycopg[binary]')") from exc
        self._psycopg = psycopg
        self._dsn = _dsn(url)
        self._timeout = timeout
        self._key = key
        self.snapshot_channel = f"{key}:snapshots"
        self.refresh_channel = f"{key}:refresh"
        self._lock = threading.Lock()
        self._conn: Any = None
        self._created = False

    # -- connections ---------------------------------------------------------
    def _connect(self) -> Any:
        conn = self._psycopg.connect(
            self._dsn,
            autocommit=True,
            connect_timeout=max(1, math.ceil(self._timeout)),
            options=f"-c statement_timeout={max(1, int(self._timeout * 1000))}",
            keepalives=1,
            keepalives_idle=1,
            keepalives_interval=1,
            keepalives_count=2,
        )
        if not self._created:
            try:
                conn.execute(_CREATE)
            except self._psycopg.errors.UniqueViolation:
                pass  # another replica created it at the same moment
            self._created = True
        return conn

    def _run(self, action: Callable[[Any], Any]) -> Any:
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect()
                return action(self._conn)
            except self._psycopg.Error as exc:
                conn, self._conn = self._conn, None
                if conn is not None:
                    conn.close()
                raise StoreUnavailable(f"postgresql: {' '.join(str(exc).split())}") from exc

    # -- the lease -----------------------------------------------------------
    def acquire(self, holder: str, ttl: float) -> Attempt:
        def attempt(conn: Any) -> Attempt:
            row = conn.execute(_ACQUIRE, {"name": self._key, "holder": holder, "ttl": ttl}).fetchone()
            if row is not None:
                return Attempt(Lease(holder, int(row[0])), holder, ttl)
            current = conn.execute(_CURRENT, {"name": self._key}).fetchone()
            if current is None:
                return Attempt(None)
            return Attempt(None, str(current[0] or ""), float(current[1] or 0.0))

        result: Attempt = self._run(attempt)
        return result

    def _held(self, lease: Lease) -> dict[str, Any]:
        return {"name": self._key, "holder": lease.holder, "token": lease.token}

    def renew(self, lease: Lease, ttl: float) -> bool:
        return bool(self._run(lambda conn: conn.execute(_RENEW, {**self._held(lease), "ttl": ttl}).rowcount))

    def release(self, lease: Lease) -> None:
        self._run(lambda conn: conn.execute(_RELEASE, self._held(lease)))

    def publish(self, lease: Lease, payload: bytes) -> bool:
        def publish(conn: Any) -> bool:
            with conn.transaction():
                row = conn.execute(_PUBLISH, {**self._held(lease), "payload": payload}).fetchone()
                if row is None:
                    return False
                inline = base64.b64encode(payload).decode()
                notice = "b:" + inline if len(inline) + 2 <= MAX_NOTIFY else f"s:{row[0]}"
                conn.execute("SELECT pg_notify(%s, %s)", (self.snapshot_channel, notice))
                return True

        return bool(self._run(publish))

    def latest(self) -> bytes | None:
        row = self._run(lambda conn: conn.execute(_LATEST, {"name": self._key}).fetchone())
        return bytes(row[0]) if row is not None and row[0] is not None else None

    def request_refresh(self, requester: str) -> None:
        self._run(lambda conn: conn.execute("SELECT pg_notify(%s, %s)", (self.refresh_channel, requester)))

    # -- the channels ----------------------------------------------------------
    def listen(
        self,
        on_snapshot: SnapshotHandler,
        on_refresh: Callable[[], None],
        stopping: threading.Event,
    ) -> None:
        from psycopg import sql

        psycopg = self._psycopg
        try:
            with self._connect() as conn:
                for channel in (self.snapshot_channel, self.refresh_channel):
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                latest = conn.execute(_LATEST, {"name": self._key}).fetchone()
                if latest is not None and latest[0] is not None:
                    on_snapshot(bytes(latest[0]), False)
                while not stopping.is_set():
                    # Collected first: the connection cannot run a query while notifies() iterates.
                    notices = list(conn.notifies(timeout=min(0.5, self._timeout), stop_after=1))
                    if not notices:
                        conn.execute("SELECT 1")  # notifies() returns quietly on a dead connection
                    for notice in notices:
                        if notice.channel == self.refresh_channel:
                            on_refresh()
                        elif notice.channel == self.snapshot_channel:
                            payload = notice.payload
                            if payload.startswith("b:"):
                                on_snapshot(base64.b64decode(payload[2:]), True)
                            else:  # too big for NOTIFY: read it from the row
                                row = conn.execute(_LATEST, {"name": self._key}).fetchone()
                                if row is not None and row[0] is not None:
                                    on_snapshot(bytes(row[0]), True)
        except psycopg.Error as exc:
            raise StoreUnavailable(f"postgresql: {' '.join(str(exc).split())}") from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
