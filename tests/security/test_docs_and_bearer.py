"""/docs and /openapi.json follow the /metrics rule; how the bearer scheme is parsed; quiet refusals."""

from __future__ import annotations

import logging

import grpc
import httpx
import pytest
import websockets

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc
from celerystatus_server.server import StatusServer

from .conftest import VIEWER_TOKEN, StartServer, auth

DOCS = ["/openapi.json", "/docs"]


def _client(server: StatusServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10)


@pytest.mark.parametrize("path", DOCS)
async def test_docs_need_a_token_when_tokens_are_configured(http: httpx.AsyncClient, path: str) -> None:
    refused = await http.get(path)
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert (await http.get(path, headers=auth("not-a-configured-token"))).status_code == 401
    allowed = await http.get(path, headers=auth(VIEWER_TOKEN))
    assert allowed.status_code == 200
    if path == "/openapi.json":
        assert "/api/celery-status" in allowed.json()["paths"]


async def test_docs_can_be_made_public(start_server: StartServer) -> None:
    server = await start_server(docs_public=True)
    async with _client(server) as client:
        for path in DOCS:
            assert (await client.get(path)).status_code == 200, path
        assert (await client.get("/api/celery-status")).status_code == 401
        assert (await client.get("/metrics")).status_code == 401


async def test_docs_are_open_without_tokens(start_server: StartServer) -> None:
    server = await start_server(tokens=None)
    async with _client(server) as client:
        spec = await client.get("/openapi.json")
        assert spec.status_code == 200 and "/docs" not in spec.json()["paths"]


# The scheme is case-insensitive and may be followed by several spaces; the
# token itself is exact. (Whitespace around a header value never reaches us:
# HTTP parsers drop it, and clients refuse to send it.)
ACCEPTED = [f"Bearer {VIEWER_TOKEN}", f"bearer {VIEWER_TOKEN}", f"BEARER {VIEWER_TOKEN}",
            f"Bearer   {VIEWER_TOKEN}"]
REFUSED = [f"Bearer\t{VIEWER_TOKEN}", f"Bearer{VIEWER_TOKEN}", f"Bearer {VIEWER_TOKEN.upper()}",
           f"Bearer {VIEWER_TOKEN} extra", f"Token {VIEWER_TOKEN}", VIEWER_TOKEN]


@pytest.mark.parametrize("header", ACCEPTED)
async def test_bearer_forms_accepted(server: StatusServer, http: httpx.AsyncClient, header: str) -> None:
    assert (await http.get("/api/celery-status", headers={"Authorization": header})).status_code == 200
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        reply = await pb_grpc.CeleryStatusServiceStub(channel).GetStatus(
            pb.GetStatusRequest(), metadata=(("authorization", header),), timeout=5
        )
    assert reply.status.enabled


@pytest.mark.parametrize("header", REFUSED)
async def test_bearer_forms_refused(server: StatusServer, http: httpx.AsyncClient, header: str) -> None:
    assert (await http.get("/api/celery-status", headers={"Authorization": header})).status_code == 401
    if "\t" in header:
        return  # grpc clients refuse to send a tab in metadata
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await pb_grpc.CeleryStatusServiceStub(channel).GetStatus(
                pb.GetStatusRequest(), metadata=(("authorization", header),), timeout=5
            )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_refused_websockets_log_no_error(server: StatusServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"ws://127.0.0.1:{server.http_port}/ws/celery-status"
    for _ in range(50):
        with pytest.raises(websockets.InvalidStatus) as caught:
            await websockets.connect(url, open_timeout=5)
        assert caught.value.response.status_code == 401
    # Before: "ASGI callable returned without completing handshake." at ERROR, once per attempt.
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors[:3]
    async with websockets.connect(url, additional_headers=auth(VIEWER_TOKEN), open_timeout=5) as ws:
        assert '"workers"' in await ws.recv()
