"""Consumer-side idempotency: run each job id at most once, whichever queue delivered it.

The router cannot promise exactly-once delivery: a publish that timed out may
still have reached the broker after the job went to the legacy queue, and a
worker killed before acknowledging gets its message again.  Consumers close
that gap by claiming the job id in a store shared by every consumer before
doing the work.

``RedisDedupe`` claims with ``SET NX EX``.  ``PostgresDedupe`` inserts into a
table with ``ON CONFLICT DO NOTHING``; pass your own connection (inside your
transaction) to make the claim and the job's effects commit or roll back
together, which is the only way to get exactly-once effects across a crash.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import psycopg
import redis
from psycopg import sql

from .errors import DedupeError

__all__ = ["Dedupe", "PostgresDedupe", "RedisDedupe"]


class Dedupe(Protocol):
    def claim(self, job_id: str) -> bool:
        """True the first time ``job_id`` is claimed, False for every repeat."""

    def release(self, job_id: str) -> None:
        """Forget a claim (the work failed and should be retried)."""

    def seen(self, job_id: str) -> bool: ...


class RedisDedupe:
    """Claims live ``ttl`` seconds (default a week): longer than any redelivery can take."""

    def __init__(self, client: redis.Redis, prefix: str = "celery-router:done", *, ttl: int = 7 * 24 * 3600) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl

    @classmethod
    def from_url(cls, url: str, prefix: str = "celery-router:done", **kwargs: Any) -> RedisDedupe:
        return cls(redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5), prefix, **kwargs)

    def _key(self, job_id: str) -> str:
        return f"{self.prefix}:{job_id}"

    def claim(self, job_id: str) -> bool:
        try:
            return bool(self.client.set(self._key(job_id), "1", nx=True, ex=self.ttl))
        except redis.RedisError as exc:
            raise DedupeError(f"cannot claim job {job_id}: {exc}") from exc

    def claim_with(self, job_id: str, effect: Callable[[Any], object]) -> bool:
        """Claim ``job_id`` and apply ``effect`` (commands on a Redis pipeline) in one transaction.

        A bare :meth:`claim` followed by the job's work loses the job if the consumer
        dies in between: the claim says "done", so every later copy is skipped. When
        the job's effect lives in the same Redis, commit both together; the effect
        callable queues its commands on the pipeline it is given.
        """
        key = self._key(job_id)
        try:
            with self.client.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        pipe.watch(key)  # type: ignore[no-untyped-call]
                        if pipe.exists(key):
                            pipe.unwatch()
                            return False
                        pipe.multi()
                        pipe.set(key, "1", ex=self.ttl)
                        effect(pipe)
                        pipe.execute()
                        return True
                    except redis.WatchError:
                        continue  # another consumer touched the claim: look again
        except redis.RedisError as exc:
            raise DedupeError(f"cannot claim job {job_id}: {exc}") from exc

    def release(self, job_id: str) -> None:
        try:
            self.client.delete(self._key(job_id))
        except redis.RedisError as exc:
            raise DedupeError(f"cannot release job {job_id}: {exc}") from exc

    def seen(self, job_id: str) -> bool:
        try:
            return bool(self.client.exists(self._key(job_id)))
        except redis.RedisError as exc:
            raise DedupeError(f"cannot look up job {job_id}: {exc}") from exc

    def ids(self) -> Iterator[str]:
        start = len(self.prefix) + 1
        for key in self.client.scan_iter(match=f"{self.prefix}:*", count=1000):
            yield (key.decode() if isinstance(key, bytes) else str(key))[start:]

    def close(self) -> None:
        self.client.close()


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class PostgresDedupe:
    """A table ``(job_id text primary key, done_at timestamptz)``, created when missing."""

    def __init__(self, dsn: str, table: str = "celery_router_done", *, connect_timeout: int = 5) -> None:
        if not _NAME.match(table):
            raise ValueError(f"table name must be a plain SQL identifier, got {table!r}")
        self.table = table
        self._t = sql.Identifier(table)
        self._lock = threading.Lock()
        try:
            self._conn = psycopg.connect(dsn, autocommit=True, connect_timeout=connect_timeout)
        except psycopg.Error as exc:
            raise DedupeError(f"cannot connect to PostgreSQL: {exc}") from exc
        self._run(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {t} (job_id text PRIMARY KEY, done_at timestamptz NOT NULL DEFAULT now())"
            ).format(t=self._t),
            (),
            None,
        )

    def _run(self, query: sql.Composed, params: tuple[Any, ...], conn: psycopg.Connection[Any] | None) -> int:
        try:
            if conn is not None:
                return conn.execute(query, params).rowcount
            with self._lock:
                return self._conn.execute(query, params).rowcount
        except psycopg.Error as exc:
            raise DedupeError(f"dedupe table {self.table}: {exc}") from exc

    def claim(self, job_id: str, conn: psycopg.Connection[Any] | None = None) -> bool:
        """With ``conn``, the claim joins that connection's open transaction."""
        query = sql.SQL("INSERT INTO {t} (job_id) VALUES (%s) ON CONFLICT DO NOTHING").format(t=self._t)
        return self._run(query, (job_id,), conn) == 1

    def release(self, job_id: str, conn: psycopg.Connection[Any] | None = None) -> None:
        self._run(sql.SQL("DELETE FROM {t} WHERE job_id = %s").format(t=self._t), (job_id,), conn)

    def seen(self, job_id: str) -> bool:
        try:
            with self._lock:
                row = self._conn.execute(
                    sql.SQL("SELECT 1 FROM {t} WHERE job_id = %s").format(t=self._t), (job_id,)
                ).fetchone()
        except psycopg.Error as exc:
            raise DedupeError(f"dedupe table {self.table}: {exc}") from exc
        return row is not None

    def drop(self) -> None:
        self._run(sql.SQL("DROP TABLE IF EXISTS {t}").format(t=self._t), (), None)

    def close(self) -> None:
        self._conn.close()
