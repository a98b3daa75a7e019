"""The loop that works off a legacy queue: claim, run, acknowledge."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..errors import LegacyQueueError
from ..jobs import Job
from .base import LegacyQueue

__all__ = ["LegacyConsumer"]

log = logging.getLogger(__name__)


class LegacyConsumer:
    """Runs ``handler(job)`` for each claimed job; acknowledges on return, releases on error.

    A job is acknowledged only after the handler returned, so a consumer that
    dies mid-job leaves it claimed until its lease runs out, when ``recover``
    (called every ``recover_interval`` seconds by every consumer) or the
    queue's own claim hands it to another consumer.  Handlers must therefore be
    idempotent: de-duplicate on ``job.id`` (see :mod:`celerystatus_router.dedupe`).
    """

    def __init__(
        self,
        queue: LegacyQueue,
        handler: Callable[[Job], object],
        *,
        claim_timeout: float = 1.0,
        recover_interval: float = 5.0,
    ) -> None:
        self.queue = queue
        self.handler = handler
        self.claim_timeout = claim_timeout
        self.recover_interval = recover_interval
        self.processed = 0
        self.failed = 0
        self._stop = threading.Event()
        self._next_recover = 0.0

    def stop(self) -> None:
        self._stop.set()

    def run_once(self, timeout: float | None = None) -> bool:
        """Handle at most one job; False when none was waiting."""
        now = time.monotonic()
        if now >= self._next_recover:
            self._next_recover = now + self.recover_interval
            recovered = self.queue.recover()
            if recovered:
                log.warning("recovered %d job(s) whose consumer stopped", recovered)
        claim = self.queue.claim(self.claim_timeout if timeout is None else timeout)
        if claim is None:
            return False
        try:
            self.handler(claim.job)
        except Exception as exc:
            self.failed += 1
            log.exception("job %s failed (attempt %d)", claim.job.id, claim.attempts)
            self.queue.nack(claim, f"{type(exc).__name__}: {exc}")
            return True
        if not self.queue.ack(claim):
            log.warning("job %s finished after its lease was taken over", claim.job.id)
        self.processed += 1
        return True

    def run(self, *, max_jobs: int | None = None, exit_when_idle: bool = False) -> int:
        """Consume until :meth:`stop`, ``max_jobs`` handled, or (optionally) the queue is empty."""
        start = self.processed + self.failed
        # An outage is logged when it starts, when its cause changes and when it
        # ends: one line, not a traceback per retry.
        outage: str | None = None
        outage_since = 0.0
        while not self._stop.is_set():
            if max_jobs is not None and self.processed + self.failed - start >= max_jobs:
                break
            try:
                worked = self.run_once()
            except LegacyQueueError as exc:
                if str(exc) != outage:
                    if outage is None:
                        outage_since = time.monotonic()
                    outage = str(exc)
                    log.warning("legacy queue unavailable, retrying every second: %s", exc)
                self._stop.wait(1.0)
                continue
            if outage is not None:
                log.warning("legacy queue available again after %.1fs", time.monotonic() - outage_since)
                outage = None
            if not worked and exit_when_idle:
                break
        return self.processed + self.failed - start
