"""Everything the sync and async clients share that does no I/O.

The two clients differ only in how they wait (threads vs. ``asyncio``), so
target parsing, credentials, request building, the retry policy and the
stream-resumption bookkeeping live here and are tested without a network.
"""

from __future__ import annotations

import ipaddress
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from tenacity import (
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
)

from celerystatus.alerts import AlertState
from celerystatus.exceptions import CeleryStatusError, DeadlineExceeded, Unavailable
from celerystatus.models import StatusView, TaskFilter, TaskState
from celerystatus.v1 import alerts_pb2 as apb
from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.values import seconds_to_duration

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_TIMEOUT = 5.0
USER_AGENT = "celerystatus-python/0.1.0"

# A full snapshot of a big cluster (every task with its arguments) can exceed
# gRPC's 4 MiB default; refusing it would hide the cluster exactly when it is
# busiest.
MAX_RECEIVE_MESSAGE_BYTES = 64 * 1024 * 1024

_URI_SCHEMES = ("dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:", "vsock:")
_MAX_INT32 = 2**31 - 1

Seconds = float | int | timedelta
#: Called with the error each time a watch stream breaks and is about to resume.
OnDisconnect = Callable[[CeleryStatusError], object]


def parse_target(target: str) -> str:
    """Validate a gRPC target and return it normalised.

    Accepts ``host:port``, ``[v6-address]:port`` and gRPC name URIs
    (``dns:///host:port``, ``unix:/path``, ...).  Raises :class:`ValueError`
    with the reason otherwise; an HTTP URL is the usual mistake, as the bridge
    speaks HTTP but the clients speak gRPC.
    """
    if not isinstance(target, str) or not target.strip():
        raise ValueError("target is empty; expected HOST:PORT, e.g. 127.0.0.1:50051")
    target = target.strip()
    if any(c.isspace() for c in target):
        raise ValueError(f"target {target!r} contains whitespace")
    lowered = target.lower()
    if lowered.startswith(_URI_SCHEMES):
        return target
    if "://" in target:
        scheme = target.split("://", 1)[0]
        raise ValueError(
            f"target {target!r}: scheme {scheme!r} is not a gRPC target; "
            "use HOST:PORT (the HTTP bridge's URL does not work here)"
        )
    if target.startswith("["):
        host, sep, port = target[1:].partition("]:")
        if not sep:
            raise ValueError(f"target {target!r}: expected [IPV6]:PORT")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"target {target!r}: {host!r} is not an IPv6 address") from None
    else:
        host, sep, port = target.rpartition(":")
        if not sep or not host:
            raise ValueError(f"target {target!r}: missing port; expected HOST:PORT")
        if ":" in host:
            raise ValueError(f"target {target!r}: put an IPv6 address in brackets, [::1]:PORT")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"target {target!r}: port must be a number from 1 to 65535")
    return target


def to_seconds(value: Seconds | None, name: str, *, allow_zero: bool = True) -> float | None:
    """A duration argument as float seconds, rejecting negative values."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds != seconds or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise ValueError(f"{name} must be {bound} seconds, got {value!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """TLS settings: server verification and, optionally, a client certificate.

    ``ca_cert`` is the PEM bundle that signed the server's certificate (the
    system roots when ``None``).  ``client_cert`` and ``client_key`` go
    together, for servers that require mutual TLS.  ``server_name`` overrides
    the name checked against the server certificate, for when the target is
    an IP address.
    """

    ca_cert: str | Path | None = None
    client_cert: str | Path | None = None
    client_key: str | Path | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key must be given together")

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Read the PEM files; a missing or unreadable file raises ``ValueError``."""
        return grpc.ssl_channel_credentials(
            root_certificates=_read_pem(self.ca_cert, "CA certificate"),
            private_key=_read_pem(self.client_key, "client key"),
            certificate_chain=_read_pem(self.client_cert, "client certificate"),
        )


def _read_pem(path: str | Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the {what} {str(path)!r}: {exc.strerror}") from exc
    if b"-----BEGIN" not in data:
        raise ValueError(f"the {what} {str(path)!r} is not a PEM file")
    return data


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how the clients retry on their own.

    Only :class:`~celerystatus.exceptions.Unavailable` is retried by default:
    it means the call did not reach a working server, and every call of the
    service is read-only, so trying again is safe.  ``DEADLINE_EXCEEDED`` is
    not retried unless ``retry_deadline_exceeded`` is set: a server too slow
    to answer within the timeout is usually overloaded or waiting on a slow
    inspection round, and more calls would make that worse.

    A unary call stops retrying after ``attempts`` tries or when the next
    backoff would end past ``total_timeout`` seconds from the first try,
    whichever comes first.  Backoff is exponential from ``initial_backoff`` up
    to ``max_backoff``, with "equal jitter": half of each delay is random, so
    clients that lost the same server do not come back in lockstep.

    A watch stream resumes after the errors in ``reconnect_on`` (by default
    ``Unavailable``: server restart, network blip) for as long as it has been
    failing for less than ``reconnect_timeout`` seconds (``None``: forever).
    A long-running consumer that must never stop watching (a proxy, a router)
    passes ``reconnect_on=(CeleryStatusError,)`` and ``reconnect_timeout=None``
    and learns about each gap through ``watch_status(on_disconnect=...)``.
    """

    attempts: int = 3
    total_timeout: float = 10.0
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    retry_deadline_exceeded: bool = False
    reconnect_timeout: float | None = 60.0
    reconnect_on: tuple[type[CeleryStatusError], ...] = (Unavailable,)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        for name in ("total_timeout", "initial_backoff", "max_backoff"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.reconnect_timeout is not None and self.reconnect_timeout < 0:
            raise ValueError("reconnect_timeout must not be negative")
        if not all(isinstance(c, type) and issubclass(c, CeleryStatusError) for c in self.reconnect_on):
            raise ValueError("reconnect_on must hold CeleryStatusError subclasses")

    @classmethod
    def watch_forever(cls, initial_backoff: float = 0.1, max_backoff: float = 2.0) -> RetryPolicy:
        """For consumers that must never stop watching (a proxy, a router).

        Unary calls are not retried (such consumers answer their own callers
        within a deadline); watch streams resume after any error, for ever,
        reporting each gap through ``watch_status(on_disconnect=...)``.
        """
        return cls(
            attempts=1,
            initial_backoff=initial_backoff,
            max_backoff=max_backoff,
            reconnect_timeout=None,
            reconnect_on=(CeleryStatusError,),
        )

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Delay before retry number ``attempt`` (1 for the first retry)."""
        growth = 2.0 ** max(0, attempt - 1)
        ceiling = min(self.max_backoff, self.initial_backoff * growth)
        return ceiling / 2 + rng() * ceiling / 2

    def should_retry(self, error: BaseException, *, unary: bool = True) -> bool:
        if not unary:
            return isinstance(error, self.reconnect_on)
        if isinstance(error, Unavailable):
            return True
        return self.retry_deadline_exceeded and isinstance(error, DeadlineExceeded)

    def tenacity_kwargs(self, *, unary: bool = True) -> dict[str, Any]:
        """Arguments for ``tenacity.Retrying`` / ``AsyncRetrying``."""
        return {
            "stop": stop_after_attempt(self.attempts) | stop_before_delay(self.total_timeout),
            "wait": lambda state: self.backoff(state.attempt_number),
            "retry": retry_if_exception(lambda exc: self.should_retry(exc, unary=unary)),
            "reraise": True,
        }


NO_RETRIES = RetryPolicy(attempts=1, reconnect_timeout=0.0)


def coerce_retry_policy(retries: RetryPolicy | int | None) -> RetryPolicy:
    """``retries`` as accepted by the clients: a policy, an attempt count or None."""
    if retries is None:
        return NO_RETRIES
    if isinstance(retries, RetryPolicy):
        return retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a RetryPolicy, a count >= 0 or None, not {retries!r}")
    return RetryPolicy(attempts=retries + 1) if retries else NO_RETRIES


@dataclass(slots=True)
class StreamResumer:
    """Bookkeeping for a watch stream that resumes after failures.

    ``failed`` returns how long to wait before reconnecting, or raises the
    error when the policy says to give up.  A message resets the backoff.
    ``repeat_after_gap``: deliver the first message after a reconnect even when
    it repeats the snapshot seen before the gap; a consumer told about the gap
    (``on_disconnect``) needs it to know the stream is back.
    """

    policy: RetryPolicy
    clock: Callable[[], float] = time.monotonic
    attempt: int = 0
    failing_since: float | None = None
    last_observed_at: float | None = None
    resumed: bool = False
    repeat_after_gap: bool = False

    def received(self, observed_at: float | None) -> bool:
        """Record a message; False when it repeats the snapshot seen before the gap."""
        duplicate = (
            not self.repeat_after_gap
            and self.resumed
            and observed_at is not None
            and observed_at == self.last_observed_at
        )
        self.attempt = 0
        self.failing_since = None
        self.resumed = False
        self.last_observed_at = observed_at
        return not duplicate

    def failed(self, error: CeleryStatusError) -> float:
        if not self.policy.should_retry(error, unary=False):
            raise error
        now = self.clock()
        if self.failing_since is None:
            self.failing_since = now
        timeout = self.policy.reconnect_timeout
        if timeout is not None and now - self.failing_since >= timeout:
            raise error
        self.attempt += 1
        self.resumed = True
        return self.policy.backoff(self.attempt)


@dataclass(frozen=True, slots=True)
class CallSettings:
    """What every call of one client sends besides its request."""

    timeout: float
    metadata: tuple[tuple[str, str], ...]


class BaseClient:
    """Configuration shared by :class:`CeleryStatusClient` and its async twin.

    ``target`` is ``HOST:PORT`` (or a gRPC URI).  ``timeout`` is the deadline
    of each unary call in seconds.  ``token`` is sent as
    ``authorization: Bearer <token>`` metadata on every call; use TLS
    (``tls``) whenever the token crosses a network.  ``retries`` is a
    :class:`RetryPolicy`, a number of retries, or ``None`` for none.
    ``options`` are extra gRPC channel arguments.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        timeout: Seconds = DEFAULT_TIMEOUT,
        token: str | None = None,
        tls: TLSConfig | bool | None = None,
        retries: RetryPolicy | int | None = RetryPolicy(),  # frozen, so sharing the default is safe
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.target = parse_target(target)
        seconds = to_seconds(timeout, "timeout", allow_zero=False)
        assert seconds is not None
        self.tls: TLSConfig | None = TLSConfig() if tls is True else (tls or None)
        self.retry_policy = coerce_retry_policy(retries)
        self._settings = CallSettings(timeout=seconds, metadata=auth_metadata(token))
        self._options = channel_options(self.tls, options)
        self._credentials = self.tls.channel_credentials() if self.tls else None
        #: Set by ``close()``: a watch stream then ends instead of resuming.
        self._closed = False
        self._connect()

    def _connect(self) -> None:
        """Create the channel and stub (the only I/O-specific setup)."""
        raise NotImplementedError

    @property
    def timeout(self) -> float:
        return self._settings.timeout

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.target!r}, timeout={self.timeout})"

    def _call_kwargs(self, timeout: Seconds | None) -> dict[str, Any]:
        seconds = to_seconds(timeout, "timeout", allow_zero=False)
        return {
            "timeout": self._settings.timeout if seconds is None else seconds,
            "metadata": self._settings.metadata,
        }

    def _stream_kwargs(self) -> dict[str, Any]:
        # No deadline: a watch is meant to last; failures end it instead.
        return {"metadata": self._settings.metadata}


def auth_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    if token is None or token == "":
        return ()
    if any(c in token for c in "\r\n") or token != token.strip():
        raise ValueError("token must not contain line breaks or surrounding whitespace")
    return (("authorization", f"Bearer {token}"),)


def channel_options(
    tls: TLSConfig | None, extra: Mapping[str, Any] | None = None
) -> list[tuple[str, Any]]:
    options: dict[str, Any] = {
        "grpc.max_receive_message_length": MAX_RECEIVE_MESSAGE_BYTES,
        "grpc.primary_user_agent": USER_AGENT,
    }
    if tls is not None and tls.server_name:
        options["grpc.ssl_target_name_override"] = tls.server_name
    options.update(extra or {})
    return list(options.items())


def _view(view: StatusView | str) -> pb.StatusView.ValueType:
    return StatusView(view).to_proto()


def build_get_status_request(
    max_age: Seconds | None = None,
    view: StatusView | str = StatusView.FULL,
    filter: TaskFilter | None = None,
    redact_args: bool = False,
) -> pb.GetStatusRequest:
    request = pb.GetStatusRequest(view=_view(view), redact_args=redact_args)
    age = to_seconds(max_age, "max_age")
    if age:
        request.max_age.CopyFrom(seconds_to_duration(age))
    if filter is not None:
        request.filter.CopyFrom(filter.to_proto())
    return request


def build_watch_request(
    min_interval: Seconds | None = None,
    view: StatusView | str = StatusView.FULL,
    filter: TaskFilter | None = None,
    redact_args: bool = False,
) -> pb.WatchStatusRequest:
    request = pb.WatchStatusRequest(view=_view(view), redact_args=redact_args)
    interval = to_seconds(min_interval, "min_interval")
    if interval:
        request.min_interval.CopyFrom(seconds_to_duration(interval))
    if filter is not None:
        request.filter.CopyFrom(filter.to_proto())
    return request


def build_search_request(
    filter: TaskFilter | None = None, limit: int = 0, redact_args: bool = False
) -> pb.SearchTasksRequest:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= _MAX_INT32:
        raise ValueError(f"limit must be an integer from 0 to {_MAX_INT32}, got {limit!r}")
    request = pb.SearchTasksRequest(limit=limit, redact_args=redact_args)
    if filter is not None:
        request.filter.CopyFrom(filter.to_proto())
    return request


def build_health_request(service: str = "") -> health_pb2.HealthCheckRequest:
    if not isinstance(service, str):
        raise ValueError(f"service must be a string, not {service!r}")
    return health_pb2.HealthCheckRequest(service=service)


def make_filter(
    filter: TaskFilter | None = None,
    *,
    task_name: str = "",
    eval_id: str = "",
    arg: str = "",
    worker: str = "",
    states: Sequence[TaskState | str] = (),
    task_id: str = "",
) -> TaskFilter | None:
    """Merge keyword criteria into ``filter``; ``None`` when nothing is set."""
    base = filter or TaskFilter()
    merged = TaskFilter(
        task_name=task_name or base.task_name,
        eval_id=eval_id or base.eval_id,
        arg=arg or base.arg,
        worker=worker or base.worker,
        states=tuple(TaskState(s) for s in states) or base.states,
        task_id=task_id or base.task_id,
    )
    return None if merged == TaskFilter() else merged


def _alert_states(states: Sequence[AlertState | str]) -> list[apb.AlertState.ValueType]:
    return [AlertState(state).to_proto() for state in states]


def build_list_alerts_request(states: Sequence[AlertState | str] = ()) -> apb.ListAlertsRequest:
    """``states`` empty: firing, pending and recently resolved."""
    return apb.ListAlertsRequest(states=_alert_states(states))


def build_watch_alerts_request(states: Sequence[AlertState | str] = ()) -> apb.WatchAlertsRequest:
    return apb.WatchAlertsRequest(states=_alert_states(states))
