"""Holds: make a task deterministically *active*, then let it finish.

A held task marks itself started and blocks on BLPOP of a release list in
the broker's Redis; the test releases it by pushing to that list. No timing
guesses: the test waits for the "started" marker, asserts, then releases.
"""

from __future__ import annotations

import uuid

import redis

__all__ = ["Hold", "block_until_released", "release_key", "started_key"]

_PREFIX = "celery-status-test:hold"


def release_key(token: str) -> str:
    return f"{_PREFIX}:{token}:release"


def started_key(token: str) -> str:
    return f"{_PREFIX}:{token}:started"


def block_until_released(redis_url: str, token: str, timeout: float) -> bool:
    """Called inside the task: True when released, False when ``timeout`` passed first."""
    # redis-py 8 reads with a 5 s socket timeout by default, which would end a longer BLPOP early.
    client = redis.Redis.from_url(redis_url, socket_timeout=timeout + 10)
    try:
        client.set(started_key(token), "1", ex=int(timeout) + 60)
        return client.blpop([release_key(token)], timeout=timeout) is not None
    finally:
        client.close()


class Hold:
    """The test's side of a hold; pass ``hold.token`` to the task."""

    def __init__(self, redis_url: str, token: str | None = None) -> None:
        self.redis_url = redis_url
        self.token = token or uuid.uuid4().hex
        self._client = redis.Redis.from_url(redis_url)

    def started(self) -> bool:
        return bool(self._client.exists(started_key(self.token)))

    def wait_started(self, timeout: float = 30.0) -> None:
        from tests.support.waiting import wait_for

        wait_for(self.started, timeout=timeout, message=f"held task {self.token} never started")

    def release(self, count: int = 1) -> None:
        """Lets ``count`` tasks waiting on this token finish (early releases are kept)."""
        self._client.rpush(release_key(self.token), *(["go"] * count))
        self._client.expire(release_key(self.token), 300)

    def close(self) -> None:
        self._client.close()
