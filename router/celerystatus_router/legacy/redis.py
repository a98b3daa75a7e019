"""A reliable queue in Redis: claims move entries to a processing list under a lease.

Keys (``name`` is the prefix):

* ``name:pending``     list, pushed on the left, claimed from the right (FIFO)
* ``name:processing``  list of claimed entries (BLMOVE from pending)
* ``name:leases``      sorted set, entry -> lease deadline (epoch seconds)
* ``name:owners``      hash, entry -> claim token
* ``name:attempts``    hash, job id -> claims so far
* ``name:dead``        list of entries that failed ``max_attempts`` times

Every change touching more than one key runs as a Lua script, so a crash
between two commands never leaves a job in two places or in none.  The one
gap left (BLMOVE, then registering the lease) is covered by ``recover``: an
entry found in ``processing`` without a lease first gets one, and is requeued
only when that lease runs out.  Lease deadlines use the consumers' clocks,
which must agree to within a fraction of the lease.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, cast

import redis

from ..errors import LegacyQueueError
from ..jobs import Job
from .base import Claim

__all__ = ["RedisLegacyQueue"]

_REGISTER = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return redis.call('HINCRBY', KEYS[3], cjson.decode(ARGV[1])['id'], 1)
"""

_CLAIM = """
local entry = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
if not entry then return nil end
redis.call('ZADD', KEYS[3], ARGV[1], entry)
redis.call('HSET', KEYS[4], entry, ARGV[2])
local attempts = redis.call('HINCRBY', KEYS[5], cjson.decode(entry)['id'], 1)
return {entry, attempts}
"""

_ACK = """
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], cjson.decode(ARGV[1])['id'])
return 1
"""

# KEYS: processing, leases, owners, attempts, pending, dead; ARGV: entry, token, max_attempts
_NACK = """
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
local id = cjson.decode(ARGV[1])['id']
if tonumber(redis.call('HGET', KEYS[4], id) or '0') >= tonumber(ARGV[3]) then
  redis.call('HDEL', KEYS[4], id)
  redis.call('LPUSH', KEYS[6], ARGV[1])
  return 2
end
redis.call('LPUSH', KEYS[5], ARGV[1])
return 1
"""

# KEYS: processing, leases, owners, attempts, pending, dead; ARGV: now, lease, max_attempts
_RECOVER = """
local now = tonumber(ARGV[1])
local moved = 0
for _, entry in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local deadline = redis.call('ZSCORE', KEYS[2], entry)
  if not deadline then
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), entry)
  elseif tonumber(deadline) < now then
    redis.call('LREM', KEYS[1], 1, entry)
    redis.call('ZREM', KEYS[2], entry)
    redis.call('HDEL', KEYS[3], entry)
    local id = cjson.decode(entry)['id']
    if tonumber(redis.call('HGET', KEYS[4], id) or '0') >= tonumber(ARGV[3]) then
      redis.call('HDEL', KEYS[4], id)
      redis.call('LPUSH', KEYS[6], entry)
    else
      redis.call('RPUSH', KEYS[5], entry)
    end
    moved = moved + 1
  end
end
return moved
"""

_TOUCH = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
return 1
"""


class RedisLegacyQueue:
    """:class:`~celerystatus_router.LegacyQueue` on Redis >= 6.2 (LMOVE/BLMOVE)."""

    def __init__(
        self,
        client: redis.Redis,
        name: str = "legacy-jobs",
        *,
        lease: float = 30.0,
        max_attempts: int = 5,
    ) -> None:
        if lease <= 0:
            raise ValueError("lease must be positive")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.client = client
        self.name = name
        self.url: str | None = None
        self.lease = lease
        self.max_attempts = max_attempts
        self.pending_key = f"{name}:pending"
        self.processing_key = f"{name}:processing"
        self.leases_key = f"{name}:leases"
        self.owners_key = f"{name}:owners"
        self.attempts_key = f"{name}:attempts"
        self.dead_key = f"{name}:dead"
        self._register = client.register_script(_REGISTER)
        self._claim = client.register_script(_CLAIM)
        self._ack = client.register_script(_ACK)
        self._nack = client.register_script(_NACK)
        self._recover = client.register_script(_RECOVER)
        self._touch = client.register_script(_TOUCH)

    @classmethod
    def from_url(cls, url: str, name: str = "legacy-jobs", *, timeout: float = 2.0, **kwargs: Any) -> RedisLegacyQueue:
        # The socket timeout must outlast a blocking claim; claim() adds its own wait to it.
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        queue = cls(client, name, **kwargs)
        queue.url = url
        return queue

    def push(self, job: Job) -> None:
        try:
            self.client.lpush(self.pending_key, job.to_json())
        except redis.RedisError as exc:
            raise LegacyQueueError(f"cannot push job {job.id} to {self.pending_key}: {exc}") from exc

    def claim(self, timeout: float = 0.0) -> Claim | None:
        token = uuid.uuid4().hex
        try:
            found = self._claim(
                keys=[self.pending_key, self.processing_key, self.leases_key, self.owners_key, self.attempts_key],
                args=[time.time() + self.lease, token],
            )
            if found:
                entry, attempts = found[0], int(found[1])
            elif timeout > 0:
                # BLMOVE takes fractional seconds; redis-py's stub only says int.
                wait = cast(int, timeout)
                entry = self.client.blmove(self.pending_key, self.processing_key, wait, "RIGHT", "LEFT")
                if entry is None:
                    return None
                attempts = int(
                    self._register(
                        keys=[self.leases_key, self.owners_key, self.attempts_key],
                        args=[entry, time.time() + self.lease, token],
                    )
                )
            else:
                return None
        except redis.RedisError as exc:
            raise LegacyQueueError(f"cannot claim from {self.pending_key}: {exc}") from exc
        text = entry.decode() if isinstance(entry, bytes) else str(entry)
        return Claim(Job.from_json(text), token=f"{token}:{text}", attempts=attempts)

    def _split(self, claim: Claim) -> tuple[str, str]:
        token, _, entry = claim.token.partition(":")
        return token, entry

    def ack(self, claim: Claim) -> bool:
        token, entry = self._split(claim)
        try:
            done = self._ack(
                keys=[self.processing_key, self.leases_key, self.owners_key, self.attempts_key],
                args=[entry, token],
            )
        except redis.RedisError as exc:
            raise LegacyQueueError(f"cannot acknowledge job {claim.job.id}: {exc}") from exc
        return bool(done)

    def nack(self, claim: Claim, error: str = "") -> None:
        token, entry = self._split(claim)
        try:
            self._nack(keys=self._all_keys(), args=[entry, token, self.max_attempts])
        except redis.RedisError as exc:
            raise LegacyQueueError(f"cannot release job {claim.job.id}: {exc}") from exc

    def touch(self, claim: Claim) -> bool:
        """Extend the lease of a job still being worked on; False when it was lost."""
        token, entry = self._split(claim)
        try:
            deadline = time.time() + self.lease
            return bool(self._touch(keys=[self.leases_key, self.owners_key], args=[entry, token, deadline]))
        except redis.RedisError as exc:
            raise LegacyQueueError(f"cannot extend the lease of job {claim.job.id}: {exc}") from exc

    def recover(self) -> int:
        try:
            return int(self._recover(keys=self._all_keys(), args=[time.time(), self.lease, self.max_attempts]))
        except redis.RedisError as exc:
            raise LegacyQueueError(f"cannot recover jobs of {self.processing_key}: {exc}") from exc

    def pending(self) -> int:
        return int(self.client.llen(self.pending_key))

    def in_flight(self) -> int:
        return int(self.client.llen(self.processing_key))

    def dead(self) -> list[Job]:
        return [Job.from_json(e) for e in self.client.lrange(self.dead_key, 0, -1)]

    def job_ids(self) -> dict[str, list[str]]:
        """Ids in each list (``pending``, ``processing``, ``dead``), duplicates kept: for audits."""
        keys = {"pending": self.pending_key, "processing": self.processing_key, "dead": self.dead_key}
        return {where: [Job.from_json(e).id for e in self.client.lrange(key, 0, -1)] for where, key in keys.items()}

    def close(self) -> None:
        self.client.close()

    def _all_keys(self) -> list[str]:
        return [
            self.processing_key, self.leases_key, self.owners_key,
            self.attempts_key, self.pending_key, self.dead_key,
        ]  # fmt: skip
