"""Token buckets per caller, and concurrency slots for long-lived streams.

Defaults (per principal; anonymous callers are keyed by client address):

* requests: 20 per second, bursts of 40;
* forced-fresh requests (``max_age``), which may make the server inspect the
  cluster: 1 per second, bursts of 2, on top of the request budget;
* streams (WatchStatus, WebSockets): 8 open per principal, 256 in total.

The clock is injectable so tests can move time instead of sleeping.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

Clock = Callable[[], float]

DEFAULT_RATE = 20.0
DEFAULT_BURST = 40.0
DEFAULT_FRESH_RATE = 1.0
DEFAULT_FRESH_BURST = 2.0
DEFAULT_STREAMS_PER_PRINCIPAL = 8
DEFAULT_STREAMS_TOTAL = 256
#: Buckets kept at most; the least recently used go first (a full bucket
#: carries no state worth keeping, and a flood of addresses must not grow memory).
MAX_TRACKED_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class Budget:
    """``rate`` tokens per second refill a bucket holding at most ``burst``; rate 0 disables the limit."""

    rate: float
    burst: float

    def __post_init__(self) -> None:
        if self.rate < 0 or not math.isfinite(self.rate):
            raise ValueError("rate must be a finite number >= 0")
        if self.rate > 0 and self.burst < 1:
            raise ValueError("burst must be >= 1")

    @property
    def unlimited(self) -> bool:
        return self.rate == 0


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    #: Seconds until the request would be allowed (0 when allowed).
    retry_after: float = 0.0
    reason: str = ""

    @property
    def retry_after_header(self) -> str:
        """Whole seconds, rounded up, as HTTP's Retry-After wants (at least 1)."""
        return str(max(1, math.ceil(self.retry_after)))


ALLOWED = Decision(True)


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated

    def refill(self, budget: Budget, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(budget.burst, self.tokens + elapsed * budget.rate)
        self.updated = now

    def wait_for_one(self, budget: Budget) -> float:
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / budget.rate


class _Buckets:
    def __init__(self, budget: Budget, clock: Clock, max_keys: int) -> None:
        self.budget = budget
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def get(self, key: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.budget.burst, now)
            self._buckets[key] = bucket
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.refill(self.budget, now)
        return bucket

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimiter:
    """Request budgets keyed by :attr:`Principal.rate_key`."""

    def __init__(
        self,
        requests: Budget = Budget(DEFAULT_RATE, DEFAULT_BURST),
        fresh: Budget = Budget(DEFAULT_FRESH_RATE, DEFAULT_FRESH_BURST),
        *,
        clock: Clock = time.monotonic,
        max_keys: int = MAX_TRACKED_KEYS,
    ) -> None:
        self._requests = _Buckets(requests, clock, max_keys)
        self._fresh = _Buckets(fresh, clock, max_keys)
        self._lock = threading.Lock()

    @property
    def tracked(self) -> int:
        return len(self._requests)

    def check(self, key: str, *, fresh: bool = False, request: bool = True) -> Decision:
        """Take one token for ``key`` (and one fresh token when ``fresh``), or say how long to wait.

        ``request=False`` charges only the fresh budget, for a request whose
        plain cost was taken before its parameters were known.
        """
        with self._lock:
            buckets = [(self._requests, "request rate")] if request else []
            if fresh:
                buckets.append((self._fresh, "fresh-snapshot rate"))
            taken = []
            for group, what in buckets:
                if group.budget.unlimited:
                    continue
                bucket = group.get(key)
                wait = bucket.wait_for_one(group.budget)
                if wait > 0:
                    # Nothing is consumed from any bucket when one refuses.
                    return Decision(False, wait, f"{what} limit exceeded")
                taken.append(bucket)
            for bucket in taken:
                bucket.tokens -= 1
            return ALLOWED


class StreamLimiter:
    """Open streams per key and in total; a slot is held for a stream's lifetime."""

    def __init__(
        self, per_principal: int = DEFAULT_STREAMS_PER_PRINCIPAL, total: int = DEFAULT_STREAMS_TOTAL
    ) -> None:
        if per_principal < 1 or total < 1:
            raise ValueError("stream limits must be >= 1")
        self.per_principal = per_principal
        self.total = total
        self._open: dict[str, int] = {}
        self._count = 0
        self._lock = threading.Lock()

    @property
    def open_streams(self) -> int:
        return self._count

    def acquire(self, key: str) -> Decision:
        with self._lock:
            if self._count >= self.total:
                return Decision(False, 1.0, f"too many open streams on this server ({self.total})")
            if self._open.get(key, 0) >= self.per_principal:
                return Decision(False, 1.0, f"too many open streams for this caller ({self.per_principal})")
            self._open[key] = self._open.get(key, 0) + 1
            self._count += 1
            return ALLOWED

    def release(self, key: str) -> None:
        with self._lock:
            left = self._open.get(key, 0) - 1
            if left <= 0:
                self._open.pop(key, None)
            else:
                self._open[key] = left
            self._count = max(0, self._count - 1)

    @contextlib.contextmanager
    def held(self, key: str) -> Iterator[None]:
        """Release the slot of an already acquired stream on exit."""
        try:
            yield
        finally:
            self.release(key)
