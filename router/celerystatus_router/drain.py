"""Moving jobs that waited in the legacy queue back to Celery.

Each job keeps its id as the Celery task id, and its legacy entry is
acknowledged only after the broker confirmed the publish.  A crash between
the two leaves the entry claimed; its lease runs out, it is drained again and
the consumer's de-duplication drops the second copy.  Nothing is lost, and no
job runs twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from .errors import SendFailed
from .legacy.base import LegacyQueue
from .metrics import RouterMetrics
from .outbox import RedisOutbox
from .producer import CeleryProducer

__all__ = ["DrainReport", "drain"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DrainReport:
    moved: int = 0
    stopped: str = ""
    """Why the drain stopped early ("" when the queue ran empty or the limit was reached)."""


def drain(
    queue: LegacyQueue,
    producer: CeleryProducer,
    *,
    max_jobs: int | None = None,
    healthy: Callable[[], bool] = lambda: True,
    metrics: RouterMetrics | None = None,
    outbox: RedisOutbox | None = None,
) -> DrainReport:
    """Move up to ``max_jobs`` waiting jobs to Celery while ``healthy()`` holds.

    Stops at the first failed publish (the job is released for a later drain):
    a broker that refuses one job will refuse the next.  A released job uses
    one of the queue's attempts, so a job can reach the dead letters after
    ``max_attempts`` failed drains.
    """
    report = DrainReport()
    while max_jobs is None or report.moved < max_jobs:
        if not healthy():
            report.stopped = "celery unhealthy"
            break
        claim = queue.claim(0.0)
        if claim is None:
            break
        try:
            producer.send(claim.job)
        except SendFailed as exc:
            queue.nack(claim, f"drain: {exc}")
            report.stopped = f"send failed: {exc}"
            break
        if outbox is not None:
            outbox.add(claim.job)
        if not queue.ack(claim):
            log.warning("drained job %s after its lease was taken over", claim.job.id)
        report.moved += 1
        if metrics is not None:
            metrics.drained.inc()
    return report
