"""HTTP side of the security policy: who is calling, and may they.

The same :class:`SecurityPolicy` as the gRPC server (tokens, roles, budgets);
this module only reads HTTP credentials and turns refusals into JSON answers:
401 with ``WWW-Authenticate: Bearer``, 403, 429 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ..security.policy import AuthError, SecurityPolicy
from ..security.principal import Principal
from ..security.ratelimit import Decision
from ..security.tokens import bearer_token

#: Longest query string accepted; filters are short, and the limit keeps
#: parsing and logging cheap whatever a client sends.
MAX_QUERY_STRING = 4096
#: Clients never need to send anything on the WebSocket.
MAX_WS_MESSAGE = 4096
#: All request headers together; a bearer token and a browser's usual headers fit easily.
MAX_HEADER_BYTES = 16 * 1024
#: The WebSocket subprotocol the bridge speaks; browsers offer it alongside a bearer entry.
WS_SUBPROTOCOL = "celery-status.v1"
#: Browsers cannot set headers on a WebSocket, and a token in the URL ends up in
#: logs and history, so a browser sends ``bearer.<base64url(token)>`` as one of its
#: offered subprotocols (the scheme Kubernetes uses). The server never echoes it.
WS_BEARER_PREFIX = "bearer."


@dataclass(frozen=True)
class BridgeSecurity:
    policy: SecurityPolicy = field(default_factory=SecurityPolicy.build)
    #: Key anonymous callers by the rightmost X-Forwarded-For address (behind a trusted proxy only).
    trust_forwarded_for: bool = False
    #: /metrics open to anyone even when credentials are required.
    metrics_public: bool = False
    #: /docs and /openapi.json open to anyone even when credentials are required.
    docs_public: bool = False
    #: Exact browser origins allowed to read the API; none by default.
    cors_origins: tuple[str, ...] = ()
    #: The bridge's own credential towards the gRPC service.
    backend_token: str | None = None


class Refused(Exception):
    """Answered as JSON with ``status_code`` and ``headers``."""

    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        headers = {"Cache-Control": "no-store", **self.headers}
        return JSONResponse({"error": self.message, "detail": None}, status_code=self.status_code, headers=headers)


def unauthorized(message: str) -> Refused:
    return Refused(401, message, {"WWW-Authenticate": 'Bearer realm="celery-status"'})


def rate_limited(decision: Decision) -> Refused:
    return Refused(429, decision.reason, {"Retry-After": decision.retry_after_header})


def client_address(connection: HTTPConnection, trust_forwarded_for: bool) -> str:
    if trust_forwarded_for:
        forwarded = connection.headers.get("x-forwarded-for", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            # The rightmost hop was added by our own proxy; those left of it are the client's to forge.
            return hops[-1][:64]
    return connection.client.host if connection.client else ""


def offered_subprotocols(connection: HTTPConnection) -> list[str]:
    return [
        item.strip()
        for header in connection.headers.getlist("sec-websocket-protocol")
        for item in header.split(",")
        if item.strip()
    ]


def subprotocol_token(connection: HTTPConnection) -> tuple[str | None, str | None]:
    """(token, problem) from a WebSocket's ``bearer.<base64url>`` subprotocol entry."""
    entries = [p for p in offered_subprotocols(connection) if p.startswith(WS_BEARER_PREFIX)]
    if not entries:
        return None, None
    if len(entries) > 1:
        return None, "several bearer subprotocols"
    encoded = entries[0][len(WS_BEARER_PREFIX) :]
    try:
        token = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        return None, "bearer subprotocol must be 'bearer.<base64url token>'"
    if not token:
        return None, "bearer subprotocol must be 'bearer.<base64url token>'"
    return token, None


def authenticate(connection: HTTPConnection, security: BridgeSecurity) -> Principal:
    """The caller's principal, or :class:`Refused` (401/403)."""
    headers = connection.headers.getlist("authorization")
    malformed = None
    token = None
    if len(headers) > 1:
        malformed = "several Authorization headers"
    elif headers:
        token = bearer_token(headers[0])
        if token is None:
            malformed = "Authorization must be 'Bearer <token>'"
    if connection.scope["type"] == "websocket":
        offered, problem = subprotocol_token(connection)
        if problem or (offered is not None and headers):
            malformed = malformed or problem or "send the token either in Authorization or as a subprotocol"
        elif offered is not None:
            token = offered
    try:
        principal = security.policy.authenticate(
            token, peer=client_address(connection, security.trust_forwarded_for), malformed=malformed
        )
        security.policy.authorize(principal)
    except AuthError as exc:
        if exc.forbidden:
            raise Refused(403, exc.message) from None
        raise unauthorized(exc.message) from None
    return principal


def admit(connection: HTTPConnection, security: BridgeSecurity, *, fresh: bool = False) -> Principal:
    """Authenticate and charge one request to the caller's budget."""
    principal = authenticate(connection, security)
    policy = security.policy
    if policy.rate_limited(principal):
        decision = policy.limiter.check(principal.rate_key, fresh=fresh)
        if not decision.allowed:
            raise rate_limited(decision)
    return principal


class RequestLimits:
    """ASGI middleware: over-long query strings (414) and headers (431) are refused before any parsing.

    The HTTP server's own limits depend on which parser uvicorn picked; these
    hold whichever it is.
    """

    def __init__(
        self, app: ASGIApp, max_query: int = MAX_QUERY_STRING, max_headers: int = MAX_HEADER_BYTES
    ) -> None:
        self.app = app
        self.max_query = max_query
        self.max_headers = max_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            problem = None
            if len(scope.get("query_string", b"")) > self.max_query:
                problem = (414, f"query string longer than {self.max_query} bytes")
            elif sum(len(k) + len(v) for k, v in scope.get("headers", ())) > self.max_headers:
                problem = (431, f"request headers longer than {self.max_headers} bytes")
            if problem is not None:
                if scope["type"] == "http":
                    body: dict[str, Any] = {"error": problem[1], "detail": None}
                    await JSONResponse(body, status_code=problem[0])(scope, receive, send)
                else:
                    await send({"type": "websocket.close", "code": 1009})
                return
        await self.app(scope, receive, send)
