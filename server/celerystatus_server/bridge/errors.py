"""The bridge's own HTTP errors, all answered with the same JSON body."""

from __future__ import annotations

from typing import Any


class BadRequest(Exception):
    """A request the bridge refuses before calling the backend (HTTP 400)."""

    status_code = 400

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "detail": self.detail}
