"""The job the router tests run, on Celery workers and on legacy consumers alike.

Every delivery is counted; the job's effect (one increment) commits in the same transaction as the
dedupe claim, the first time this job id comes through.  The store lives
on the shared Redis (env CELERY_STATUS_TEST_DEDUPE_URL), not on the broker,
so it survives the broker's restarts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import redis

from celerystatus_router import Job, RedisDedupe

__all__ = ["DELIVERIES", "EFFECTS", "Ledger", "crash_after_start", "record", "record_legacy"]

DELIVERIES = "router-test:deliveries"
EFFECTS = "router-test:effects"
DONE_PREFIX = "router-test:done"
STARTED = "router-test:started"

_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["CELERY_STATUS_TEST_DEDUPE_URL"])
    return _client


def record(job_id: str, via: str) -> bool:
    client = _redis()
    client.hincrby(DELIVERIES, job_id, 1)

    def effect(pipe: redis.client.Pipeline) -> None:
        pipe.hincrby(EFFECTS, job_id, 1)
        pipe.hset(f"{EFFECTS}:via", job_id, via)

    # Claim and effect commit together: a worker SIGKILLed between the two would
    # otherwise leave a claim with no effect, and every redelivery would be skipped.
    return RedisDedupe(client, DONE_PREFIX).claim_with(job_id, effect)


def record_legacy(job: Job) -> None:
    """Legacy consumer handler."""
    record(job.id, via="legacy")


def crash_after_start(job: Job) -> None:
    """Legacy consumer handler that marks the job started and never finishes (the test kills it)."""
    _redis().rpush(STARTED, job.id)
    while True:
        time.sleep(1)


class Ledger:
    """The test's view of the dedupe store."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, decode_responses=True)

    def effects(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.client.hgetall(EFFECTS).items()}

    def deliveries(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.client.hgetall(DELIVERIES).items()}

    def via(self) -> dict[str, str]:
        return dict(self.client.hgetall(f"{EFFECTS}:via"))

    def started(self) -> list[str]:
        return list(self.client.lrange(STARTED, 0, -1))

    def done_ids(self) -> Iterator[str]:
        return RedisDedupe(self.client, DONE_PREFIX).ids()

    def close(self) -> None:
        self.client.close()
