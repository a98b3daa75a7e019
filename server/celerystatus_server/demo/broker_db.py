"""The demo's Redis database: claimed when the demo starts, emptied of the demo's keys when it stops.

The demo runs in a database of its own (``--redis-url .../15`` by default) so
that its workers, queues and broadcasts never meet an application using the
same Redis: Celery's broadcast channels are per database. It refuses a
database holding anything but its own leftovers, and on exit deletes the keys
it and its workers created (queues, bindings, unacked bookkeeping).
"""

from __future__ import annotations

import os

import redis

from .tasks import QUEUE

__all__ = ["MARKER", "DatabaseInUseError", "claim", "release"]

#: Set while a demo owns the database; a database holding only demo keys is
#: a previous demo's leftovers (one that was SIGKILLed) and may be reused.
MARKER = "celery-status-demo:owner"
#: What kombu and the demo's workers write: the demo queue (and its priority
#: sub-lists), kombu's exchange bindings and their bookkeeping, remote-control
#: reply queues, and the unacked-message bookkeeping.
DEMO_KEYS = (f"{QUEUE}*", "_kombu.*", "*.reply.celery.pidbox", "unacked*", MARKER)


class DatabaseInUseError(RuntimeError):
    """The database holds keys that are not the demo's."""


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def _demo_keys(client: redis.Redis) -> set[bytes]:
    return {key for pattern in DEMO_KEYS for key in client.scan_iter(match=pattern, count=500)}


def claim(url: str) -> None:
    """Marks the database as the demo's; raises DatabaseInUseError if anything else is in it."""
    client = _client(url)
    try:
        size = int(client.dbsize())
        foreign = size - len(_demo_keys(client)) if size else 0
        if foreign > 0:
            # Named by number only: the URL may carry a password.
            db = client.connection_pool.connection_kwargs.get("db", 0)
            raise DatabaseInUseError(
                f"Redis database {db} holds {foreign} keys that are not the demo's; "
                "give it an empty database with --redis-url redis://HOST:PORT/N"
            )
        client.set(MARKER, str(os.getpid()))
    finally:
        client.close()


def release(url: str) -> int:
    """Deletes the demo's keys; returns how many there were."""
    client = _client(url)
    try:
        keys = sorted(_demo_keys(client))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()
