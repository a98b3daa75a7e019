"""A broker password given as a URL query parameter is masked in gRPC, JSON, metrics and logs."""

from __future__ import annotations

import logging
import socket

import grpc
import httpx
import pytest

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc
from celerystatus_server.config import Settings
from celerystatus_server.server import StatusServer
from tests.support.waiting import wait_for_async

from .conftest import ADMIN_TOKEN, BROKER_PASSWORD, TOKENS_ENV, auth


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("query", ["password={}", "db=10&password={}", "sentinel_password={}&password={}"])
async def test_query_password_is_masked_everywhere(query: str, caplog: pytest.LogCaptureFixture) -> None:
    port = _free_port()  # nothing listens: every round fails and quotes the URL
    url = f"redis://127.0.0.1:{port}/10?" + query.format(BROKER_PASSWORD, BROKER_PASSWORD)
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
    caplog.set_level(logging.DEBUG)
    server = StatusServer(settings)
    await server.start()
    try:
        await wait_for_async(lambda: server.collector.rounds >= 2, timeout=20, message="no failing round")
        logging.getLogger("kombu.connection").error("cannot connect to %s", url)
        async with grpc.aio.insecure_channel(server.grpc_target) as channel:
            reply = await pb_grpc.CeleryStatusServiceStub(channel).GetStatus(
                pb.GetStatusRequest(), metadata=(("authorization", f"Bearer {ADMIN_TOKEN}"),), timeout=5
            )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as http:
            body = (await http.get("/api/celery-status", headers=auth(ADMIN_TOKEN))).json()
            metrics = (await http.get("/metrics", headers=auth(ADMIN_TOKEN))).text
    finally:
        await server.stop(grace=0.2)
    assert not reply.status.connected
    assert reply.status.broker_url == body["broker_url"]
    assert "password=***" in body["broker_url"] and f"127.0.0.1:{port}/10" in body["broker_url"]
    for where, text in (("gRPC", str(reply)), ("JSON", str(body)), ("metrics", metrics), ("logs", caplog.text)):
        assert BROKER_PASSWORD not in text, where
