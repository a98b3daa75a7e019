"""Broker connections with bounded failure, and queue depth read from the broker.

Celery's defaults retry a refused broker for seconds and wait on a frozen one
for much longer; a status service must say "disconnected" quickly instead, so
every connection made here has tight connect/read/write timeouts and no retries.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

from kombu.exceptions import OperationalError

from celerystatus.v1 import celery_status_pb2 as pb

from .celery_api import Channel, Connection, new_connection, new_queue

#: Exceptions that mean "the broker is unreachable or misbehaving". The type differs
#: between the first failure (socket errors) and later ones (kombu wraps them).
BROKER_ERRORS: tuple[type[BaseException], ...] = (OperationalError, OSError, socket.timeout, EOFError)


def _transport_errors(conn: Connection) -> tuple[type[BaseException], ...]:
    try:
        return tuple(conn.connection_errors) + tuple(conn.channel_errors)
    except Exception:
        return ()


def broker_errors(conn: Connection | None = None) -> tuple[type[BaseException], ...]:
    if conn is None:
        return BROKER_ERRORS
    return BROKER_ERRORS + _transport_errors(conn)


def transport_name(url: str) -> str:
    scheme = url.split("://", 1)[0].lower()
    if scheme in {"amqp", "amqps", "pyamqp"}:
        return "amqp"
    if scheme in {"redis", "rediss", "sentinel", "redis+socket"}:
        return "redis"
    return scheme


def bounded_transport_options(url: str, timeout: float, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The app's transport options with timeouts/retries clamped for fast failure."""
    options = dict(base or {})
    kind = transport_name(url)
    if kind == "redis":
        options.update(
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry_on_timeout=False,
            socket_keepalive=True,
            max_retries=0,
            health_check_interval=0,
        )
    elif kind == "amqp":
        options.update(read_timeout=timeout, write_timeout=timeout, max_retries=0)
    else:
        options.update(max_retries=0)
    return options


def open_connection(url: str, timeout: float, transport_options: dict[str, Any] | None = None) -> Connection:
    """Connect now (not lazily) with bounded timeouts; raises one of :data:`BROKER_ERRORS`."""
    conn = new_connection(
        url,
        connect_timeout=timeout,
        heartbeat=0,
        transport_options=bounded_transport_options(url, timeout, transport_options),
    )
    try:
        conn.ensure_connection(max_retries=0, interval_start=0, interval_step=0, timeout=timeout)
        # Redis connects lazily per channel: force a round trip so a frozen or refused
        # server is noticed here, not in the middle of a round.
        channel = conn.default_channel
        if transport_name(url) == "redis":
            channel.client.ping()
    except BaseException:
        _close_quietly(conn)
        raise
    return conn


def _close_quietly(conn: Connection) -> None:
    try:
        conn.release()
    except Exception:
        pass


close_quietly = _close_quietly


def queue_depths(conn: Connection, names: Iterable[str]) -> list[pb.QueueDepth]:
    """Messages waiting per queue; Redis sums every priority sub-list and honours the key prefix.

    AMQP answers a passive declare. On Redis a queue is several lists (one per
    priority step) under the transport's key prefix; kombu's channel knows both, so
    it is asked for the size directly (its passive declare ignores the prefix when
    checking that the queue exists). A queue that does not exist yet has zero messages.
    """
    result: list[pb.QueueDepth] = []
    kind = transport_name(conn.as_uri())
    if kind == "redis":
        # The default channel: a new one would open (and handshake) a new socket per round.
        channel = conn.default_channel
        return [pb.QueueDepth(name=n, messages=int(channel._size(n))) for n in sorted(set(names))]
    channel = conn.channel()
    try:
        for name in sorted(set(names)):
            try:
                ok = new_queue(name, channel=channel, no_declare=False).queue_declare(passive=True)
            except conn.channel_errors as exc:
                if _is_not_found(exc):
                    result.append(pb.QueueDepth(name=name, messages=0))
                    if kind == "amqp":  # AMQP closes the channel on a 404
                        _close_channel(channel)
                        channel = conn.channel()
                    continue
                raise
            depth = pb.QueueDepth(name=name, messages=int(ok.message_count))
            if kind == "amqp":
                depth.consumers = int(ok.consumer_count)
            result.append(depth)
    finally:
        _close_channel(channel)
    return result


def _is_not_found(exc: BaseException) -> bool:
    code = getattr(exc, "code", None) or getattr(exc, "reply_code", None)
    return code == 404 or "NOT_FOUND" in str(exc) or "no queue" in str(exc).lower()


def _close_channel(channel: Channel) -> None:
    try:
        channel.close()
    except Exception:
        pass
