"""How the process logs: text or JSON lines, repeats folded, outage warnings rate-limited.

An attacker or a broken dependency can make the same thing go wrong thousands
of times a second; the log must stay readable and bounded anyway. So every
handler installed here folds identical records (same logger, level, message
and exception type) into one line plus a count per window, and state-like
warnings (the broker is down) go through :class:`StateLog`, which logs each
change once and then only a periodic reminder.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Literal, TextIO

from .security import logs
from .urls import mask_text

__all__ = [
    "LOG_FORMATS",
    "JsonFormatter",
    "RepeatFilter",
    "StateLog",
    "configure",
]

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Attributes every LogRecord has; anything else on a record came in through ``extra=``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"}
)


class RepeatFilter(logging.Filter):
    """Lets the first of identical records through and counts the rest for ``window`` seconds.

    The next identical record after the window carries the count (``repeated``
    field, and " [N similar suppressed in the last Ws]" in the text), so a flood
    costs one line per window instead of one per event.
    """

    def __init__(self, window: float = 60.0, max_keys: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        #: key -> [window start, suppressed count]
        self._seen: OrderedDict[tuple[Any, ...], list[float]] = OrderedDict()

    @staticmethod
    def _key(record: logging.LogRecord) -> tuple[Any, ...]:
        exc_type = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        return (record.name, record.levelno, message, exc_type)

    def filter(self, record: logging.LogRecord) -> bool:
        key = self._key(record)
        now = self._clock()
        with self._lock:
            entry = self._seen.get(key)
            if entry is not None and now - entry[0] < self.window:
                entry[1] += 1
                return False
            suppressed = int(entry[1]) if entry is not None else 0
            self._seen[key] = [now, 0]
            self._seen.move_to_end(key)
            while len(self._seen) > self._max_keys:
                self._seen.popitem(last=False)
        if suppressed:
            record.repeated = suppressed
            record.msg = f"{record.getMessage()} [{suppressed} similar suppressed in the last {self.window:g}s]"
            record.args = None
        return True


class StateLog:
    """Logs a condition when it starts, changes or ends, and reminds every ``remind_every`` seconds.

    ``report(text)`` while the condition holds, ``clear()`` when it is over; a
    broker that stays down for an hour costs one line per reminder, not one per
    failed round.
    """

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        remind_every: float = 60.0,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._what = what
        self._remind_every = remind_every
        self._level = level
        self._clock = clock
        self._current: str | None = None
        self._since = 0.0
        self._last_logged = 0.0
        self._count = 0

    @property
    def active(self) -> bool:
        return self._current is not None

    def report(self, text: str) -> None:
        now = self._clock()
        if text != self._current:
            if self._current is None:
                self._since = now
            self._current = text
            self._count = 1
            self._last_logged = now
            self._log.log(self._level, "%s: %s", self._what, text)
            return
        self._count += 1
        if now - self._last_logged >= self._remind_every:
            self._last_logged = now
            self._log.log(
                self._level, "%s: %s (still, for %.0fs, %d times)", self._what, text, now - self._since, self._count
            )

    def clear(self, recovered: str = "recovered") -> None:
        if self._current is None:
            return
        duration = self._clock() - self._since
        self._current = None
        self._log.info("%s: %s after %.1fs", self._what, recovered, duration)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {}
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRS and not name.startswith("_"):
                fields[name] = _jsonable(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_text(self.formatException(record.exc_info))
        if record.exc_text:
            fields["exception"] = record.exc_text
        if record.stack_info:
            fields["stack"] = mask_text(self.formatStack(record.stack_info))
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_text(record.getMessage()),
            "fields": fields,
        }
        return json.dumps(entry, ensure_ascii=False, default=str)


def _jsonable(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return mask_text(str(value))


def parse_level(value: str) -> int:
    """``debug``/``INFO``/``30`` → a logging level; ValueError for anything else."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    level = logging.getLevelName(text.upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {value!r} (debug, info, warning, error, critical)")
    return level


def configure(
    level: str | int = "WARNING",
    fmt: str = "text",
    *,
    stream: TextIO | None = None,
    repeat_window: float = 60.0,
) -> logging.Handler:
    """Replace the root logger's handlers with one that masks, folds repeats and formats.

    Libraries that log through their own handlers (uvicorn does unless told not
    to) bypass this; the bridge starts uvicorn with ``log_config=None`` for that reason.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (text or json)")
    numeric = parse_level(level) if isinstance(level, str) else level
    logs.install()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(logs.MaskingFilter())
    handler.addFilter(RepeatFilter(repeat_window))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    return handler
