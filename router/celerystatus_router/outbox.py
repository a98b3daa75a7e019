"""The outbox: jobs handed to Celery, kept until a consumer has recorded them.

A broker's "accepted" is not the end of the story.  The Redis transport, for
one, pops a message and only then records it as unacknowledged, so a worker
killed in between loses it; a broker without persistence loses everything on
restart.  With an outbox the router remembers every job it sent to Celery;
:func:`reconcile` later asks the consumers' dedupe store which ones ran, forgets
those, and sends the rest again under the same id (the dedupe store turns a
copy of a job that was merely slow into a no-op).

Optional: it costs one Redis round trip per routed job.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import redis

from .dedupe import Dedupe
from .errors import LegacyQueueError, SendFailed
from .jobs import Job
from .producer import CeleryProducer

__all__ = ["ReconcileReport", "RedisOutbox", "reconcile"]

log = logging.getLogger(__name__)


class RedisOutbox:
    """``name`` (sorted set: job id -> last send time) and ``name:jobs`` (hash: job id -> job)."""

    def __init__(self, client: redis.Redis, name: str = "celery-router:outbox") -> None:
        self.client = client
        self.name = name
        self.jobs_key = f"{name}:jobs"

    @classmethod
    def from_url(cls, url: str, name: str = "celery-router:outbox", *, timeout: float = 2.0) -> RedisOutbox:
        return cls(redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout), name)

    def add(self, job: Job, sent_at: float | None = None) -> None:
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.zadd(self.name, {job.id: time.time() if sent_at is None else sent_at})
            pipe.hset(self.jobs_key, job.id, job.to_json())
            pipe.execute()
        except redis.RedisError as exc:
            raise LegacyQueueError(f"cannot record job {job.id} in the outbox: {exc}") from exc

    def due(self, older_than: float, limit: int = 500) -> list[Job]:
        """Jobs last sent more than ``older_than`` seconds ago, oldest first."""
        cutoff = time.time() - older_than
        ids: list[Any] = list(self.client.zrangebyscore(self.name, "-inf", cutoff, start=0, num=limit))
        if not ids:
            return []
        payloads = self.client.hmget(self.jobs_key, ids)
        return [Job.from_json(p) for p in payloads if p is not None]

    def remove(self, job_ids: list[str]) -> None:
        if job_ids:
            pipe = self.client.pipeline(transaction=True)
            pipe.zrem(self.name, *job_ids)
            pipe.hdel(self.jobs_key, *job_ids)
            pipe.execute()

    def __len__(self) -> int:
        return int(self.client.zcard(self.name))

    def close(self) -> None:
        self.client.close()


@dataclass(slots=True)
class ReconcileReport:
    confirmed: int = 0
    """Jobs the dedupe store has seen: forgotten."""
    resent: int = 0
    """Jobs not seen yet: published again under the same id."""
    failed: int = 0


def reconcile(
    outbox: RedisOutbox,
    dedupe: Dedupe,
    producer: CeleryProducer,
    *,
    older_than: float = 60.0,
    limit: int = 500,
) -> ReconcileReport:
    """One pass over the jobs sent more than ``older_than`` seconds ago.

    Choose ``older_than`` well above the normal queueing time: a resend of a job
    still waiting in the broker is harmless but adds a message.
    """
    report = ReconcileReport()
    done: list[str] = []
    for job in outbox.due(older_than, limit):
        if dedupe.seen(job.id):
            done.append(job.id)
            continue
        try:
            producer.send(job)
        except SendFailed as exc:
            report.failed += 1
            log.warning("reconcile: job %s not resent: %s", job.id, exc)
            break  # the broker is not taking jobs; try again next pass
        outbox.add(job)  # restarts its clock
        report.resent += 1
    outbox.remove(done)
    report.confirmed = len(done)
    return report
