"""A table queue in PostgreSQL: ``FOR UPDATE SKIP LOCKED`` claims under a lease.

One row per job, keyed by the job id, so pushing the same job twice stores it
once.  A claim stamps the row with a lease deadline and a fresh token and
counts the attempt; a row whose lease has run out is claimable again (that is
how the job of a crashed consumer comes back), until ``max_attempts`` claims
have been used up, when ``recover`` moves it to the dead letters
(``state = 'dead'``).  Times come from the database's clock.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import psycopg
from psycopg import sql

from ..errors import LegacyQueueError
from ..jobs import Job
from .base import Claim

__all__ = ["PostgresLegacyQueue"]

#: PostgreSQL silently truncates identifiers past 63 bytes; the index adds "_ready".
MAX_TABLE_NAME_BYTES = 63 - len("_ready")


class PostgresLegacyQueue:
    """:class:`~celerystatus_router.LegacyQueue` on a PostgreSQL table (psycopg 3).

    Thread-safe (one connection, used under a lock).  The table is created when
    missing.
    """

    def __init__(
        self,
        dsn: str,
        table: str = "legacy_jobs",
        *,
        lease: float = 30.0,
        max_attempts: int = 5,
        poll_interval: float = 0.1,
        connect_timeout: int = 5,
        statement_timeout: float = 5.0,
    ) -> None:
        # Any name is safe in SQL (psycopg.sql.Identifier quotes it: "legacy-jobs"
        # works); only lengths PostgreSQL would truncate and NUL are refused.
        if not table or "\x00" in table or len(table.encode()) > MAX_TABLE_NAME_BYTES:
            raise ValueError(
                f"table name must be 1 to {MAX_TABLE_NAME_BYTES} bytes without NUL, got {table!r}"
            )
        if lease <= 0:
            raise ValueError("lease must be positive")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.dsn = dsn
        self.table = table
        self.lease = lease
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self._lock = threading.Lock()
        try:
            self._conn = psycopg.connect(
                dsn,
                autocommit=True,
                connect_timeout=connect_timeout,
                options=f"-c statement_timeout={int(statement_timeout * 1000)}",
            )
        except psycopg.Error as exc:
            raise LegacyQueueError(f"cannot connect to PostgreSQL: {exc}") from exc
        self._t = sql.Identifier(table)
        self._create()

    def _create(self) -> None:
        self._execute(
            sql.SQL(
                """
                CREATE TABLE IF NOT EXISTS {t} (
                    id          text PRIMARY KEY,
                    payload     jsonb NOT NULL,
                    state       text NOT NULL DEFAULT 'pending',
                    attempts    integer NOT NULL DEFAULT 0,
                    lease_until timestamptz,
                    claim_token text,
                    enqueued_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    last_error  text
                );
                CREATE INDEX IF NOT EXISTS {idx} ON {t} (enqueued_at) WHERE state = 'pending';
                """
            ).format(t=self._t, idx=sql.Identifier(f"{self.table}_ready")),
            (),
            "create the queue table",
        )

    def _execute(self, query: sql.Composed, params: tuple[Any, ...], what: str) -> psycopg.Cursor[Any]:
        try:
            with self._lock:
                return self._conn.execute(query, params)
        except psycopg.Error as exc:
            raise LegacyQueueError(f"cannot {what} in table {self.table}: {exc}") from exc

    def push(self, job: Job) -> None:
        self._execute(
            sql.SQL("INSERT INTO {t} (id, payload) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING").format(t=self._t),
            (job.id, job.to_json()),
            f"push job {job.id}",
        )

    def _claim_once(self) -> Claim | None:
        token = uuid.uuid4().hex
        row = self._execute(
            sql.SQL(
                """
                UPDATE {t} SET attempts = attempts + 1, claim_token = %s,
                       lease_until = clock_timestamp() + make_interval(secs => %s)
                WHERE id = (
                    SELECT id FROM {t}
                    WHERE state = 'pending' AND attempts < %s
                      AND (lease_until IS NULL OR lease_until < clock_timestamp())
                    ORDER BY enqueued_at
                    FOR UPDATE SKIP LOCKED
                    LIMIT 1
                )
                RETURNING payload, attempts
                """
            ).format(t=self._t),
            (token, self.lease, self.max_attempts),
            "claim a job",
        ).fetchone()
        if row is None:
            return None
        payload, attempts = row
        data = payload if isinstance(payload, dict) else json.loads(payload)
        return Claim(Job.from_dict(data), token=token, attempts=int(attempts))

    def claim(self, timeout: float = 0.0) -> Claim | None:
        # Polling keeps the queue usable through poolers that drop LISTEN; the
        # interval bounds the added latency of an idle consumer.
        deadline = time.monotonic() + timeout
        while True:
            claim = self._claim_once()
            if claim is not None or time.monotonic() >= deadline:
                return claim
            time.sleep(min(self.poll_interval, max(0.0, deadline - time.monotonic())))

    def ack(self, claim: Claim) -> bool:
        cursor = self._execute(
            sql.SQL("DELETE FROM {t} WHERE id = %s AND claim_token = %s").format(t=self._t),
            (claim.job.id, claim.token),
            f"acknowledge job {claim.job.id}",
        )
        return cursor.rowcount == 1

    def nack(self, claim: Claim, error: str = "") -> None:
        self._execute(
            sql.SQL(
                """
                UPDATE {t} SET lease_until = NULL, claim_token = NULL, last_error = %s,
                       state = CASE WHEN attempts >= %s THEN 'dead' ELSE 'pending' END
                WHERE id = %s AND claim_token = %s
                """
            ).format(t=self._t),
            (error or None, self.max_attempts, claim.job.id, claim.token),
            f"release job {claim.job.id}",
        )

    def touch(self, claim: Claim) -> bool:
        cursor = self._execute(
            sql.SQL(
                "UPDATE {t} SET lease_until = clock_timestamp() + make_interval(secs => %s) "
                "WHERE id = %s AND claim_token = %s"
            ).format(t=self._t),
            (self.lease, claim.job.id, claim.token),
            f"extend the lease of job {claim.job.id}",
        )
        return cursor.rowcount == 1

    def recover(self) -> int:
        """Expired leases: back to pending, or dead once ``max_attempts`` claims are used up."""
        cursor = self._execute(
            sql.SQL(
                """
                UPDATE {t} SET lease_until = NULL, claim_token = NULL,
                       last_error = coalesce(last_error, 'lease expired'),
                       state = CASE WHEN attempts >= %s THEN 'dead' ELSE 'pending' END
                WHERE state = 'pending' AND lease_until < clock_timestamp()
                """
            ).format(t=self._t),
            (self.max_attempts,),
            "recover expired claims",
        )
        return max(cursor.rowcount, 0)

    def pending(self) -> int:
        row = self._execute(
            sql.SQL("SELECT count(*) FROM {t} WHERE state = 'pending' AND lease_until IS NULL").format(t=self._t),
            (),
            "count pending jobs",
        ).fetchone()
        return int(row[0]) if row else 0

    def dead(self) -> list[Job]:
        rows = self._execute(
            sql.SQL("SELECT payload FROM {t} WHERE state = 'dead' ORDER BY enqueued_at").format(t=self._t),
            (),
            "list dead jobs",
        ).fetchall()
        return [Job.from_dict(r[0] if isinstance(r[0], dict) else json.loads(r[0])) for r in rows]

    def job_ids(self) -> dict[str, list[str]]:
        rows = self._execute(
            sql.SQL(
                "SELECT CASE WHEN state = 'dead' THEN 'dead' WHEN lease_until IS NULL THEN 'pending' "
                "ELSE 'processing' END, id FROM {t}"
            ).format(t=self._t),
            (),
            "list job ids",
        ).fetchall()
        out: dict[str, list[str]] = {"pending": [], "processing": [], "dead": []}
        for where, job_id in rows:
            out[where].append(job_id)
        return out

    def drop(self) -> None:
        """Drop the table (tests and teardown)."""
        self._execute(sql.SQL("DROP TABLE IF EXISTS {t}").format(t=self._t), (), "drop the table")

    def close(self) -> None:
        self._conn.close()
