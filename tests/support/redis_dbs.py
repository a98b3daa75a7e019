"""Hands out Redis DB numbers from the range this run may use.

Several people share one Redis; each run is confined to the DB numbers in
CELERY_STATUS_TEST_REDIS_DBS (e.g. "1-3" or "4,5,9-11").
"""

from __future__ import annotations

import threading

__all__ = ["DbPool", "parse_db_range"]


def parse_db_range(spec: str) -> list[int]:
    numbers: list[int] = []
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        low, sep, high = part.partition("-")
        try:
            first, last = int(low), int(high if sep else low)
        except ValueError:
            raise ValueError(
                f"bad Redis DB range {spec!r}: expected e.g. '1-3' or '1,2,5'"
            ) from None
        if first < 0 or last < first:
            raise ValueError(f"bad Redis DB range {spec!r}: {part!r} is empty or negative")
        numbers.extend(n for n in range(first, last + 1) if n not in numbers)
    if not numbers:
        raise ValueError(f"bad Redis DB range {spec!r}: no DB numbers")
    return numbers


class DbPool:
    def __init__(self, numbers: list[int]) -> None:
        self._free = list(numbers)
        self._all = tuple(numbers)
        self._lock = threading.Lock()

    def acquire(self) -> int:
        with self._lock:
            if not self._free:
                raise RuntimeError(
                    f"all Redis DBs {list(self._all)} are in use by this test; "
                    "widen CELERY_STATUS_TEST_REDIS_DBS"
                )
            return self._free.pop(0)

    def release(self, number: int) -> None:
        with self._lock:
            if number not in self._free:
                self._free.insert(0, number)
