"""Hypothesis-generated gRPC requests: any field value, and raw bytes as request bodies.

Allowed outcomes: OK, INVALID_ARGUMENT, RESOURCE_EXHAUSTED (oversized message),
UNAUTHENTICATED (anonymous). Never INTERNAL or UNKNOWN, and the server keeps answering.
Bounded for CI by CELERY_STATUS_FUZZ_EXAMPLES (default 100 per RPC).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import duration_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc
from celerystatus_server.config import Settings
from celerystatus_server.server import StatusServer
from tests.support.server import running_server

from .conftest import ADMIN_TOKEN, TOKENS_ENV, VIEWER_TOKEN, canned_status

EXAMPLES = int(os.environ.get("CELERY_STATUS_FUZZ_EXAMPLES", "100"))
ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAUTHENTICATED,
}
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)

texts = st.one_of(
    st.text(max_size=64),
    st.text(min_size=1000, max_size=1100),
    st.builds(lambda n, c: c * n, st.integers(60_000, 70_000), st.sampled_from(["x", "\u00e9", "\U0001f600"])),
)
durations = st.builds(duration_pb2.Duration, seconds=INT64, nanos=INT32)
filters = st.builds(
    pb.TaskFilter,
    task_name=texts,
    eval_id=texts,
    arg=st.text(max_size=64),
    worker=st.text(max_size=64),
    states=st.lists(INT32, max_size=5),
    task_id=st.text(max_size=64),
)
tokens = st.sampled_from([None, VIEWER_TOKEN, ADMIN_TOKEN, "wrong"])


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[StatusServer]:
    config = Settings(
        enabled=False, grpc_address="127.0.0.1:0", tokens=TOKENS_ENV, rate_limit=0, fresh_rate_limit=0
    )
    with running_server(config) as server:
        server.store.publish(canned_status())
        yield server


@pytest.fixture(scope="module")
def channel(fuzz_server: StatusServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(fuzz_server.grpc_target) as chan:
        yield chan


def _md(token: str | None) -> tuple[tuple[str, str], ...] | None:
    return (("authorization", f"Bearer {token}"),) if token else None


def _outcome(call: object) -> grpc.StatusCode:
    try:
        call() if callable(call) else None  # type: ignore[operator]
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()  # type: ignore[attr-defined]
        assert code in ALLOWED, f"{code}: {exc.details()}"  # type: ignore[attr-defined]
        return code
    return grpc.StatusCode.OK


def _assert_still_serving(channel: grpc.Channel) -> None:
    stub = pb_grpc.CeleryStatusServiceStub(channel)
    reply = stub.GetStatus(pb.GetStatusRequest(), metadata=_md(VIEWER_TOKEN), timeout=5)
    assert reply.status.workers == 2


@FUZZ
@given(
    max_age=st.none() | durations,
    view=INT32,
    flt=filters,
    redact=st.booleans(),
    token=tokens,
)
def test_get_status(channel: grpc.Channel, max_age, view, flt, redact, token) -> None:  # type: ignore[no-untyped-def]
    request = pb.GetStatusRequest(view=view, filter=flt, redact_args=redact)
    if max_age is not None:
        request.max_age.CopyFrom(max_age)
    stub = pb_grpc.CeleryStatusServiceStub(channel)
    _outcome(lambda: stub.GetStatus(request, metadata=_md(token), timeout=5))


@FUZZ
@given(flt=filters, limit=INT32, redact=st.booleans(), token=tokens)
def test_search_tasks(channel: grpc.Channel, flt, limit, redact, token) -> None:  # type: ignore[no-untyped-def]
    request = pb.SearchTasksRequest(filter=flt, limit=limit, redact_args=redact)
    stub = pb_grpc.CeleryStatusServiceStub(channel)
    _outcome(lambda: stub.SearchTasks(request, metadata=_md(token), timeout=5))


@FUZZ
@given(min_interval=st.none() | durations, view=INT32, flt=filters, token=tokens)
def test_watch_status(channel: grpc.Channel, min_interval, view, flt, token) -> None:  # type: ignore[no-untyped-def]
    request = pb.WatchStatusRequest(view=view, filter=flt)
    if min_interval is not None:
        request.min_interval.CopyFrom(min_interval)
    stream = pb_grpc.CeleryStatusServiceStub(channel).WatchStatus(request, metadata=_md(token), timeout=5)

    def first() -> None:
        try:
            next(stream)
        finally:
            stream.cancel()

    _outcome(first)


METHODS = ["GetStatus", "SearchTasks"]


@FUZZ
@given(body=st.binary(max_size=2048), method=st.sampled_from(METHODS), token=tokens)
def test_raw_bytes_as_request_body(channel: grpc.Channel, body: bytes, method: str, token: str | None) -> None:
    call = channel.unary_unary(f"/celerystatus.v1.CeleryStatusService/{method}")
    _outcome(lambda: call(body, metadata=_md(token), timeout=5))


@FUZZ
@given(body=st.binary(max_size=2048), token=tokens)
def test_raw_bytes_on_the_stream(channel: grpc.Channel, body: bytes, token: str | None) -> None:
    stream = channel.unary_stream("/celerystatus.v1.CeleryStatusService/WatchStatus")(
        body, metadata=_md(token), timeout=5
    )

    def first() -> None:
        try:
            next(stream)
        finally:
            stream.cancel()

    _outcome(first)


def test_server_survives_the_fuzzing(channel: grpc.Channel) -> None:
    # Runs last in this module: the same server answered everything above.
    _assert_still_serving(channel)
    malformed = channel.unary_unary("/celerystatus.v1.CeleryStatusService/GetStatus")
    with pytest.raises(grpc.RpcError) as caught:
        malformed(b"\x0a\xff\xff\xff\xff\x0f", metadata=_md(VIEWER_TOKEN), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
