"""I/O-free client logic: targets, credentials, requests, retry policy, resumption."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from celerystatus import _base
from celerystatus._base import (
    RetryPolicy,
    StreamResumer,
    TLSConfig,
    build_get_status_request,
    build_search_request,
    build_watch_request,
    coerce_retry_policy,
    make_filter,
    parse_target,
)
from celerystatus.exceptions import (
    DeadlineExceeded,
    PermissionDenied,
    RateLimited,
    Unavailable,
    from_rpc_error,
)
from celerystatus.models import StatusView, TaskFilter, TaskState
from celerystatus.v1 import celery_status_pb2 as pb


@pytest.mark.parametrize(
    "target",
    [
        "127.0.0.1:50051",
        "localhost:1",
        "[::1]:50051",
        "dns:///status.internal:443",
        "unix:/run/status.sock",
        " host:80 ",
    ],
)
def test_valid_targets(target: str) -> None:
    assert parse_target(target) == target.strip()


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("", "empty"),
        ("localhost", "missing port"),
        ("localhost:0", "port must be"),
        ("localhost:65536", "port must be"),
        ("localhost:http", "port must be"),
        ("http://127.0.0.1:8080", "not a gRPC target"),
        ("::1:50051", "brackets"),
        ("[zz]:1", "not an IPv6"),
        ("a b:1", "whitespace"),
    ],
)
def test_invalid_targets_say_why(target: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_target(target)


def test_requests_are_built_from_friendly_arguments() -> None:
    request = build_get_status_request(timedelta(seconds=2), "summary", TaskFilter(worker="w"))
    assert request.max_age.seconds == 2 and request.view == pb.STATUS_VIEW_SUMMARY
    assert request.filter.worker == "w"
    assert not build_get_status_request(0).HasField("max_age")
    watch = build_watch_request(0.25, StatusView.FULL)
    assert watch.min_interval.nanos == 250_000_000 and watch.view == pb.STATUS_VIEW_FULL
    assert build_search_request(None, 10).limit == 10


@pytest.mark.parametrize(
    "call",
    [
        lambda: build_get_status_request(-1),
        lambda: build_get_status_request(view="everything"),
        lambda: build_watch_request(-0.1),
        lambda: build_search_request(limit=-1),
        lambda: build_search_request(limit=2**31),
        lambda: make_filter(states=["running"]),
    ],
)
def test_bad_request_arguments_raise_value_error(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]


def test_make_filter_merges_keywords_over_a_filter() -> None:
    assert make_filter() is None
    merged = make_filter(TaskFilter(worker="w", task_name="a"), task_name="b", states=["active"])
    assert merged == TaskFilter(worker="w", task_name="b", states=(TaskState.ACTIVE,))
    assert list(merged.to_proto().states) == [pb.TASK_STATE_ACTIVE]


def test_token_becomes_bearer_metadata() -> None:
    assert _base.auth_metadata("abc") == (("authorization", "Bearer abc"),)
    assert _base.auth_metadata(None) == ()
    with pytest.raises(ValueError):
        _base.auth_metadata("abc\ndef")


def test_channel_options() -> None:
    options = dict(_base.channel_options(TLSConfig(server_name="status.internal"), {"x": 1}))
    assert options["grpc.ssl_target_name_override"] == "status.internal"
    assert options["grpc.max_receive_message_length"] >= 64 * 1024 * 1024
    assert options["x"] == 1


def test_tls_config_checks_its_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="together"):
        TLSConfig(client_cert="c.pem")
    with pytest.raises(ValueError, match="cannot read"):
        TLSConfig(ca_cert=tmp_path / "missing.pem").channel_credentials()
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("hello")
    with pytest.raises(ValueError, match="not a PEM"):
        TLSConfig(ca_cert=not_pem).channel_credentials()
    assert isinstance(TLSConfig().channel_credentials(), grpc.ChannelCredentials)


def test_retry_policy_only_retries_transient_errors() -> None:
    policy = RetryPolicy()
    assert policy.should_retry(Unavailable("x"))
    assert not policy.should_retry(DeadlineExceeded("x"))
    assert not policy.should_retry(PermissionDenied("x"))
    assert not policy.should_retry(ValueError("x"))
    eager = RetryPolicy(retry_deadline_exceeded=True)
    assert eager.should_retry(DeadlineExceeded("x"))
    assert not eager.should_retry(DeadlineExceeded("x"), unary=False)


def test_backoff_grows_caps_and_jitters() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=1.0)
    assert policy.backoff(1, rng=lambda: 0.0) == pytest.approx(0.05)
    assert policy.backoff(1, rng=lambda: 1.0) == pytest.approx(0.1)
    assert policy.backoff(3, rng=lambda: 1.0) == pytest.approx(0.4)
    assert policy.backoff(30, rng=lambda: 1.0) == pytest.approx(1.0)
    assert policy.backoff(30, rng=lambda: 0.0) == pytest.approx(0.5)


def test_coerce_retry_policy() -> None:
    assert coerce_retry_policy(None).attempts == 1
    assert coerce_retry_policy(0).attempts == 1
    assert coerce_retry_policy(2).attempts == 3
    with pytest.raises(ValueError):
        coerce_retry_policy(-1)
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_stream_resumer_backs_off_and_gives_up() -> None:
    now = [100.0]
    resumer = StreamResumer(
        RetryPolicy(initial_backoff=1, max_backoff=8, reconnect_timeout=10),
        clock=lambda: now[0],
    )
    assert resumer.received(1.0)
    delays = [resumer.failed(Unavailable("down")) for _ in range(3)]
    assert delays[0] <= 1 and delays[1] <= 2 and delays[2] <= 4
    now[0] += 5
    resumer.failed(Unavailable("down"))
    # The snapshot seen before the gap is not repeated; a new one is.
    assert not resumer.received(1.0)
    assert resumer.attempt == 0
    now[0] += 100
    resumer.failed(Unavailable("down"))  # a new failure period starts now
    now[0] += 10
    with pytest.raises(Unavailable):
        resumer.failed(Unavailable("down"))
    with pytest.raises(PermissionDenied):
        resumer.failed(PermissionDenied("no"))


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, trailers: tuple[tuple[str, object], ...]) -> None:
        self._code, self._trailers = code, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "busy"

    def trailing_metadata(self) -> tuple[tuple[str, object], ...]:
        return self._trailers


def test_from_rpc_error_tolerates_odd_errors() -> None:
    bare = from_rpc_error(grpc.RpcError())
    assert bare.code is grpc.StatusCode.UNKNOWN
    limited = from_rpc_error(
        _FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, (("retry-after", b"bogus"),))
    )
    assert isinstance(limited, RateLimited) and limited.retry_after is None
    limited = from_rpc_error(
        _FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, (("retry-after", b"4"),))
    )
    assert isinstance(limited, RateLimited) and limited.retry_after == 4.0
