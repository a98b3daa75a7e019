"""Sync and async clients against a real gRPC server with a scripted servicer."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2

from celerystatus import (
    AsyncCeleryStatusClient,
    CeleryStatus,
    CeleryStatusClient,
    CeleryStatusError,
    DeadlineExceeded,
    FailedPrecondition,
    InternalError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimited,
    RetryPolicy,
    ServingStatus,
    StatusView,
    TaskFilter,
    TaskState,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)
from celerystatus.v1 import celery_status_pb2 as pb
from tests.support.waiting import wait_for_async

from .conftest import ScriptedServer, ScriptedServicer
from .samples import full_status_proto

FAST_RETRIES = RetryPolicy(attempts=4, total_timeout=10, initial_backoff=0.01, max_backoff=0.05)

CODES = [
    (grpc.StatusCode.UNAVAILABLE, Unavailable),
    (grpc.StatusCode.UNAUTHENTICATED, Unauthenticated),
    (grpc.StatusCode.PERMISSION_DENIED, PermissionDenied),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, RateLimited),
    (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceeded),
    (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument),
    (grpc.StatusCode.OUT_OF_RANGE, InvalidArgument),
    (grpc.StatusCode.NOT_FOUND, NotFound),
    (grpc.StatusCode.INTERNAL, InternalError),
    (grpc.StatusCode.UNKNOWN, InternalError),
    (grpc.StatusCode.UNIMPLEMENTED, Unimplemented),
    (grpc.StatusCode.DATA_LOSS, InternalError),
    (grpc.StatusCode.FAILED_PRECONDITION, FailedPrecondition),
    (grpc.StatusCode.ABORTED, CeleryStatusError),
]


def _expect(code: grpc.StatusCode, cls: type[CeleryStatusError], error: CeleryStatusError) -> None:
    assert type(error) is cls
    assert error.code is code
    assert "scripted failure" in str(error)
    assert isinstance(error.__cause__, grpc.RpcError)


# --- happy path ---------------------------------------------------------------


def test_get_status_returns_models(scripted_server: ScriptedServer) -> None:
    with CeleryStatusClient(scripted_server.target, token="s3cret") as client:
        status = client.get_status(max_age=1.5, view="summary")
    assert status == CeleryStatus.from_proto(full_status_proto())
    request = scripted_server.servicer.requests[0]
    assert request.max_age == duration_pb2.Duration(seconds=1, nanos=500_000_000)
    assert request.view == pb.STATUS_VIEW_SUMMARY
    assert scripted_server.servicer.metadata[0]["authorization"] == "Bearer s3cret"


async def test_async_get_status_returns_models(scripted_server: ScriptedServer) -> None:
    async with AsyncCeleryStatusClient(scripted_server.target, token="s3cret") as client:
        status = await client.get_status(
            view=StatusView.FULL, filter=TaskFilter(worker="celery@worker-1")
        )
    assert status == CeleryStatus.from_proto(full_status_proto())
    request = scripted_server.servicer.requests[0]
    assert request.filter.worker == "celery@worker-1"
    assert not request.HasField("max_age")
    assert scripted_server.servicer.metadata[0]["authorization"] == "Bearer s3cret"


def test_search_and_find_task(scripted_server: ScriptedServer) -> None:
    with CeleryStatusClient(scripted_server.target) as client:
        result = client.search_tasks(states=["active"], limit=5, eval_id="eval-456")
        location = client.find_task("eval-456")
        missing = client.find_task("eval-000")
    request = scripted_server.servicer.requests[0]
    assert list(request.filter.states) == [pb.TASK_STATE_ACTIVE] and request.limit == 5
    assert [t.id for t in result.tasks] == ["task-123"]
    assert location is not None
    assert (location.worker, location.state) == ("celery@worker-1", TaskState.ACTIVE)
    assert location.running_for is not None and location.running_for > 0
    assert missing is None


async def test_async_helpers(scripted_server: ScriptedServer) -> None:
    async with AsyncCeleryStatusClient(scripted_server.target) as client:
        location = await client.find_task("eval-456")
        health = await client.worker_health(now=1_700_000_000.0)
        advice = await client.scaling_advice(1, 5)
    assert location is not None and location.task.id == "task-123"
    assert health["celery@worker-2"].findings[0].kind.value == "crashed_processes"
    # Same snapshot as the sync test: 1 active + 1 reserved + 45 queued over 6 slots.
    assert advice.action.value == "up" and advice.demand == 47


def test_sync_helpers(scripted_server: ScriptedServer) -> None:
    with CeleryStatusClient(scripted_server.target) as client:
        health = client.worker_health(now=1_700_000_000.0)
        advice = client.scaling_advice(1, 5)
    assert health["celery@worker-1"].healthy
    assert not health["celery@worker-2"].healthy
    # 1 active + 1 reserved + 45 queued over 6 slots: needs more workers.
    assert advice.action.value == "up" and advice.demand == 47


# --- error translation ----------------------------------------------------------


@pytest.mark.parametrize(("code", "cls"), CODES, ids=lambda v: getattr(v, "name", ""))
def test_sync_error_translation(
    scripted_server: ScriptedServer, code: grpc.StatusCode, cls: type[CeleryStatusError]
) -> None:
    scripted_server.servicer.abort_code = code
    with CeleryStatusClient(scripted_server.target, retries=None) as client:
        with pytest.raises(CeleryStatusError) as info:
            client.get_status()
        _expect(code, cls, info.value)
        with pytest.raises(CeleryStatusError) as info:
            client.search_tasks(task_name="x")
        _expect(code, cls, info.value)


@pytest.mark.parametrize(("code", "cls"), CODES, ids=lambda v: getattr(v, "name", ""))
async def test_async_error_translation(
    scripted_server: ScriptedServer, code: grpc.StatusCode, cls: type[CeleryStatusError]
) -> None:
    scripted_server.servicer.abort_code = code
    async with AsyncCeleryStatusClient(scripted_server.target, retries=None) as client:
        with pytest.raises(CeleryStatusError) as info:
            await client.get_status()
        _expect(code, cls, info.value)
        with pytest.raises(CeleryStatusError) as info:
            await client.search_tasks(task_name="x")
        _expect(code, cls, info.value)


def test_rate_limited_reads_retry_info(scripted_server: ScriptedServer) -> None:
    from google.protobuf import any_pb2
    from google.rpc import code_pb2, error_details_pb2, status_pb2

    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=3)))
    scripted_server.servicer.rich_status = status_pb2.Status(
        code=code_pb2.RESOURCE_EXHAUSTED, message="slow down", details=[detail]
    )
    with CeleryStatusClient(scripted_server.target) as client:
        with pytest.raises(RateLimited) as info:
            client.get_status()
    assert info.value.retry_after == 3.0
    assert scripted_server.servicer.calls["GetStatus"] == 1  # not retried


async def test_rate_limited_reads_retry_after_trailer(scripted_server: ScriptedServer) -> None:
    scripted_server.servicer.abort_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    scripted_server.servicer.abort_trailers = (("retry-after", "2.5"),)
    async with AsyncCeleryStatusClient(scripted_server.target) as client:
        with pytest.raises(RateLimited) as info:
            await client.get_status()
    assert info.value.retry_after == 2.5


def test_unreachable_server_is_unavailable(dead_target: str) -> None:
    with CeleryStatusClient(dead_target, retries=None, timeout=5) as client:
        with pytest.raises(Unavailable):
            client.get_status()


async def test_async_unreachable_server_is_unavailable(dead_target: str) -> None:
    async with AsyncCeleryStatusClient(dead_target, retries=None, timeout=5) as client:
        with pytest.raises(Unavailable):
            await client.get_status()


# --- retry bounds -------------------------------------------------------------


def test_retry_stops_after_its_attempts(scripted_server: ScriptedServer) -> None:
    scripted_server.servicer.abort_code = grpc.StatusCode.UNAVAILABLE
    with CeleryStatusClient(scripted_server.target, retries=FAST_RETRIES) as client:
        with pytest.raises(Unavailable):
            client.get_status()
    assert scripted_server.servicer.calls["GetStatus"] == 4


async def test_async_retry_stops_after_its_attempts(scripted_server: ScriptedServer) -> None:
    scripted_server.servicer.abort_code = grpc.StatusCode.UNAVAILABLE
    async with AsyncCeleryStatusClient(scripted_server.target, retries=FAST_RETRIES) as client:
        with pytest.raises(Unavailable):
            await client.search_tasks()
    assert scripted_server.servicer.calls["SearchTasks"] == 4


def test_retry_stops_at_its_total_time(scripted_server: ScriptedServer) -> None:
    scripted_server.servicer.abort_code = grpc.StatusCode.UNAVAILABLE
    policy = RetryPolicy(attempts=1000, total_timeout=0.5, initial_backoff=0.05, max_backoff=0.1)
    with CeleryStatusClient(scripted_server.target, retries=policy) as client:
        with pytest.raises(Unavailable):
            client.get_status()
    calls = scripted_server.servicer.calls["GetStatus"]
    # The time budget, not the attempt count, ended the retries: at most
    # 0.5 s / 0.025 s (the shortest jittered backoff) attempts fit in it.
    # How long giving up takes is measured in bench/bench_bounds.py.
    assert 2 <= calls <= 21


async def test_async_retry_stops_at_its_total_time(scripted_server: ScriptedServer) -> None:
    scripted_server.servicer.abort_code = grpc.StatusCode.UNAVAILABLE
    policy = RetryPolicy(attempts=1000, total_timeout=0.5, initial_backoff=0.05, max_backoff=0.1)
    async with AsyncCeleryStatusClient(scripted_server.target, retries=policy) as client:
        with pytest.raises(Unavailable):
            await client.get_status()
    assert 2 <= scripted_server.servicer.calls["GetStatus"] <= 21


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ],
)
def test_non_transient_codes_are_not_retried(
    scripted_server: ScriptedServer, code: grpc.StatusCode
) -> None:
    scripted_server.servicer.abort_code = code
    with CeleryStatusClient(scripted_server.target, retries=FAST_RETRIES) as client:
        with pytest.raises(CeleryStatusError):
            client.get_status()
    assert scripted_server.servicer.calls["GetStatus"] == 1


def test_deadline_exceeded_retried_when_asked(scripted_server: ScriptedServer) -> None:
    scripted_server.servicer.abort_code = grpc.StatusCode.DEADLINE_EXCEEDED
    policy = RetryPolicy(attempts=3, initial_backoff=0.01, retry_deadline_exceeded=True)
    with CeleryStatusClient(scripted_server.target, retries=policy) as client:
        with pytest.raises(DeadlineExceeded):
            client.get_status()
    assert scripted_server.servicer.calls["GetStatus"] == 3


# --- watch streams --------------------------------------------------------------


def _status(round_: int) -> pb.CeleryStatus:
    status = full_status_proto()
    status.inspection.round = round_
    status.observed_at.seconds += round_
    return status


WATCH_RETRIES = RetryPolicy(initial_backoff=0.05, max_backoff=0.2, reconnect_timeout=30)


def test_watch_streams_updates(scripted_server: ScriptedServer) -> None:
    with CeleryStatusClient(scripted_server.target) as client:
        stream = client.watch_status(min_interval=0.5, view="summary")
        assert next(stream).inspection.round == 7
        scripted_server.servicer.publish(_status(8))
        assert next(stream).inspection.round == 8
        stream.close()
    request = scripted_server.servicer.requests[0]
    assert request.min_interval.nanos == 500_000_000


@pytest.mark.parametrize("graceful", [True, False], ids=["graceful", "cut"])
def test_watch_survives_a_server_restart(scripted_server: ScriptedServer, graceful: bool) -> None:
    with CeleryStatusClient(scripted_server.target, retries=WATCH_RETRIES) as client:
        stream = client.watch_status()
        assert next(stream).inspection.round == 7
        scripted_server.restart(ScriptedServicer(_status(100)), graceful=graceful)
        assert next(stream).inspection.round == 100
        scripted_server.servicer.publish(_status(101))
        assert next(stream).inspection.round == 101
        stream.close()


@pytest.mark.parametrize("graceful", [True, False], ids=["graceful", "cut"])
async def test_async_watch_survives_a_server_restart(
    scripted_server: ScriptedServer, graceful: bool
) -> None:
    async with AsyncCeleryStatusClient(scripted_server.target, retries=WATCH_RETRIES) as client:
        stream = client.watch_status()
        first = await anext(stream)
        assert first.inspection.round == 7
        scripted_server.restart(ScriptedServicer(_status(100)), graceful=graceful)
        assert (await anext(stream)).inspection.round == 100
        scripted_server.servicer.publish(_status(101))
        assert (await anext(stream)).inspection.round == 101
        await stream.aclose()


def test_watch_gives_up_after_reconnect_timeout(dead_target: str) -> None:
    policy = RetryPolicy(initial_backoff=0.05, max_backoff=0.1, reconnect_timeout=0.5)
    gaps: list[CeleryStatusError] = []
    with CeleryStatusClient(dead_target, retries=policy) as client:
        with pytest.raises(Unavailable):
            next(client.watch_status(on_disconnect=gaps.append))
    # Each failed attempt before giving up was reported; the last one raised.
    assert gaps and all(isinstance(error, Unavailable) for error in gaps)


def test_watch_does_not_resume_on_permission_denied(scripted_server: ScriptedServer) -> None:
    scripted_server.servicer.abort_code = grpc.StatusCode.PERMISSION_DENIED
    with CeleryStatusClient(scripted_server.target, retries=WATCH_RETRIES) as client:
        with pytest.raises(PermissionDenied):
            next(client.watch_status())
    assert scripted_server.servicer.calls["WatchStatus"] == 1


def test_redact_args_reaches_the_server(scripted_server: ScriptedServer) -> None:
    with CeleryStatusClient(scripted_server.target) as client:
        client.get_status(redact_args=True)
        client.search_tasks(eval_id="eval-456", redact_args=True)
        stream = client.watch_status(redact_args=True)
        next(stream)
        stream.close()
        client.get_status()
    get, search, watch, plain = scripted_server.servicer.requests
    assert (get.redact_args, search.redact_args, watch.redact_args) == (True, True, True)
    assert plain.redact_args is False


def test_on_disconnect_reports_each_gap_and_repeats_after_it(scripted_server: ScriptedServer) -> None:
    gaps: list[CeleryStatusError] = []
    with CeleryStatusClient(scripted_server.target, retries=WATCH_RETRIES) as client:
        stream = client.watch_status(on_disconnect=gaps.append)
        assert next(stream).inspection.round == 7
        # The restarted server still holds the same snapshot: without
        # on_disconnect it would be skipped as a repeat; with it the consumer
        # that was told about the gap hears the stream is back.
        scripted_server.restart(ScriptedServicer(full_status_proto()), graceful=False)
        assert next(stream).inspection.round == 7
        stream.close()
    assert len(gaps) >= 1 and all(isinstance(error, Unavailable) for error in gaps)


async def test_async_on_disconnect_and_reconnect_on_every_error(scripted_server: ScriptedServer) -> None:
    # A consumer that must never stop (a proxy, a router) resumes on any error.
    policy = RetryPolicy.watch_forever(initial_backoff=0.01, max_backoff=0.05)
    assert policy.reconnect_on == (CeleryStatusError,) and policy.reconnect_timeout is None
    assert policy.attempts == 1
    gaps: list[CeleryStatusError] = []
    scripted_server.servicer.abort_code = grpc.StatusCode.PERMISSION_DENIED
    async with AsyncCeleryStatusClient(scripted_server.target, retries=policy) as client:
        stream = client.watch_status(on_disconnect=gaps.append)
        first = asyncio.ensure_future(anext(stream))
        await wait_for_async(lambda: len(gaps) >= 2)
        scripted_server.servicer.abort_code = None
        assert (await asyncio.wait_for(first, 10)).inspection.round == 7
        await stream.aclose()
    assert all(isinstance(error, PermissionDenied) for error in gaps)


def test_watch_ends_when_the_client_closes(scripted_server: ScriptedServer) -> None:
    client = CeleryStatusClient(scripted_server.target, retries=WATCH_RETRIES)
    stream = client.watch_status()
    assert next(stream).inspection.round == 7
    client.close()
    with pytest.raises(StopIteration):
        next(stream)


def test_reconnect_on_rejects_other_types() -> None:
    with pytest.raises(ValueError, match="reconnect_on"):
        RetryPolicy(reconnect_on=(ValueError,))  # type: ignore[arg-type]


def test_check_health(scripted_server: ScriptedServer) -> None:
    # The scripted server runs no health service: the SDK says so by type.
    with CeleryStatusClient(scripted_server.target, retries=None) as client:
        with pytest.raises(Unimplemented):
            client.check_health()


async def test_async_check_health_of_a_real_health_service() -> None:
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        await servicer.set("other", health_pb2.HealthCheckResponse.NOT_SERVING)
        async with AsyncCeleryStatusClient(f"127.0.0.1:{port}", retries=None) as client:
            assert await client.check_health() is ServingStatus.SERVING
            assert await client.check_health("other") is ServingStatus.NOT_SERVING
            with pytest.raises(NotFound):
                await client.check_health("missing")
    finally:
        await server.stop(None)


class MaskingServicer(ScriptedServicer):
    """Answers searches as a server does for a viewer: matched, arguments masked."""

    def SearchTasks(self, request: Any, context: grpc.ServicerContext) -> pb.SearchTasksResponse:
        reply = super().SearchTasks(request, context)
        for task in reply.tasks:
            for value in task.args.values:
                value.string_value = "***"
            task.args_redacted = True
        return reply


def test_find_task_trusts_the_servers_match_on_masked_arguments() -> None:
    server = ScriptedServer(MaskingServicer())
    server.start()
    try:
        with CeleryStatusClient(server.target) as client:
            location = client.find_task("eval-456")
    finally:
        server.stop()
    assert location is not None and location.task.id == "task-123" and location.task.args_redacted
