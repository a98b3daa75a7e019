"""Times and durations as people type them: ``1h``, ``90s``, ``now``, ISO 8601, epoch seconds.

Shared by the SDK, the command line and the HTTP bridge, so ``since=1h``
means the same everywhere. Errors are ``ValueError`` naming the parameter.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, timedelta, timezone

__all__ = ["parse_duration", "parse_time"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$", re.IGNORECASE)

TimeLike = str | float | int | datetime | None
DurationLike = str | float | int | timedelta


def parse_duration(value: DurationLike, name: str) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"1h"``, ``"7d"`` or a timedelta; must be > 0."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f"{name}: expected a duration such as 15m, got {value!r}")
    elif isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{name}: cannot parse {str(value)[:40]!r} as a duration (e.g. 30s, 15m, 1h, 7d)")
        seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name}: must be more than zero, got {value!r}")
    return seconds


def parse_time(value: TimeLike, name: str, *, now: float | None = None) -> float:
    """Epoch seconds from ``now``/None, a duration ago (``1h`` = one hour ago), an ISO 8601
    time (naive means UTC), epoch seconds, or a datetime."""
    current = time.time() if now is None else now
    if value is None:
        return current
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a time, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name}: expected epoch seconds, got {value!r}")
        return float(value)
    text = str(value).strip()
    if text.lower() == "now":
        return current
    if _DURATION.match(text) and not re.fullmatch(r"\d{9,}(\.\d+)?", text):
        return current - parse_duration(text, name)
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(number) and number >= 0:
            return number
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{name}: cannot parse {text[:40]!r} (expected now, a duration ago such as 1h, "
            "an ISO 8601 time or epoch seconds)"
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()
