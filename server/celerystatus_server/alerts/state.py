"""Alert state on disk, so a restart neither forgets a firing alert nor notifies it again."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["StateFile"]

log = logging.getLogger(__name__)


class StateFile:
    """A small JSON document replaced atomically; tied to one broker (another cluster's alerts are ignored)."""

    def __init__(self, path: str | Path, broker_url: str) -> None:
        self.path = Path(path)
        self.broker_url = broker_url
        #: Saves that failed (unwritable directory, full disk); evaluation goes on regardless.
        self.errors = 0

    def load(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable alert state %s: %s", self.path, exc)
            return None
        if not isinstance(data, dict) or data.get("broker_url") != self.broker_url:
            return None
        state = data.get("state")
        return state if isinstance(state, dict) else None

    def save(self, state: dict[str, Any]) -> bool:
        document = {"broker_url": self.broker_url, "state": state}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".alerts-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump(document, out, separators=(",", ":"))
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            self.errors += 1
            log.warning("cannot save alert state to %s: %s", self.path, exc)
            return False
        return True
