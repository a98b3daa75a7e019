"""How many workers a Celery cluster needs: the one computation everything shares.

:func:`desired_workers` is used by :func:`celerystatus.analysis.scaling_advice`,
by the status server's KEDA external scaler and by the bridge's
``celery_workers_desired`` gauge, so the three never disagree on the same
snapshot. Its inputs are a :class:`ClusterLoad`, read from one snapshot with
:meth:`ClusterLoad.of` (optionally for some queues only):

* ``active``: tasks executing now;
* ``reserved``: tasks prefetched by a worker, waiting for a free pool slot;
* ``waiting``: messages still in the broker queues;
* ``workers`` and ``capacity``: live workers and the sum of their pool sizes
  (``max-concurrency``), whose ratio is the mean pool concurrency.

Scheduled tasks (waiting for an ETA) are not demand: they hold no pool slot
until their time comes.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Collection
from dataclasses import dataclass

from celerystatus.models import CeleryStatus, TaskState

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_TARGET_UTILISATION",
    "ClusterLoad",
    "ScalingMetric",
    "desired_workers",
]

#: Tasks per worker assumed while no worker is live to tell its pool size
#: (Celery's default concurrency is the CPU count; 4 is a common pod size).
DEFAULT_CONCURRENCY = 4
#: Share of the pool ``scaling_advice`` (and ``celery_workers_desired``) plans
#: to keep busy, leaving headroom for bursts between two decisions.
DEFAULT_TARGET_UTILISATION = 0.8


class ScalingMetric(str, enum.Enum):
    """What counts as demand."""

    BACKLOG = "backlog"
    """Every task wanting a pool slot: active + reserved + waiting in the broker."""
    WAITING = "waiting"
    """Only the messages waiting in the broker (like a queue-length scaler)."""
    SATURATION = "saturation"
    """The backlog as a fraction of the live pool slots; its target is a fraction too."""


@dataclass(frozen=True, slots=True)
class ClusterLoad:
    """The inputs of :func:`desired_workers`, from one snapshot."""

    workers: int = 0
    capacity: int = 0
    """Pool slots of the live workers (sum of ``max-concurrency``)."""
    active: int = 0
    reserved: int = 0
    waiting: int = 0
    """Messages waiting in the broker."""

    @classmethod
    def of(cls, status: CeleryStatus, queues: Collection[str] | None = None) -> ClusterLoad:
        """The load of the whole cluster, or of the given queues only.

        For a queue selection, a worker counts when it consumes at least one
        of the queues, and an active or reserved task counts when it was
        delivered from one of them (its routing key is the queue's name, as
        with Celery's default direct routing); this needs a snapshot with its
        task lists (not the summary view).
        """
        if queues is None:
            return cls(
                workers=status.workers,
                capacity=sum(s.pool.max_concurrency for s in status.worker_stats.values()),
                active=status.active_tasks,
                reserved=status.reserved_tasks,
                waiting=sum(q.messages for q in status.queues),
            )
        wanted = frozenset(queues)
        consuming = [s for s in status.worker_stats.values() if wanted.intersection(s.active_queues)]
        in_queues = [t for t in status.tasks() if t.routing_key in wanted]
        return cls(
            workers=len(consuming),
            capacity=sum(s.pool.max_concurrency for s in consuming),
            active=sum(1 for t in in_queues if t.state is TaskState.ACTIVE),
            reserved=sum(1 for t in in_queues if t.state is TaskState.RESERVED),
            waiting=sum(q.messages for q in status.queues if q.name in wanted),
        )

    @property
    def backlog(self) -> int:
        return self.active + self.reserved + self.waiting

    @property
    def mean_concurrency(self) -> float | None:
        """Pool slots per live worker; ``None`` while no worker is live."""
        return self.capacity / self.workers if self.workers and self.capacity else None

    @property
    def saturation(self) -> float:
        """Backlog per pool slot: 1.0 is every slot busy with nothing waiting.

        Infinite when work waits and no worker is live.
        """
        if self.capacity:
            return self.backlog / self.capacity
        return math.inf if self.backlog else 0.0

    def value(self, metric: ScalingMetric) -> float:
        """The metric's observed value (what an activation threshold compares against)."""
        if metric is ScalingMetric.WAITING:
            return float(self.waiting)
        if metric is ScalingMetric.SATURATION:
            return self.saturation
        return float(self.backlog)


def desired_workers(
    load: ClusterLoad,
    *,
    metric: ScalingMetric = ScalingMetric.BACKLOG,
    per_worker: float | None = None,
    utilisation: float = 1.0,
    default_concurrency: int = DEFAULT_CONCURRENCY,
) -> int:
    """Workers needed for the demand, before any min/max clamp::

        demand     = waiting                    (metric WAITING)
                     active + reserved + waiting (BACKLOG, SATURATION)
        per_worker = per_worker, else the mean pool concurrency of the live
                     workers, else default_concurrency
        desired    = ceil(demand / (per_worker * utilisation))

    ``utilisation`` is the share of each worker's ``per_worker`` to plan for:
    ``scaling_advice`` plans for 0.8 of the pool; the SATURATION metric of the
    KEDA scaler takes it from its target. 0 when there is no demand.
    """
    if per_worker is not None and not per_worker > 0:
        raise ValueError("per_worker must be > 0")
    if not utilisation > 0:
        raise ValueError("utilisation must be > 0")
    if default_concurrency < 1:
        raise ValueError("default_concurrency must be >= 1")
    demand = load.waiting if metric is ScalingMetric.WAITING else load.backlog
    if demand <= 0:
        return 0
    slots = per_worker if per_worker is not None else (load.mean_concurrency or float(default_concurrency))
    # A tolerance keeps float noise (e.g. 8 / (4 * 0.8) * 0.8) from adding a worker.
    return math.ceil(demand / (slots * utilisation) - 1e-9)
