"""The router's exception tree: every failure it raises derives from :class:`RoutingError`.

Flat on purpose (as in redis-py): callers catch ``RoutingError`` for "this job was not
accepted anywhere" and the subclasses only when they want to tell the causes apart.
"""

from __future__ import annotations

__all__ = [
    "DedupeError",
    "JobNotRouted",
    "LegacyQueueError",
    "RoutingError",
    "SendFailed",
    "SendTimeout",
]


class RoutingError(Exception):
    """Base class of the router's errors."""


class SendFailed(RoutingError):
    """Celery did not confirm the publish (broker refused, connection lost, no confirm)."""


class SendTimeout(SendFailed):
    """The publish did not finish within the send deadline.

    ``maybe_published`` is False only when the publish was withdrawn before it
    started; otherwise the message may still reach the broker.
    """

    def __init__(self, message: str, *, maybe_published: bool = True) -> None:
        super().__init__(message)
        self.maybe_published = maybe_published


class LegacyQueueError(RoutingError):
    """The legacy queue could not store, claim or acknowledge a job."""


class JobNotRouted(RoutingError):
    """Neither Celery nor the legacy queue accepted the job: the caller still owns it.

    ``job_id`` is the id the job was given; retrying with the same id is safe because
    consumers de-duplicate on it.
    """

    def __init__(self, job_id: str, celery_error: BaseException | None, legacy_error: BaseException) -> None:
        self.job_id = job_id
        self.celery_error = celery_error
        self.legacy_error = legacy_error
        cause = f"; Celery: {celery_error}" if celery_error is not None else " (Celery was not tried)"
        super().__init__(f"job {job_id} was not routed: legacy queue: {legacy_error}{cause}")


class DedupeError(RoutingError):
    """The idempotency store could not be read or written."""
