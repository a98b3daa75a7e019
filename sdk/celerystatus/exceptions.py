"""The SDK's exceptions: one flat tree under :class:`CeleryStatusError`.

Every failed call raises a subclass of :class:`CeleryStatusError`; the gRPC
error it was translated from is chained as ``__cause__``.  Translation happens
only in :func:`from_rpc_error`, so the sync and async clients cannot disagree.

=========================  ==============================================
Exception                  gRPC status codes
=========================  ==============================================
:class:`Unavailable`       UNAVAILABLE (server down, restarting, unreachable)
:class:`Unauthenticated`   UNAUTHENTICATED (missing or wrong token)
:class:`PermissionDenied`  PERMISSION_DENIED
:class:`RateLimited`       RESOURCE_EXHAUSTED; see ``retry_after``
:class:`DeadlineExceeded`  DEADLINE_EXCEEDED (the client's timeout elapsed)
:class:`InvalidArgument`   INVALID_ARGUMENT, OUT_OF_RANGE
:class:`NotFound`          NOT_FOUND
:class:`InternalError`     INTERNAL, UNKNOWN, DATA_LOSS
:class:`Unimplemented`     UNIMPLEMENTED (an ``InternalError``: version mismatch)
:class:`CeleryStatusError` any other code (CANCELLED, ABORTED, ...)
=========================  ==============================================

Mistakes in arguments detected before any call is made (a malformed target, a
negative timeout) raise :class:`ValueError`, as they are programming errors.
"""

from __future__ import annotations

from typing import Any

import grpc

__all__ = [
    "CeleryStatusError",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InternalError",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "from_rpc_error",
]

_DETAILS_KEY = "grpc-status-details-bin"
_RETRY_AFTER_KEY = "retry-after"


class CeleryStatusError(Exception):
    """Base class of every error raised by the SDK for a failed call."""

    def __init__(
        self, message: str, *, code: grpc.StatusCode | None = None, details: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        """The gRPC status code, when the error came from a call."""
        self.details = details
        """The server's own explanation (``message`` without the code), or ``""``."""


class Unavailable(CeleryStatusError):
    """The server could not be reached, or is shutting down or restarting.

    The only error the clients retry on their own (see ``RetryPolicy``).
    """


class Unauthenticated(CeleryStatusError):
    """The server requires a bearer token, and none or a wrong one was sent."""


class PermissionDenied(CeleryStatusError):
    """The token is valid but not allowed to make this call."""


class RateLimited(CeleryStatusError):
    """The server refused the call to protect itself; try again later."""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        details: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.retry_after = retry_after
        """Seconds the server asked the caller to wait, when it said so."""


class DeadlineExceeded(CeleryStatusError):
    """No answer within the call's timeout."""


class InvalidArgument(CeleryStatusError):
    """The server rejected the request's arguments."""


class FailedPrecondition(CeleryStatusError):
    """The server cannot answer this call as configured (e.g. history is off on it)."""


class NotFound(CeleryStatusError):
    """The server does not know the requested thing."""


class InternalError(CeleryStatusError):
    """The server failed, or does not implement the call (version mismatch)."""


class Unimplemented(InternalError):
    """The server does not implement the call (an older version, or a service it does not run)."""


_BY_CODE: dict[grpc.StatusCode, type[CeleryStatusError]] = {
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RateLimited,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNKNOWN: InternalError,
    grpc.StatusCode.DATA_LOSS: InternalError,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
}


def from_rpc_error(exc: grpc.RpcError) -> CeleryStatusError:
    """Translate a gRPC error (sync or ``grpc.aio``) into the SDK's tree.

    The caller raises the result ``from exc``.
    """
    code = _call_attr(exc, "code")
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    details = _call_attr(exc, "details")
    details = details if isinstance(details, str) else ""
    message = f"{code.name}: {details}" if details else code.name
    cls = _BY_CODE.get(code, CeleryStatusError)
    if cls is RateLimited:
        return RateLimited(message, code=code, details=details, retry_after=_retry_after(exc))
    return cls(message, code=code, details=details)


def _call_attr(exc: grpc.RpcError, name: str) -> Any:
    # A bare grpc.RpcError (raised by some interceptors) is not a grpc.Call;
    # tolerate it rather than fail while reporting a failure.
    method = getattr(exc, name, None)
    if method is None:
        return None
    try:
        return method()
    except Exception:
        return None


def _retry_after(exc: grpc.RpcError) -> float | None:
    metadata = _call_attr(exc, "trailing_metadata") or ()
    header: float | None = None
    for item in metadata:
        key, value = item[0], item[1]
        if key == _DETAILS_KEY and isinstance(value, bytes):
            delay = _retry_info_delay(value)
            if delay is not None:
                return delay
        elif key == _RETRY_AFTER_KEY:
            header = _parse_seconds(value)
    return header


def _retry_info_delay(status_bytes: bytes) -> float | None:
    # googleapis-common-protos comes with grpcio-status; the SDK does not
    # require it, so rich error details are read only when it is installed.
    try:
        from google.rpc import error_details_pb2, status_pb2
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    try:
        status = status_pb2.Status.FromString(status_bytes)
    except Exception:
        return None
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Is(info.DESCRIPTOR) and detail.Unpack(info):
            delay = info.retry_delay
            return max(0.0, float(delay.seconds + delay.nanos / 1e9))
    return None


def _parse_seconds(value: object) -> float | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    try:
        seconds = float(str(value).strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
