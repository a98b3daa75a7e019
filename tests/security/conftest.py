"""A real StatusServer (collector disabled) serving a canned snapshot, with credentials configured."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc
from celerystatus.values import dict_to_struct, list_to_list_value
from celerystatus_server.config import Settings
from celerystatus_server.security.tokens import hash_token
from celerystatus_server.server import StatusServer
from tests.bridge.fake_service import make_status
from tests.support.waiting import wait_for_async

from .certs import CertificateAuthority

VIEWER_TOKEN = "viewer-token-0123456789"
ADMIN_TOKEN = "admin-token-9876543210"
SECRET_ARG = "hunter2-secret-argument"
SECRET_KWARG = "sk-live-secret"
BROKER_PASSWORD = "brokerpass-s3cret"

TOKENS_ENV = f"{hash_token(VIEWER_TOKEN)}:viewer:dashboard,{hash_token(ADMIN_TOKEN)}:admin:ops"


def canned_status(round_number: int = 1) -> pb.CeleryStatus:
    """The bridge tests' snapshot, with secrets among the arguments and in the broker URL."""
    status = make_status(round_number, active=2)
    status.broker_url = "redis://user:***@127.0.0.1:6379/10"
    for task_list in status.queue_details.active.values():
        for task in task_list.tasks:
            eval_id = task.args.values[0].string_value
            task.args.CopyFrom(list_to_list_value([eval_id, SECRET_ARG]))
            task.kwargs.CopyFrom(dict_to_struct({"api_key": SECRET_KWARG, "eval_id": eval_id}))
            task.argsrepr = f"('{eval_id}', '{SECRET_ARG}')"
    return status


StartServer = Callable[..., Awaitable[StatusServer]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """``await start_server(**settings)``: a StatusServer on free loopback ports with the canned snapshot."""
    started: list[StatusServer] = []

    async def start(policy: Any = None, **overrides: Any) -> StatusServer:
        values: dict[str, Any] = {
            "enabled": False,
            "grpc_address": "127.0.0.1:0",
            "http_address": "127.0.0.1:0",
            "tokens": TOKENS_ENV,
            "allow_arg_patterns": ("eval-*",),
        }
        values.update(overrides)
        server = StatusServer(Settings(**values), policy=policy)
        await server.start()
        started.append(server)
        server.store.publish(canned_status())
        if server.bridge is not None:
            hub = server.bridge._app.state.bridge.hubs[True]
            await hub.wait_for(lambda s: s.from_backend and s.data.get("enabled"), timeout=10)
        return server

    yield start
    for server in reversed(started):
        await server.stop(grace=0.2)


@pytest.fixture
async def server(start_server: StartServer) -> StatusServer:
    return await start_server()


@pytest.fixture
async def http(server: StatusServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory: Path = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority(directory)
    other_ca = CertificateAuthority(directory, "unrelated CA")
    roles = directory / "client-roles"
    roles.write_text("# CN role\nops-client admin\nboard-client viewer\n")
    return {
        "ca": ca.cert,
        "server": ca.issue("celery-status-server", server=True),
        "admin_client": ca.issue("ops-client"),
        "viewer_client": ca.issue("board-client"),
        "stranger_client": ca.issue("stranger"),
        "forged_client": other_ca.issue("ops-client", stem="forged-ops-client"),
        "roles": roles,
    }


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def free_port() -> int:
    """A loopback port nothing listens on (for a broker URL that must fail)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def seen_with_broker(url: str) -> tuple[pb.CeleryStatus, httpx.Response, str]:
    """A server on broker ``url`` (unreachable) after two failing rounds: its gRPC status, JSON answer and metrics.

    A library that quotes the URL verbatim is logged too, so the caller can check the logs as well.
    """
    settings = Settings(
        broker_url=url,
        grpc_address="127.0.0.1:0",
        http_address="127.0.0.1:0",
        tokens=TOKENS_ENV,
        refresh_interval=0.3,
        min_refresh_interval=0.1,
        inspect_timeout=0.3,
        round_deadline=0.6,
    )
    server = StatusServer(settings)
    await server.start()
    try:
        assert server.collector is not None
        collector = server.collector
        await wait_for_async(lambda: collector.rounds >= 2, timeout=20, message="no failing round")
        logging.getLogger("kombu.connection").error("cannot connect to %s", url)
        async with grpc.aio.insecure_channel(server.grpc_target) as channel:
            reply: pb.GetStatusResponse = await pb_grpc.CeleryStatusServiceStub(channel).GetStatus(
                pb.GetStatusRequest(), metadata=(("authorization", f"Bearer {ADMIN_TOKEN}"),), timeout=5
            )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http:
            body = await http.get("/api/celery-status", headers=auth(ADMIN_TOKEN))
            metrics = (await http.get("/metrics", headers=auth(ADMIN_TOKEN))).text
    finally:
        await server.stop(grace=0.2)
    return reply.status, body, metrics
