"""Each role against each RPC, unary and stream; probes and reflection stay open."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc
from celerystatus_server.server import StatusServer

from .conftest import ADMIN_TOKEN, SECRET_ARG, SECRET_KWARG, VIEWER_TOKEN, StartServer

ROLES = {
    "anonymous": None,
    "viewer": VIEWER_TOKEN,
    "admin": ADMIN_TOKEN,
    "bad token": "not-a-configured-token",
}
EXPECTED = {
    "anonymous": grpc.StatusCode.UNAUTHENTICATED,
    "viewer": grpc.StatusCode.OK,
    "admin": grpc.StatusCode.OK,
    "bad token": grpc.StatusCode.UNAUTHENTICATED,
}


def metadata(token: str | None) -> tuple[tuple[str, str], ...] | None:
    return (("authorization", f"Bearer {token}"),) if token else None


async def _get(stub: pb_grpc.CeleryStatusServiceStub, token: str | None) -> list[pb.Task]:
    reply = await stub.GetStatus(pb.GetStatusRequest(), metadata=metadata(token), timeout=5)
    return [t for tl in reply.status.queue_details.active.values() for t in tl.tasks]


async def _search(stub: pb_grpc.CeleryStatusServiceStub, token: str | None) -> list[pb.Task]:
    reply = await stub.SearchTasks(pb.SearchTasksRequest(), metadata=metadata(token), timeout=5)
    return [t for t in reply.tasks if t.state == pb.TASK_STATE_ACTIVE]


async def _watch(stub: pb_grpc.CeleryStatusServiceStub, token: str | None) -> list[pb.Task]:
    call = stub.WatchStatus(pb.WatchStatusRequest(), metadata=metadata(token))
    try:
        reply = await asyncio.wait_for(call.read(), 5)
        if reply is grpc.aio.EOF:
            await call  # raises the status the server ended with
            raise AssertionError("stream ended without a message")
    finally:
        call.cancel()
    return [t for tl in reply.status.queue_details.active.values() for t in tl.tasks]


RPCS = {"GetStatus": _get, "SearchTasks": _search, "WatchStatus": _watch}


@pytest.mark.parametrize("rpc", sorted(RPCS))
@pytest.mark.parametrize("role", sorted(ROLES))
async def test_role_against_rpc(server: StatusServer, role: str, rpc: str) -> None:
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.CeleryStatusServiceStub(channel)
        if EXPECTED[role] != grpc.StatusCode.OK:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await RPCS[rpc](stub, ROLES[role])
            assert caught.value.code() == EXPECTED[role]
            return
        tasks = await RPCS[rpc](stub, ROLES[role])
    assert len(tasks) == 2
    for task in tasks:
        args = [v.string_value for v in task.args.values]
        kwargs = {k: v.string_value for k, v in task.kwargs.fields.items()}
        if role == "admin":
            assert SECRET_ARG in args and kwargs["api_key"] == SECRET_KWARG
            assert not task.args_redacted and SECRET_ARG in task.argsrepr
        else:
            # Only values on the allow-list (eval-*) survive; the others are masked
            # in place, so args[0] is the evaluation id for every role.
            assert args == [task.args.values[0].string_value, "***"] and args[0].startswith("eval-")
            assert kwargs == {"api_key": "***", "eval_id": args[0]}
            assert task.args_redacted and task.argsrepr == ""
        assert SECRET_ARG not in str(task) or role == "admin"


async def test_admin_can_ask_for_the_viewer_variant(server: StatusServer) -> None:
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.CeleryStatusServiceStub(channel)
        reply = await stub.GetStatus(pb.GetStatusRequest(redact_args=True), metadata=metadata(ADMIN_TOKEN))
    assert SECRET_ARG not in str(reply)


async def test_viewer_arg_search_cannot_probe_withheld_values(server: StatusServer) -> None:
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.CeleryStatusServiceStub(channel)
        flt = pb.TaskFilter(arg=SECRET_ARG)
        viewer = await stub.SearchTasks(pb.SearchTasksRequest(filter=flt), metadata=metadata(VIEWER_TOKEN))
        admin = await stub.SearchTasks(pb.SearchTasksRequest(filter=flt), metadata=metadata(ADMIN_TOKEN))
        by_eval = await stub.SearchTasks(
            pb.SearchTasksRequest(filter=pb.TaskFilter(eval_id="eval-1")), metadata=metadata(VIEWER_TOKEN)
        )
    assert len(viewer.tasks) == 0 and len(admin.tasks) == 2
    # The viewer is told the empty answer is not definitive.
    assert (viewer.search_limited, admin.search_limited) == ("arguments withheld", "")
    assert [t.id for t in by_eval.tasks] == ["task-1"] and by_eval.search_limited == ""


async def test_viewer_finds_an_evaluation_whose_arguments_are_withheld(start_server: StartServer) -> None:
    # No allow-list: every argument is withheld from viewers, yet eval_id
    # (which the viewer already knows) still finds the task, through both
    # GetStatus and SearchTasks, and the task comes back still masked.
    server = await start_server(allow_arg_patterns=())
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.CeleryStatusServiceStub(channel)
        flt = pb.TaskFilter(eval_id="eval-1", task_name="evaluate_code")
        found = await stub.SearchTasks(pb.SearchTasksRequest(filter=flt), metadata=metadata(VIEWER_TOKEN))
        status = await stub.GetStatus(pb.GetStatusRequest(filter=flt), metadata=metadata(VIEWER_TOKEN))
        admin_view = await stub.SearchTasks(
            pb.SearchTasksRequest(filter=flt, redact_args=True), metadata=metadata(ADMIN_TOKEN)
        )
    listed = [t for tl in status.status.queue_details.active.values() for t in tl.tasks]
    for tasks in (list(found.tasks), listed, list(admin_view.tasks)):
        assert [t.id for t in tasks] == ["task-1"]
        (task,) = tasks
        assert [v.string_value for v in task.args.values] == ["***", "***"]
        assert {k: v.string_value for k, v in task.kwargs.fields.items()} == {"api_key": "***", "eval_id": "***"}
        assert task.args_redacted
    assert SECRET_ARG not in str(found) + str(status) and "eval-1" not in str(found)


async def test_redaction_runs_once_per_snapshot(server: StatusServer) -> None:
    assert server.servicer is not None
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.CeleryStatusServiceStub(channel)
        before = server.servicer.redacted.computed
        for _ in range(10):
            await stub.GetStatus(pb.GetStatusRequest(), metadata=metadata(VIEWER_TOKEN))
    assert server.servicer.redacted.computed - before <= 1


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer", "bearer  ", "Token abc", "Bearer " + "x" * 5000],
)
async def test_malformed_authorization_is_unauthenticated(server: StatusServer, header: str) -> None:
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.CeleryStatusServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetStatus(pb.GetStatusRequest(), metadata=(("authorization", header),), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_health_and_reflection_stay_open(server: StatusServer) -> None:
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = [s.name async for r in call for s in r.list_services_response.service]
    assert "celerystatus.v1.CeleryStatusService" in names


async def test_without_tokens_anonymous_is_a_viewer_unless_show_args(start_server: StartServer) -> None:
    closed = await start_server(tokens=None)
    opened = await start_server(tokens=None, show_args=True)
    for srv, expect_secret in ((closed, False), (opened, True)):
        async with grpc.aio.insecure_channel(srv.grpc_target) as channel:
            reply = await pb_grpc.CeleryStatusServiceStub(channel).GetStatus(pb.GetStatusRequest(), timeout=5)
        assert (SECRET_ARG in str(reply)) is expect_secret
