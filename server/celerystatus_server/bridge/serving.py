"""The hot path of ``GET /api/celery-status``: the stream's snapshot, as ready-made bytes.

An unfiltered request (``view`` and the cache-buster ``_`` at most) is what
dashboards and probes send many times a second, and its answer is the latest
snapshot the hub already holds. This ASGI layer answers it before routing:
the caller is authenticated and charged as on every route, then the
snapshot's pre-encoded document is sent with a strong ``ETag``, ``304`` for a
matching ``If-None-Match`` and ``Cache-Control: max-age`` up to the next
round. No parameter model is validated and nothing is encoded per request.

Anything else (filters, ``max_age``, a bad value, a backend outage) goes on
to the FastAPI route, which asks the status service and reports errors as
JSON; the caller is not charged twice (:data:`PRINCIPAL_KEY`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from celerystatus import StatusView

from .hub import EncodedStatus, StatusHub
from .representation import StatusDocument, accepts_gzip
from .security import BridgeSecurity, Refused, admit

__all__ = ["PRINCIPAL_KEY", "STATUS_PATH", "StatusFastPath", "document_answer"]

STATUS_PATH = "/api/celery-status"
#: Scope key holding the principal admitted here when the request falls through to the route.
PRINCIPAL_KEY = "celerystatus.principal"

_VIEWS = {"full": StatusView.FULL, "summary": StatusView.SUMMARY}
_JSON = (b"content-type", b"application/json")
# The answer depends on the caller's role (redaction) and on the coding.
_VARY = (b"vary", b"Accept-Encoding, Authorization")


def plain_view(query_string: bytes) -> StatusView | None:
    """The view of a request the stream can answer as is, else None."""
    if not query_string:
        return StatusView.FULL
    view = StatusView.FULL
    seen = False
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if key == "_":
            continue
        if key != "view" or seen or value not in _VIEWS:
            return None  # the route validates and reports it
        view, seen = _VIEWS[value], True
    return view


def _usable(hub: StatusHub) -> EncodedStatus | None:
    snapshot = hub.latest
    if snapshot is None or not snapshot.from_backend or not hub.stream_connected:
        return None
    return snapshot


def document_answer(
    snapshot: EncodedStatus,
    view: StatusView,
    *,
    accept_encoding: str,
    if_none_match: str | None,
    private: bool,
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status code, headers and body for ``snapshot`` in ``view``."""
    document: StatusDocument = snapshot.document(view)
    max_age = document.max_age(snapshot.refresh_interval)
    cache = f"{'private, ' if private else ''}max-age={max_age}".encode()
    gzip = accepts_gzip(accept_encoding)
    etag = document.gzip_etag if gzip else document.etag
    headers = [(b"etag", etag.encode()), (b"cache-control", cache), _VARY]
    if if_none_match is not None and document.matches(if_none_match):
        return 304, headers, b""
    body = document.gzipped() if gzip else document.identity()
    headers.append(_JSON)
    if gzip:
        headers.append((b"content-encoding", b"gzip"))
    headers.append((b"content-length", str(len(body)).encode()))
    return 200, headers, body


class StatusFastPath:
    """ASGI middleware answering plain status requests from the hub."""

    def __init__(self, app: ASGIApp, security: BridgeSecurity) -> None:
        self.app = app
        self.security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != STATUS_PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        view = plain_view(scope.get("query_string", b""))
        if view is None:
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        try:
            principal = admit(connection, self.security)
        except Refused as refused:
            await refused.response()(scope, receive, send)
            return
        state: Any = scope["app"].state.bridge
        snapshot = _usable(state.hub_for(principal))
        if snapshot is None:
            scope[PRINCIPAL_KEY] = principal
            await self.app(scope, receive, send)
            return
        headers = connection.headers
        status, response_headers, body = document_answer(
            snapshot,
            view,
            accept_encoding=headers.get("accept-encoding", ""),
            if_none_match=headers.get("if-none-match"),
            private=self.security.policy.auth_required,
        )
        start: Message = {"type": "http.response.start", "status": status, "headers": response_headers}
        await send(start)
        await send({"type": "http.response.body", "body": body})
