"""Records the snapshot stream into the history store without ever being in the way.

Two threads of its own: the *sampler* waits on the snapshot store's change
notification and turns snapshots into samples and task runs (cheap, no I/O);
the *writer* drains a bounded buffer into the database in batches. A slow,
locked or unreachable database only fills the buffer; once it is full the
oldest items are dropped and counted, the state turns ``degraded``, and the
writer keeps retrying with back-off until the database answers again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from celerystatus.v1 import celery_status_pb2 as pb

from ..snapshot import SnapshotStore
from .migrate import SchemaTooNew
from .sampling import Sampler
from .store import HistoryStore, Sample, TaskRunRecord, describe_url

log = logging.getLogger(__name__)

#: Items written per transaction.
BATCH = 200
#: A write running longer than this marks the store degraded while it runs.
SLOW_WRITE_S = 5.0
BACKOFF_MIN_S = 0.2
BACKOFF_MAX_S = 5.0
#: Roll-ups and retention run this often (by the store's clock).
MAINTENANCE_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class RecorderState:
    degraded: bool
    error: str
    dropped: int
    buffered: int
    written: int
    last_write: float | None


class HistoryRecorder:
    """Owns the sampler and writer threads; ``start()``, ``stop()``, ``info()``."""

    def __init__(
        self,
        snapshots: SnapshotStore,
        store: HistoryStore,
        *,
        interval: float = 10.0,
        buffer: int = 1000,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.snapshots = snapshots
        self.store = store
        self.interval = interval
        self.sampler = Sampler(interval)
        self._wall_clock = wall_clock
        self._buffer: deque[Sample | TaskRunRecord] = deque()
        self._capacity = max(1, buffer)
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._dropped = 0
        self._written = 0
        self._error = ""
        self._schema_ready = False
        self._write_started: float | None = None
        self._last_write: float | None = None
        self._next_maintenance = 0.0
        self._in_flight = 0
        #: Version of the last snapshot the sampler looked at.
        self.seen_version = 0

    # -- lifecycle ------------------------------------------------------------------
    def prepare(self) -> None:
        """Apply migrations now; a newer schema is fatal, an unreachable database is not.

        The writer retries an unreachable database in the background, so the
        service starts (degraded) during a database outage.
        """
        try:
            before, after = self.store.upgrade()
        except SchemaTooNew:
            raise
        except Exception as exc:  # any driver error: keep running, report, retry later
            self._fail(exc)
            return
        self._schema_ready = True
        if before != after:
            log.info("history store %s upgraded from %s to %s", describe_url(self.store.url), before, after)

    def start(self) -> None:
        if self._threads:
            return
        for target, name in ((self._sample_loop, "history-sampler"), (self._write_loop, "history-writer")):
            thread = threading.Thread(target=target, name=f"celery-status-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 3.0) -> None:
        """Stop sampling, give the writer ``timeout`` seconds to flush, then close."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = any(thread.is_alive() for thread in self._threads)
        self._threads = []
        if not alive:
            self.store.close()

    # -- state --------------------------------------------------------------------------
    def state(self) -> RecorderState:
        with self._cond:
            error = self._error
            started = self._write_started
            buffered = len(self._buffer)
            dropped = self._dropped
        if not error and started is not None and time.monotonic() - started > SLOW_WRITE_S:
            error = f"history store slow: a write has been running for {time.monotonic() - started:.0f}s"
        return RecorderState(
            degraded=bool(error),
            error=error,
            dropped=dropped,
            buffered=buffered,
            written=self._written,
            last_write=self._last_write,
        )

    def info(self) -> pb.HistoryInfo:
        state = self.state()
        msg = pb.HistoryInfo(
            state=pb.HISTORY_STATE_DEGRADED if state.degraded else pb.HISTORY_STATE_OK,
            dropped=state.dropped,
            error=state.error,
            buffered=state.buffered,
        )
        msg.interval.FromNanoseconds(int(self.interval * 1e9))
        if state.last_write is not None:
            msg.last_write.FromNanoseconds(int(state.last_write * 1e9))
        return msg

    # -- sampler ------------------------------------------------------------------------
    def observe(self, status: pb.CeleryStatus) -> None:
        """Feed one snapshot (the sampler thread does this; tests and benchmarks may too)."""
        sample, runs = self.sampler.observe(status, self._wall_clock())
        if sample is None and not runs:
            return
        with self._cond:
            items: list[Sample | TaskRunRecord] = [*runs]
            if sample is not None:
                items.append(sample)
            for item in items:
                if len(self._buffer) >= self._capacity:
                    self._buffer.popleft()
                    self._dropped += 1
                self._buffer.append(item)
            self._cond.notify()

    def _sample_loop(self) -> None:
        version = self.snapshots.latest().version
        while not self._stopping.is_set():
            snap = self.snapshots.wait_newer_blocking(version, timeout=0.5)
            if snap is None:
                continue
            version = snap.version
            try:
                self.observe(snap.status)
            except Exception:  # a bug here must not end history for the process
                log.exception("history sampler failed on snapshot %d", version)
            self.seen_version = version

    # -- writer -------------------------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        text = f"history store unavailable: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        with self._cond:
            if text != self._error:
                log.warning("%s (%s)", text, describe_url(self.store.url))
            self._error = text.rstrip(": ")

    def _take(self) -> list[Sample | TaskRunRecord]:
        with self._cond:
            while not self._buffer and not self._stopping.is_set():
                self._cond.wait(0.5)
                if self.store.clock() >= self._next_maintenance:
                    break
            batch = [self._buffer.popleft() for _ in range(min(BATCH, len(self._buffer)))]
            self._in_flight = len(batch)
            return batch

    def _give_back(self, batch: list[Sample | TaskRunRecord]) -> None:
        with self._cond:
            room = self._capacity - len(self._buffer)
            keep = batch[len(batch) - room:] if room < len(batch) else batch
            self._dropped += len(batch) - len(keep)
            self._buffer.extendleft(reversed(keep))

    def _write_loop(self) -> None:
        backoff = BACKOFF_MIN_S
        while True:
            if not self._schema_ready:
                if self._stopping.is_set():
                    return
                try:
                    self.prepare()
                except SchemaTooNew as exc:
                    self._fail(exc)
                if not self._schema_ready:
                    self._stopping.wait(backoff)
                    backoff = min(BACKOFF_MAX_S, backoff * 2)
                    continue
            batch = self._take()
            if not batch and self._stopping.is_set():
                return
            try:
                if batch:
                    self._write(batch)
                self._maybe_maintain()
            except Exception as exc:  # any driver error: keep the batch, report, back off
                self._fail(exc)
                if self._stopping.is_set():
                    return
                self._stopping.wait(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
                continue
            finally:
                with self._cond:
                    self._in_flight = 0
            backoff = BACKOFF_MIN_S

    def _write(self, batch: list[Sample | TaskRunRecord]) -> None:
        samples = [item for item in batch if isinstance(item, Sample)]
        runs = [item for item in batch if isinstance(item, TaskRunRecord)]
        with self._cond:
            self._write_started = time.monotonic()
        try:
            self.store.write(samples, runs)
        except Exception:
            self._give_back(batch)
            raise
        finally:
            with self._cond:
                self._write_started = None
        with self._cond:
            self._written += len(batch)
            self._last_write = self._wall_clock()
            if self._error:
                log.warning("history store recovered (%s)", describe_url(self.store.url))
            self._error = ""

    def _maybe_maintain(self) -> None:
        now = self.store.clock()
        if now < self._next_maintenance:
            return
        self._next_maintenance = now + MAINTENANCE_EVERY_S
        self.store.maintain()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the buffer is empty and no write runs (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                if not self._buffer and not self._in_flight and not self._error:
                    return True
            time.sleep(0.02)
        return False


def off_info() -> pb.HistoryInfo:
    return pb.HistoryInfo(state=pb.HISTORY_STATE_OFF)
