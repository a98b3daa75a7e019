"""When a status snapshot counts as healthy enough to send jobs to Celery."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from celerystatus.models import CeleryStatus

__all__ = ["HealthPolicy"]


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """Turns one :class:`~celerystatus.CeleryStatus` into "healthy" or the reason it is not.

    ``max_queue_depth`` caps the messages waiting in the broker queues named in
    ``queues`` (every reported queue when empty).  ``max_saturation`` caps
    ``(active + reserved + scheduled + waiting messages) / worker slots``, where the
    slots are the workers' summed pool concurrency: above 1.0 work queues up faster
    than the cluster takes it.
    """

    require_enabled: bool = True
    require_connected: bool = True
    allow_stale: bool = False
    min_workers: int = 1
    max_age: float | None = None
    """Seconds; an older snapshot is unhealthy (the collector has stopped)."""
    max_queue_depth: int | None = None
    max_saturation: float | None = None
    queues: Collection[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.min_workers < 0:
            raise ValueError("min_workers must not be negative")
        if self.max_queue_depth is not None and self.max_queue_depth < 0:
            raise ValueError("max_queue_depth must not be negative")
        if self.max_saturation is not None and self.max_saturation <= 0:
            raise ValueError("max_saturation must be positive")
        if self.max_age is not None and self.max_age <= 0:
            raise ValueError("max_age must be positive")

    def assess(self, status: CeleryStatus) -> str | None:
        """None when ``status`` is healthy, else a short reason."""
        if self.require_enabled and not status.enabled:
            return "celery disabled"
        if self.require_connected and not status.connected:
            return "broker not connected"
        if not self.allow_stale and status.stale:
            return "status stale"
        if self.max_age is not None and status.age is not None and status.age > self.max_age:
            return f"status {status.age:.1f}s old > {self.max_age:g}s"
        if status.workers < self.min_workers:
            return f"workers {status.workers} < {self.min_workers}"
        waiting = self.queue_depth(status)
        if self.max_queue_depth is not None and waiting > self.max_queue_depth:
            return f"queue depth {waiting} > {self.max_queue_depth}"
        if self.max_saturation is not None:
            saturation = self.saturation(status, waiting)
            if saturation > self.max_saturation:
                return f"saturation {saturation:.2f} > {self.max_saturation:g}"
        return None

    def queue_depth(self, status: CeleryStatus) -> int:
        wanted = set(self.queues)
        return sum(q.messages for q in status.queues if not wanted or q.name in wanted)

    def saturation(self, status: CeleryStatus, waiting: int | None = None) -> float:
        slots = sum(stats.pool.max_concurrency or 0 for stats in status.worker_stats.values())
        if slots <= 0:
            slots = status.workers  # no pool details: assume one slot each
        load = status.active_tasks + status.reserved_tasks + status.scheduled_tasks
        load += self.queue_depth(status) if waiting is None else waiting
        return float("inf") if slots <= 0 and load else (load / slots if slots else 0.0)
