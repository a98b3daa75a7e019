"""The circuit breaker that decides between Celery and the legacy queue.

I/O-free and clock-injected, so the hysteresis rules are tested without a
cluster.  Signals come from two places: health observations (the status
stream) and the outcome of each publish.

* CLOSED: jobs go to Celery.  ``open_after`` consecutive unhealthy observations,
  or ``open_after_failures`` consecutive failed sends, open the breaker.  One bad
  observation alone changes nothing: that is the point of the hysteresis.
* OPEN: jobs go to the legacy queue.  Once the breaker has been open for
  ``min_open_time`` seconds *and* the last ``close_after`` observations were all
  healthy, it becomes HALF_OPEN.
* HALF_OPEN: one job at a time goes to Celery as a probe; ``probes_to_close``
  confirmed sends close the breaker, a failed probe or an unhealthy observation
  opens it again (and the minimum time starts over).

No observation for ``silence_timeout`` seconds counts as an outage of the
status service, which opens the breaker: the status service going away is
itself a reason to fall back.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BreakerConfig", "BreakerState", "CircuitBreaker", "Permit"]


class BreakerState(str, enum.Enum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"

    @property
    def gauge_value(self) -> float:
        return {"closed": 0.0, "half_open": 1.0, "open": 2.0}[self.value]


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    open_after: int = 3
    """Consecutive unhealthy observations that open the breaker."""
    open_after_failures: int = 3
    """Consecutive failed sends that open the breaker."""
    close_after: int = 2
    """Consecutive healthy observations needed (with ``min_open_time``) to probe."""
    min_open_time: float = 5.0
    probes_to_close: int = 1
    silence_timeout: float | None = 10.0
    """Seconds without any observation after which Celery counts as unhealthy."""

    def __post_init__(self) -> None:
        for name in ("open_after", "open_after_failures", "close_after", "probes_to_close"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.min_open_time < 0:
            raise ValueError("min_open_time must not be negative")
        if self.silence_timeout is not None and self.silence_timeout <= 0:
            raise ValueError("silence_timeout must be positive")


class Permit(str, enum.Enum):
    """What :meth:`CircuitBreaker.acquire` allows for one job."""

    CELERY = "celery"
    PROBE = "probe"
    LEGACY = "legacy"


class CircuitBreaker:
    """Thread-safe; every method is a few comparisons under an uncontended lock."""

    def __init__(
        self,
        config: BreakerConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState, BreakerState, str], None] | None = None,
    ) -> None:
        self.config = config or BreakerConfig()
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        # Until the first healthy observations arrive nothing is known, and the
        # rule is to fall back when in doubt; no minimum open time applies then.
        self._state = BreakerState.OPEN
        self._reason = "no status observed yet"
        self._opened_at = -float("inf")
        self._unhealthy_streak = 0
        self._failure_streak = 0
        self._healthy_streak = 0
        self._probe_in_flight = False
        self._probe_successes = 0
        self._last_observation = clock()

    @property
    def state(self) -> BreakerState:
        with self._lock:
            self._check_silence()
            return self._state

    @property
    def reason(self) -> str:
        """Why the breaker last changed state."""
        return self._reason

    def snapshot(self) -> tuple[BreakerState, str]:
        with self._lock:
            self._check_silence()
            return self._state, self._reason

    # --- signals -------------------------------------------------------------

    def observe(self, unhealthy_reason: str | None) -> None:
        """Record one health observation: ``None`` for healthy, else why not."""
        with self._lock:
            self._last_observation = self._clock()
            if unhealthy_reason is None:
                self._unhealthy_streak = 0
                self._healthy_streak += 1
                if (
                    self._state is BreakerState.OPEN
                    and self._healthy_streak >= self.config.close_after
                    and self._clock() - self._opened_at >= self.config.min_open_time
                ):
                    self._probe_successes = 0
                    self._probe_in_flight = False
                    self._set(BreakerState.HALF_OPEN, "healthy again: probing")
                return
            self._healthy_streak = 0
            self._unhealthy_streak += 1
            if self._state is BreakerState.HALF_OPEN:
                self._open(unhealthy_reason)
            elif self._state is BreakerState.CLOSED and self._unhealthy_streak >= self.config.open_after:
                self._open(unhealthy_reason)
            elif self._state is BreakerState.OPEN and self._reason == "no status observed yet":
                self._reason = unhealthy_reason

    def acquire(self) -> Permit:
        """Where the next job may go.  A ``PROBE`` must be followed by ``record_send``."""
        with self._lock:
            self._check_silence()
            if self._state is BreakerState.CLOSED:
                return Permit.CELERY
            if self._state is BreakerState.HALF_OPEN and not self._probe_in_flight:
                self._probe_in_flight = True
                return Permit.PROBE
            return Permit.LEGACY

    def record_send(self, ok: bool, permit: Permit, error: str = "") -> None:
        with self._lock:
            if permit is Permit.PROBE:
                self._probe_in_flight = False
                if self._state is not BreakerState.HALF_OPEN:
                    return
                if ok:
                    self._probe_successes += 1
                    if self._probe_successes >= self.config.probes_to_close:
                        self._failure_streak = 0
                        self._set(BreakerState.CLOSED, "probe confirmed")
                else:
                    self._open(f"probe failed: {error}")
                return
            if ok:
                self._failure_streak = 0
                return
            self._failure_streak += 1
            if self._state is BreakerState.CLOSED and self._failure_streak >= self.config.open_after_failures:
                self._open(f"{self._failure_streak} sends failed: {error}")

    # --- internals (lock held) -----------------------------------------------

    def _check_silence(self) -> None:
        timeout = self.config.silence_timeout
        if timeout is None or self._state is BreakerState.OPEN:
            return
        if self._clock() - self._last_observation > timeout:
            self._healthy_streak = 0
            self._open(f"no status for {timeout:g}s")

    def _open(self, reason: str) -> None:
        self._opened_at = self._clock()
        self._healthy_streak = 0
        self._probe_in_flight = False
        self._probe_successes = 0
        self._set(BreakerState.OPEN, reason)

    def _set(self, state: BreakerState, reason: str) -> None:
        old, self._state, self._reason = self._state, state, reason
        if self._on_change is not None:
            self._on_change(old, state, reason)
