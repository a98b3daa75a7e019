"""Coordination through Redis: a lease key with a TTL and a fencing counter, pub/sub for snapshots.

Keys under ``<key>:`` — ``leader`` (``"<token> <holder>"``, expires with the lease), ``fence``
(INCR'd by every new leader), ``snapshot`` (the latest published snapshot). Channels
``<key>:snapshots`` and ``<key>:refresh``. Each step is one Lua script, so checking the lease
and acting on it are atomic: a leader whose lease expired while it was paused cannot renew,
and cannot publish (the same compare-and-act as redis-py's ``Lock``, plus the fencing token).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .store import Attempt, Lease, SnapshotHandler, StoreUnavailable

__all__ = ["RedisStore"]

#: KEYS: leader, fence. ARGV: holder, ttl ms. -> {token or 0, pttl, current value}
_ACQUIRE = """
local current = redis.call('get', KEYS[1])
if current then return {0, redis.call('pttl', KEYS[1]), current} end
local token = redis.call('incr', KEYS[2])
redis.call('set', KEYS[1], token .. ' ' .. ARGV[1], 'px', ARGV[2])
return {token, tonumber(ARGV[2]), ''}
"""
#: KEYS: leader. ARGV: lease value, ttl ms.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
#: KEYS: leader. ARGV: lease value.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
#: KEYS: leader, snapshot. ARGV: lease value, payload, channel, keep seconds. -> -1 when fenced out.
_PUBLISH = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('set', KEYS[2], ARGV[2], 'ex', ARGV[4])
return redis.call('publish', ARGV[3], ARGV[2])
"""

#: The latest snapshot outlives its leader by this much, for replicas that start later.
KEEP_SNAPSHOT = 24 * 3600

_ERRORS = (redis.RedisError, OSError)


def _value(lease: Lease) -> str:
    return f"{lease.token} {lease.holder}"


class RedisStore:
    kind = "redis"

    def __init__(self, url: str, key: str, timeout: float) -> None:
        # No retries: the election loop retries on its own schedule, bounded by the lease.
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._timeout = timeout
        self._leader = f"{key}:leader"
        self._fence = f"{key}:fence"
        self._snapshot = f"{key}:snapshot"
        self.snapshot_channel = f"{key}:snapshots"
        self.refresh_channel = f"{key}:refresh"
        self._acquire = self._client.register_script(_ACQUIRE)
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)
        self._publish = self._client.register_script(_PUBLISH)

    def acquire(self, holder: str, ttl: float) -> Attempt:
        try:
            token, pttl, current = self._acquire(keys=[self._leader, self._fence], args=[holder, int(ttl * 1000)])
        except _ERRORS as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        if token:
            return Attempt(Lease(holder, int(token)), holder, ttl)
        leader = current.decode() if isinstance(current, bytes) else str(current)
        return Attempt(None, leader.partition(" ")[2], max(0.0, int(pttl) / 1000))

    def renew(self, lease: Lease, ttl: float) -> bool:
        try:
            return bool(self._renew(keys=[self._leader], args=[_value(lease), int(ttl * 1000)]))
        except _ERRORS as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    def release(self, lease: Lease) -> None:
        try:
            self._release(keys=[self._leader], args=[_value(lease)])
        except _ERRORS as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    def publish(self, lease: Lease, payload: bytes) -> bool:
        try:
            result = self._publish(
                keys=[self._leader, self._snapshot],
                args=[_value(lease), payload, self.snapshot_channel, KEEP_SNAPSHOT],
            )
        except _ERRORS as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        return int(result) >= 0

    def latest(self) -> bytes | None:
        try:
            value = self._client.get(self._snapshot)
        except _ERRORS as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        return value if isinstance(value, bytes) else None

    def request_refresh(self, requester: str) -> None:
        try:
            self._client.publish(self.refresh_channel, requester)
        except _ERRORS as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    def listen(
        self,
        on_snapshot: SnapshotHandler,
        on_refresh: Callable[[], None],
        stopping: threading.Event,
    ) -> None:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self.snapshot_channel, self.refresh_channel)
            # Subscribed first, read second: nothing published in between is missed.
            latest = self.latest()
            if latest is not None:
                on_snapshot(latest, False)
            while not stopping.is_set():
                message = pubsub.get_message(timeout=min(0.5, self._timeout))
                if message is None or message.get("type") != "message":
                    continue
                channel = message["channel"].decode()
                if channel == self.snapshot_channel:
                    on_snapshot(message["data"], True)
                elif channel == self.refresh_channel:
                    on_refresh()
        except _ERRORS as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        finally:
            try:
                pubsub.close()
            except _ERRORS:
                pass

    def close(self) -> None:
        self._client.close()
