"""Authentication, authorization and rate limits for the gRPC server.

A ``grpc.aio.ServerInterceptor`` only sees the method name and the metadata;
the peer address, the TLS auth context and the request itself (to tell a
forced-fresh GetStatus from a plain one) are only available to the handler.
So the interceptor does its work by *wrapping the handler* it gets from
``continuation``: the wrapper runs inside the RPC with the real
``ServicerContext``, admits or aborts the call, and then hands the principal
to the servicer through :data:`current_principal`.

Health and reflection are not wrapped: probes and tooling stay open.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from .policy import AuthError, SecurityPolicy
from .principal import VIEWER, Principal, current_principal
from .ratelimit import Decision
from .tokens import bearer_token

log = logging.getLogger(__name__)

#: The services behind authentication and rate limits: the status service and
#: KEDA's external scaler (KEDA authenticates with a client certificate).
SERVICE_PREFIXES = ("/celerystatus.v1.CeleryStatusService/", "/externalscaler.ExternalScaler/")
#: Least role per method; both services are read-only, so every method is a viewer's.
METHOD_ROLES = {
    "GetStatus": VIEWER,
    "WatchStatus": VIEWER,
    "SearchTasks": VIEWER,
    "IsActive": VIEWER,
    "StreamIsActive": VIEWER,
    "GetMetricSpec": VIEWER,
    "GetMetrics": VIEWER,
    "GetHistory": VIEWER,
    "GetTrends": VIEWER,
    "ListAlerts": VIEWER,
    "WatchAlerts": VIEWER,
}
RETRY_AFTER_KEY = "retry-after"


def _is_fresh_request(method: str, request: Any) -> bool:
    if method != "GetStatus" or not request.HasField("max_age"):
        return False
    return bool(request.max_age.seconds > 0 or request.max_age.nanos > 0)


def _common_name(context: grpc.aio.ServicerContext) -> str | None:
    auth = context.auth_context() or {}
    names = auth.get("x509_common_name") or []
    if not names:
        return None
    value = names[0]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _token_from(context: grpc.aio.ServicerContext) -> tuple[str | None, str | None]:
    """(token, malformed-reason) from the call's metadata."""
    values = [v for k, v in (context.invocation_metadata() or ()) if k == "authorization"]
    if not values:
        return None, None
    if len(values) > 1:
        return None, "several authorization headers"
    value = values[0]
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    token = bearer_token(value)
    if token is None:
        return None, "authorization must be 'Bearer <token>'"
    return token, None


async def abort_rate_limited(context: grpc.aio.ServicerContext, decision: Decision) -> None:
    """RESOURCE_EXHAUSTED with a RetryInfo detail and a ``retry-after`` trailer (seconds)."""
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(decision.retry_after * 1e9))
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    status = rpc_status.to_status(
        status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=decision.reason, details=[detail])
    )
    trailers = (*status.trailing_metadata, (RETRY_AFTER_KEY, f"{decision.retry_after:.3f}"))
    await context.abort(status.code, status.details, trailing_metadata=trailers)


class _Malformed:
    """Stands in for a request whose bytes did not parse."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """Turn a parse failure into INVALID_ARGUMENT; grpcio would answer INTERNAL.

    A garbled request is the client's fault, and INTERNAL would page whoever
    watches the server's error rate.
    """
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # DecodeError, or anything a hostile payload provokes
            return _Malformed(type(exc).__name__)

    return parse


# grpc ships no annotations, so its base class is Any to mypy.
class SecurityInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, policy: SecurityPolicy) -> None:
        self.policy = policy

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        full_method: str = handler_call_details.method
        prefix = next((p for p in SERVICE_PREFIXES if full_method.startswith(p)), None)
        if handler is None or prefix is None:
            return handler
        method = full_method[len(prefix):]
        deserializer = _tolerant(handler.request_deserializer)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, handler.unary_unary),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, handler.unary_stream),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # the service has no client-streaming methods

    async def _admit(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> Principal:
        policy = self.policy
        if isinstance(request, _Malformed):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed request message: {request.reason}")
        token, malformed = _token_from(context)
        try:
            principal = policy.authenticate(
                token, peer=context.peer() or "", cert_common_name=_common_name(context), malformed=malformed
            )
            policy.authorize(principal, METHOD_ROLES.get(method, VIEWER))
        except AuthError as exc:
            code = grpc.StatusCode.PERMISSION_DENIED if exc.forbidden else grpc.StatusCode.UNAUTHENTICATED
            await context.abort(code, exc.message)
            raise AssertionError("unreachable") from None
        if policy.rate_limited(principal):
            decision = policy.limiter.check(principal.rate_key, fresh=_is_fresh_request(method, request))
            if not decision.allowed:
                await abort_rate_limited(context, decision)
        return principal

    def _wrap_unary(
        self, method: str, behavior: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
    ) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            principal = await self._admit(method, request, context)
            reset = current_principal.set(principal)
            try:
                return await behavior(request, context)
            finally:
                current_principal.reset(reset)

        return unary

    def _wrap_stream(
        self, method: str, behavior: Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]
    ) -> Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]:
        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            principal = await self._admit(method, request, context)
            streams = self.policy.streams
            key = principal.rate_key
            exempt = not self.policy.rate_limited(principal)
            if not exempt:
                decision = streams.acquire(key)
                if not decision.allowed:
                    await abort_rate_limited(context, decision)
            current_principal.set(principal)
            try:
                async for message in behavior(request, context):
                    yield message
            finally:
                if not exempt:
                    streams.release(key)

        return stream

