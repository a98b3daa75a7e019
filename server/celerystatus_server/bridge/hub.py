"""One WatchStatus stream per variant per bridge process, fanned out to every consumer.

WebSockets, metrics and anything else that wants live snapshots read from a
hub, so the number of gRPC streams does not grow with the number of sockets.
There is one hub for the redacted variant (viewers, metrics) and one, started
only when an admin first asks, for the full variant.
Each subscriber owns a single slot holding only the newest snapshot it has not
read: a slow consumer skips snapshots instead of queueing them, so memory per
subscriber is constant.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from celerystatus.models import CeleryStatus
from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc

from .backend import describe, unavailable_status

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """A status as JSON-ready data, converted and encoded once for all consumers."""

    data: dict[str, Any]
    text: str
    #: ``time.monotonic()`` when the bridge received it; ages it between messages.
    received_at: float
    #: False for the placeholder published while the backend is unreachable.
    from_backend: bool = True

    @classmethod
    def of(cls, data: dict[str, Any], *, from_backend: bool = True) -> Snapshot:
        return cls(
            data=data,
            text=json.dumps(data, separators=(",", ":")),
            received_at=time.monotonic(),
            from_backend=from_backend,
        )

    @classmethod
    def from_proto(cls, status: pb.CeleryStatus) -> Snapshot:
        return cls.of(CeleryStatus.from_proto(status).to_dict())


@dataclass(eq=False)
class Subscription:
    """A latest-only mailbox. Iterate it; iteration ends when the hub stops."""

    _slot: Snapshot | None = None
    _closed: bool = False
    _event: asyncio.Event = field(default_factory=asyncio.Event)
    #: Snapshots replaced before this subscriber read them.
    skipped: int = 0

    def offer(self, snapshot: Snapshot) -> None:
        if self._slot is not None:
            self.skipped += 1
        self._slot = snapshot
        self._event.set()

    def close(self) -> None:
        self._closed = True
        self._event.set()

    @property
    def closed(self) -> bool:
        return self._closed

    async def next(self) -> Snapshot | None:
        """The newest unread snapshot, waiting for one; None once closed."""
        while self._slot is None and not self._closed:
            self._event.clear()
            await self._event.wait()
        if self._closed:
            return None
        snapshot, self._slot = self._slot, None
        return snapshot

    def __aiter__(self) -> AsyncIterator[Snapshot]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Snapshot]:
        while (snapshot := await self.next()) is not None:
            yield snapshot


Listener = Callable[[Snapshot], None]


class StatusHub:
    """Keeps one WatchStatus stream open, reconnecting with jittered backoff."""

    def __init__(
        self,
        stub: pb_grpc.CeleryStatusServiceStub,
        *,
        backoff_initial: float = 0.1,
        backoff_max: float = 2.0,
        redact_args: bool = False,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._stub = stub
        self.redact_args = redact_args
        self._metadata = metadata
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._subscribers: set[Subscription] = set()
        self._listeners: list[Listener] = []
        self._latest: Snapshot | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.stream_connected = False
        #: Streams opened so far; 1 while nothing failed.
        self.streams_opened = 0
        self.last_error: str | None = None
        self._changed = asyncio.Condition()

    @property
    def latest(self) -> Snapshot | None:
        return self._latest

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` synchronously with every snapshot the hub publishes."""
        self._listeners.append(listener)

    @property
    def started(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if self._task is None and not self._stopping:
            self._task = asyncio.create_task(self._run(), name="celery-status-hub")

    async def stop(self) -> None:
        self._stopping = True
        for subscription in list(self._subscribers):
            subscription.close()
        self._subscribers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.stream_connected = False

    @contextlib.contextmanager
    def subscribe(self) -> Any:
        """A subscription primed with the current snapshot, removed on exit."""
        subscription = Subscription()
        if self._stopping:
            subscription.close()
        else:
            if self._latest is not None:
                subscription.offer(self._latest)
            self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)

    async def wait_for(self, predicate: Callable[[Snapshot], bool], timeout: float) -> Snapshot:
        """The first published snapshot (current one included) matching ``predicate``."""

        async def matched() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: self._latest is not None and predicate(self._latest))

        await asyncio.wait_for(matched(), timeout)
        assert self._latest is not None
        return self._latest

    async def _publish(self, snapshot: Snapshot) -> None:
        self._latest = snapshot
        for subscription in self._subscribers:
            subscription.offer(snapshot)
        for listener in self._listeners:
            try:
                listener(snapshot)
            except Exception:  # a broken metric must not stop the stream
                log.exception("snapshot listener failed")
        async with self._changed:
            self._changed.notify_all()

    async def _run(self) -> None:
        delay = self._backoff_initial
        while not self._stopping:
            request = pb.WatchStatusRequest(view=pb.STATUS_VIEW_FULL, redact_args=self.redact_args)
            call = self._stub.WatchStatus(request, metadata=self._metadata or None)
            self.streams_opened += 1
            try:
                async for message in call:
                    self.stream_connected = True
                    self.last_error = None
                    delay = self._backoff_initial
                    await self._publish(Snapshot.from_proto(message.status))
                self.last_error = "stream ended"
            except grpc.aio.AioRpcError as error:
                self.last_error = describe(error)
            except asyncio.CancelledError:
                call.cancel()
                raise
            self.stream_connected = False
            if self._latest is None or self._latest.from_backend:
                # Consumers learn about the outage instead of showing the last
                # good snapshot as if it were current.
                log.warning("status stream lost (%s); reconnecting", self.last_error)
                await self._publish(Snapshot.of(unavailable_status(), from_backend=False))
            # Jitter keeps many bridges from reconnecting in lockstep.
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self._backoff_max)
