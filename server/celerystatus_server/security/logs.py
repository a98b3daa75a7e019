"""Masks credentials in every log record the process emits.

Installed as the log record factory rather than as a handler filter so records
from any library (kombu's connection errors quote the broker URL) and any
handler (pytest's capture included) are covered.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ..urls import mask_text

_lock = threading.Lock()
_installed = False


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except Exception:  # a broken format string is logging's problem, not ours
        return record
    masked = mask_text(message)
    if masked != message or record.args:
        record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = mask_text(record.exc_text)
    return record


class MaskingFilter(logging.Filter):
    """For handlers configured elsewhere (e.g. a logging config file)."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


def install() -> None:
    """Wrap the current record factory once per process."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return mask_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed = True
