"""A real browser for the dashboard tests: Debian's chromium driven by Playwright.

No browser is ever downloaded: Playwright launches the system's chromium
(``CELERY_STATUS_TEST_CHROMIUM`` or ``chromium`` on PATH) headless.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PageProblems", "chromium_executable"]

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_executable() -> str | None:
    explicit = os.environ.get("CELERY_STATUS_TEST_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageProblems:
    """Everything a healthy page must never produce: console errors, uncaught exceptions, failed or 4xx/5xx requests."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    error_responses: list[str] = field(default_factory=list)
    #: Set to stop recording (e.g. before closing, which aborts requests in flight).
    closed: bool = False

    def attach(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self._add(self.page_errors, str(error)))
        page.on("requestfailed", lambda r: self._add(self.failed_requests, f"{r.method} {r.url}: {r.failure}"))
        page.on("response", self._response)

    def _add(self, where: list[str], text: str) -> None:
        if not self.closed:
            where.append(text)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self._add(self.console_errors, message.text)

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self._add(self.error_responses, f"{response.status} {response.request.method} {response.url}")

    def clear(self) -> None:
        """Forget what was recorded so far (after a deliberate outage)."""
        for where in (self.console_errors, self.page_errors, self.failed_requests, self.error_responses):
            where.clear()

    def all(self) -> list[str]:
        return [*self.console_errors, *self.page_errors, *self.failed_requests, *self.error_responses]
