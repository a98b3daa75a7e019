"""Celery's and kombu's untyped API, typed at one boundary.

Neither library ships usable annotations: kombu's constructors and most of its
connection/channel methods are unannotated, and Celery's ``app.task`` is an
untyped decorator. Under ``mypy --strict`` every use would need an ignore, so
the objects are handed out here under named ``Any`` aliases instead: the rest of
the server is checked strictly, and each signature states which kombu object
flows through it, even though kombu itself promises nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from kombu import connection as _connection
from kombu import messaging as _messaging
from kombu import serialization as _serialization
from kombu.utils import json as _json

__all__ = [
    "Channel",
    "Connection",
    "Consumer",
    "Message",
    "Producer",
    "Queue",
    "loads",
    "new_connection",
    "new_consumer",
    "new_producer",
    "new_queue",
    "prepare_accept_content",
    "task",
]

#: A ``kombu.Connection``.
Connection: TypeAlias = Any
#: A transport channel (``kombu.transport.redis.Channel``, py-amqp's ``Channel``, ...).
Channel: TypeAlias = Any
#: A ``kombu.Queue``, bound or not.
Queue: TypeAlias = Any
#: A ``kombu.Consumer``.
Consumer: TypeAlias = Any
#: A ``kombu.Producer``.
Producer: TypeAlias = Any
#: A received ``kombu.Message``.
Message: TypeAlias = Any

new_connection: Callable[..., Connection] = _connection.Connection
new_queue: Callable[..., Queue] = _messaging.Queue
new_consumer: Callable[..., Consumer] = _messaging.Consumer
new_producer: Callable[..., Producer] = _messaging.Producer

loads: Callable[[bytes], Any] = _json.loads
prepare_accept_content: Callable[[Any], Any] = _serialization.prepare_accept_content


def task(app: Any, name: str) -> Callable[[Callable[..., Any]], Any]:
    """``@app.task(name=...)``; the result is a Celery task object (untyped)."""
    decorator: Callable[[Callable[..., Any]], Any] = app.task(name=name)
    return decorator
