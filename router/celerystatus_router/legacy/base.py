"""The contract between the router and a legacy queue.

A user with another legacy system implements :class:`LegacyQueue` (five
methods) and passes it to the router; the consumer loop and the drain work
with any implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..jobs import Job

__all__ = ["Claim", "LegacyQueue"]


@dataclass(frozen=True, slots=True)
class Claim:
    """A job taken by one consumer; hand it back to ``ack`` or ``nack``.

    ``token`` identifies this claim to the queue (a consumer whose lease ran out
    and whose job was re-claimed by another can no longer acknowledge it).
    ``attempts`` counts claims of the job, this one included.
    """

    job: Job
    token: str
    attempts: int = 1


@runtime_checkable
class LegacyQueue(Protocol):
    """A durable queue with at-least-once delivery and leases.

    ``push`` must not return before the job is stored.  A claimed job that is
    neither acknowledged nor released within the lease is given to another
    consumer (by ``claim`` itself or by ``recover``).
    """

    def push(self, job: Job) -> None:
        """Store ``job``; raise :class:`~celerystatus_router.LegacyQueueError` if that fails."""

    def claim(self, timeout: float = 0.0) -> Claim | None:
        """The oldest waiting job, waiting up to ``timeout`` seconds; None when there is none."""

    def ack(self, claim: Claim) -> bool:
        """Remove a finished job; False when the claim had expired and been taken over."""

    def nack(self, claim: Claim, error: str = "") -> None:
        """Give the job back for another attempt (or to the dead letters after too many)."""

    def recover(self) -> int:
        """Requeue jobs whose consumer's lease ran out; returns how many."""

    def pending(self) -> int:
        """Jobs waiting to be claimed."""

    def close(self) -> None: ...
