"""The caller of one request, as the servers see it after authentication."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

VIEWER = "viewer"
ADMIN = "admin"
#: Roles in increasing order of trust.
ROLES = (VIEWER, ADMIN)
ANONYMOUS_NAME = "anonymous"


def role_at_least(role: str | None, needed: str) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True, slots=True)
class Principal:
    """``role`` is None for an anonymous caller on a server without credentials configured."""

    name: str
    role: str | None
    anonymous: bool
    #: Client address (``ipv4:1.2.3.4:5678``-style for gRPC, ``1.2.3.4`` for HTTP).
    peer: str = ""

    @property
    def sees_arguments(self) -> bool:
        return self.role == ADMIN

    @property
    def rate_key(self) -> str:
        # Anonymous callers share nothing but their address; named ones are
        # limited per identity wherever they connect from.
        if self.anonymous:
            return f"addr:{_host_of(self.peer)}"
        return f"name:{self.name}"


def _host_of(peer: str) -> str:
    """``ipv4:10.0.0.1:5555`` / ``ipv6:[::1]:5555`` / ``10.0.0.1`` -> the host part."""
    text = peer
    for prefix in ("ipv4:", "ipv6:"):
        if text.startswith(prefix):
            text = text[len(prefix):]
            host, sep, _port = text.rpartition(":")
            return host.strip("[]") if sep else text
    return text


#: The principal of the request being handled; set by the gRPC interceptor.
current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "celery_status_principal", default=None
)
