"""Refuse to serve a non-loopback address with no credentials configured.

Monitoring tools that are open by default end up on the internet; starting
with a clear error costs the operator one flag when openness is intended.
"""

from __future__ import annotations

from ..config import SettingsError, is_loopback, parse_address


def _exposed(address: str | None, what: str) -> str | None:
    if not address:
        return None
    host, _port = parse_address(what, address)
    return None if is_loopback(host) else f"{what} {address}"


def check_exposure(
    *,
    grpc_address: str | None,
    http_address: str | None,
    has_tokens: bool,
    client_certs: bool,
    allow_unauthenticated: bool,
) -> None:
    """Raise :class:`SettingsError` when an open listener would face the network unprotected."""
    if allow_unauthenticated:
        return
    problems = []
    # gRPC accepts either tokens or client certificates; HTTP only tokens.
    if not (has_tokens or client_certs):
        problems.append(_exposed(grpc_address, "gRPC address"))
    if not has_tokens:
        problems.append(_exposed(http_address, "HTTP address"))
    found = [p for p in problems if p]
    if found:
        raise SettingsError(
            f"refusing to serve {' and '.join(found)} (not loopback) without credentials: "
            "configure tokens (--tokens-file or CELERY_STATUS_TOKENS"
            + (", or --tls-client-ca for gRPC" if grpc_address else "")
            + "), bind 127.0.0.1, or pass --allow-unauthenticated"
        )
