"""One WatchStatus stream per variant per bridge process, fanned out to every consumer.

WebSockets, metrics and anything else that wants live snapshots read from a
hub, so the number of gRPC streams does not grow with the number of sockets.
There is one hub for the redacted variant (viewers, metrics) and one, started
only when an admin first asks, for the full variant.
Each subscriber owns a single slot holding only the newest snapshot it has not
read: a slow consumer skips snapshots instead of queueing them, so memory per
subscriber is constant.
The stream itself, and its reconnection, are the SDK's (``Upstream.watch``);
the hub only turns each gap into a placeholder its consumers can see.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from celerystatus import CeleryStatus, CeleryStatusError, StatusView
from celerystatus.models import QueueDetails

from .representation import StatusDocument
from .upstream import Upstream, unavailable_status

__all__ = ["EncodedStatus", "FrameHub", "Listener", "StatusHub", "Subscription"]

log = logging.getLogger(__name__)


_EMPTY_DETAILS = QueueDetails().to_dict()


@dataclass(frozen=True)
class EncodedStatus:
    """A status as JSON-ready data, converted and encoded once for all consumers."""

    data: dict[str, Any]
    #: The WebSocket frame, encoded once and sent to every socket.
    text: str
    #: ``time.monotonic()`` when the bridge received it; ages it between messages.
    received_at: float
    #: False for the placeholder published while the backend is unreachable.
    from_backend: bool = True
    _documents: dict[StatusView, StatusDocument] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, data: dict[str, Any], *, from_backend: bool = True) -> EncodedStatus:
        return cls(
            data=data,
            text=orjson.dumps(data).decode(),
            received_at=time.monotonic(),
            from_backend=from_backend,
        )

    def document(self, view: StatusView) -> StatusDocument:
        """The HTTP body of this status in ``view``, built on first use and then shared."""
        document = self._documents.get(view)
        if document is None:
            data = self.data
            if view is StatusView.SUMMARY:
                data = {**data, "queue_details": _EMPTY_DETAILS}
            document = self._documents[view] = StatusDocument(data, self.received_at)
        return document

    @property
    def refresh_interval(self) -> float | None:
        value = (self.data.get("inspection") or {}).get("refresh_interval")
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    @classmethod
    def from_status(cls, status: CeleryStatus) -> EncodedStatus:
        return cls.of(status.to_dict())


@dataclass(eq=False)
class Subscription:
    """A latest-only mailbox. Iterate it; iteration ends when the hub stops."""

    _slot: EncodedStatus | None = None
    _closed: bool = False
    _event: asyncio.Event = field(default_factory=asyncio.Event)
    #: Snapshots replaced before this subscriber read them.
    skipped: int = 0

    def offer(self, snapshot: EncodedStatus) -> None:
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

    async def next(self) -> EncodedStatus | None:
        """The newest unread snapshot, waiting for one; None once closed."""
        while self._slot is None and not self._closed:
            self._event.clear()
            await self._event.wait()
        if self._closed:
            return None
        snapshot, self._slot = self._slot, None
        return snapshot

    def __aiter__(self) -> AsyncIterator[EncodedStatus]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[EncodedStatus]:
        while (snapshot := await self.next()) is not None:
            yield snapshot


Listener = Callable[[EncodedStatus], None]


class FrameHub:
    """One background stream whose frames go to every subscription (latest only).

    Subclasses run the stream in :meth:`_run` and hand each frame to :meth:`_offer`.
    """

    _task_name = "celery-status-hub"

    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        #: The frame a new subscription starts with.
        self._frame: EncodedStatus | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.stream_connected = False
        self.last_error: str | None = None

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def started(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if self._task is None and not self._stopping:
            self._task = asyncio.create_task(self._run(), name=self._task_name)

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
    def subscribe(self) -> Iterator[Subscription]:
        """A subscription primed with the current frame, removed on exit."""
        subscription = Subscription()
        if self._stopping:
            subscription.close()
        else:
            if self._frame is not None:
                subscription.offer(self._frame)
            self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)

    def _offer(self, frame: EncodedStatus) -> None:
        self._frame = frame
        for subscription in self._subscribers:
            subscription.offer(frame)

    async def _run(self) -> None:
        raise NotImplementedError


class StatusHub(FrameHub):
    """Keeps one status stream of ``upstream`` open and publishes what it delivers."""

    def __init__(self, upstream: Upstream, *, redact_args: bool = False) -> None:
        super().__init__()
        self._upstream = upstream
        self.redact_args = redact_args
        self._listeners: list[Listener] = []
        #: Set and replaced on every publication; wait_for waits on it.
        self._changed = asyncio.Event()

    @property
    def latest(self) -> EncodedStatus | None:
        return self._frame

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` synchronously with every snapshot the hub publishes."""
        self._listeners.append(listener)

    async def wait_for(self, predicate: Callable[[EncodedStatus], bool], timeout: float) -> EncodedStatus:
        """The first published snapshot (current one included) matching ``predicate``."""

        async def matched() -> EncodedStatus:
            while self._frame is None or not predicate(self._frame):
                await self._changed.wait()
            return self._frame

        return await asyncio.wait_for(matched(), timeout)

    def _publish(self, snapshot: EncodedStatus) -> None:
        self._offer(snapshot)
        for listener in self._listeners:
            try:
                listener(snapshot)
            except Exception:  # a broken metric must not stop the stream
                log.exception("snapshot listener failed")
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _lost(self, error: CeleryStatusError) -> None:
        self.stream_connected = False
        self.last_error = str(error)
        if self._frame is None or self._frame.from_backend:
            # Consumers learn about the outage instead of showing the last
            # good snapshot as if it were current.
            log.warning("status stream lost (%s); reconnecting", self.last_error)
            self._publish(EncodedStatus.of(unavailable_status(), from_backend=False))

    async def _run(self) -> None:
        try:
            async for status in self._upstream.watch(redact_args=self.redact_args, on_disconnect=self._lost):
                self.stream_connected = True
                self.last_error = None
                self._publish(EncodedStatus.from_status(status))
        except asyncio.CancelledError:
            raise
        except Exception:  # the SDK resumes after every call error; this is a bug, say so
            log.exception("status stream failed for good")
        self.stream_connected = False
