"""CeleryStatusService, health and reflection on a real server with real workers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc
from celerystatus_server.config import Settings
from celerystatus_server.server import SERVICE_NAME, StatusServer
from tests.support.holds import Hold
from tests.support.server import running_server
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory

pytestmark = pytest.mark.slow


@pytest.fixture
def server(redis_url: str, worker_factory: WorkerFactory) -> Iterator[StatusServer]:
    worker_factory("grpc1")
    worker_factory("grpc2", extension=True)
    settings = Settings(broker_url=redis_url, grpc_address="127.0.0.1:0", refresh_interval=0.5, show_args=True)
    with running_server(settings) as srv:
        yield srv


@pytest.fixture
def channel(server: StatusServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.grpc_target) as ch:
        yield ch


def test_get_watch_and_search(
    server: StatusServer, channel: grpc.Channel, redis_url: str, worker_factory: WorkerFactory
) -> None:
    stub = pb_grpc.CeleryStatusServiceStub(channel)
    hold = Hold(redis_url)
    worker_factory.send("tasks.evaluate_code", "eval-999", kwargs={"hold": hold.token})
    hold.wait_started()
    status = wait_for(
        lambda: (s := stub.GetStatus(pb.GetStatusRequest(), timeout=2).status).workers == 2
        and s.active_tasks == 1
        and s,
        timeout=15,
    )
    assert status.connected and status.HasField("age") and status.HasField("observed_at")
    found = stub.SearchTasks(pb.SearchTasksRequest(filter=pb.TaskFilter(eval_id="eval-999")), timeout=2)
    assert [t.name for t in found.tasks] == ["tasks.evaluate_code"]
    assert found.tasks[0].state == pb.TASK_STATE_ACTIVE
    filtered = stub.GetStatus(pb.GetStatusRequest(filter=pb.TaskFilter(eval_id="nope")), timeout=2).status
    assert filtered.active_tasks == 1, "counters describe the whole cluster"
    assert all(not lst.tasks for lst in filtered.queue_details.active.values())
    summary = stub.GetStatus(pb.GetStatusRequest(view=pb.STATUS_VIEW_SUMMARY), timeout=2).status
    assert summary.workers == 2 and not summary.queue_details.active

    rounds = []
    for message in stub.WatchStatus(pb.WatchStatusRequest(), timeout=20):
        rounds.append(message.status.inspection.round)
        if len(rounds) == 3:
            break
    assert rounds == sorted(rounds) and len(set(rounds)) == 3
    hold.release()
    hold.close()


def test_max_age_forces_a_fresh_round_within_the_floor(server: StatusServer, channel: grpc.Channel) -> None:
    stub = pb_grpc.CeleryStatusServiceStub(channel)
    wait_for(lambda: stub.GetStatus(pb.GetStatusRequest(), timeout=2).status.workers == 2, timeout=15)
    fresh = stub.GetStatus(pb.GetStatusRequest(max_age={"nanos": 1_000_000}), timeout=5).status
    assert fresh.age.ToNanoseconds() < 0.5e9


def test_watch_min_interval_skips_snapshots(server: StatusServer, channel: grpc.Channel) -> None:
    stub = pb_grpc.CeleryStatusServiceStub(channel)
    stream = stub.WatchStatus(pb.WatchStatusRequest(min_interval={"seconds": 1}), timeout=20)
    times = []
    for _ in stream:
        times.append(time.monotonic())
        if len(times) == 3:
            break
    assert times[2] - times[1] >= 0.95


@pytest.mark.parametrize(
    "request_",
    [
        pb.GetStatusRequest(view=99),
        pb.GetStatusRequest(max_age={"seconds": -1}),
        pb.GetStatusRequest(filter=pb.TaskFilter(states=[7])),
        pb.GetStatusRequest(filter=pb.TaskFilter(task_name="x" * 5000)),
    ],
    ids=["view", "negative-max-age", "state", "long-name"],
)
def test_bad_requests_are_invalid_argument(channel: grpc.Channel, request_: pb.GetStatusRequest) -> None:
    stub = pb_grpc.CeleryStatusServiceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.GetStatus(request_, timeout=2)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details()


def test_bad_search_limit_and_stream_interval(channel: grpc.Channel) -> None:
    stub = pb_grpc.CeleryStatusServiceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.SearchTasks(pb.SearchTasksRequest(limit=-5), timeout=2)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        next(iter(stub.WatchStatus(pb.WatchStatusRequest(min_interval={"seconds": -3}), timeout=2)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_oversized_request_is_rejected(channel: grpc.Channel) -> None:
    stub = pb_grpc.CeleryStatusServiceStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.GetStatus(pb.GetStatusRequest(filter=pb.TaskFilter(arg="x" * 200_000)), timeout=2)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_health_and_reflection(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", SERVICE_NAME):
        reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=2)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = list(
        reflection.ServerReflectionInfo(
            iter(
                [
                    reflection_pb2.ServerReflectionRequest(list_services=""),
                    reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE_NAME),
                ]
            ),
            timeout=5,
        )
    )
    names = {s.name for s in answers[0].list_services_response.service}
    assert {SERVICE_NAME, "grpc.health.v1.Health"} <= names
    assert answers[1].file_descriptor_response.file_descriptor_proto


def test_deadline_is_honoured_when_waiting_for_a_fresh_round(redis_url: str) -> None:
    # No fresh round can come within the call's deadline (the floor between
    # rounds is 60 s): instead of letting the deadline expire while it waits,
    # the server answers before it with the snapshot it has.
    settings = Settings(
        broker_url=redis_url, grpc_address="127.0.0.1:0", refresh_interval=120.0, min_refresh_interval=60.0
    )
    with running_server(settings) as srv, grpc.insecure_channel(srv.grpc_target) as ch:
        stub = pb_grpc.CeleryStatusServiceStub(ch)
        first = wait_for(
            lambda: (s := stub.GetStatus(pb.GetStatusRequest(), timeout=5).status).inspection.round >= 1 and s,
            timeout=15,
        )
        answer = stub.GetStatus(pb.GetStatusRequest(max_age={"nanos": 1}), timeout=2.0).status
    assert answer.inspection.round == first.inspection.round
    assert answer.observed_at == first.observed_at


def test_disabled_server_answers_without_a_broker() -> None:
    settings = Settings(broker_url="redis://127.0.0.1:1/0", grpc_address="127.0.0.1:0", enabled=False)
    with running_server(settings) as srv, grpc.insecure_channel(srv.grpc_target) as ch:
        status = pb_grpc.CeleryStatusServiceStub(ch).GetStatus(pb.GetStatusRequest(), timeout=2).status
        assert not status.enabled and status.message
        assert status.workers == 0
