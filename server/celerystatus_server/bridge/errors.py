"""The bridge's HTTP errors: its own refusals, and the one mapping of SDK errors to HTTP statuses."""

from __future__ import annotations

from typing import Any

from celerystatus import CeleryStatusError, DeadlineExceeded, FailedPrecondition, InvalidArgument, Unavailable

__all__ = ["BadRequest", "http_status"]


class BadRequest(Exception):
    """A request the bridge refuses before calling the backend (HTTP 400)."""

    status_code = 400

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "detail": self.detail}


def http_status(error: CeleryStatusError, *, invalid_argument: int = 400) -> int:
    """The HTTP status for a failed call to the status service.

    503: the service did not answer (down, restarting, too slow for the
    bridge's deadline). ``invalid_argument`` (400, or 422 where the endpoint
    documents it): it rejected the request's parameters. 404: it does not
    offer what was asked as configured (history off). 502 for anything else:
    it answered, but not with a status (including refusing the bridge's own
    credential, which the HTTP client cannot fix).
    """
    if isinstance(error, Unavailable | DeadlineExceeded):
        return 503
    if isinstance(error, InvalidArgument):
        return invalid_argument
    if isinstance(error, FailedPrecondition):
        return 404
    return 502
