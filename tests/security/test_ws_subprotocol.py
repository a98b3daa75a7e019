"""Browsers authenticate the WebSocket with a ``bearer.<base64url>`` subprotocol, never a URL."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest
import websockets

from celerystatus_server.bridge.security import WS_SUBPROTOCOL
from celerystatus_server.server import StatusServer

from .conftest import ADMIN_TOKEN, SECRET_ARG, VIEWER_TOKEN, auth


def bearer(token: str) -> str:
    return "bearer." + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def ws_url(server: StatusServer) -> str:
    return f"ws://127.0.0.1:{server.http_port}/ws/celery-status"


@pytest.mark.parametrize(("token", "sees_args"), [(VIEWER_TOKEN, False), (ADMIN_TOKEN, True)])
async def test_token_as_subprotocol(server: StatusServer, token: str, sees_args: bool) -> None:
    async with websockets.connect(
        ws_url(server), subprotocols=[WS_SUBPROTOCOL, bearer(token)], open_timeout=5  # type: ignore[list-item]
    ) as ws:
        # Only the protocol name is echoed; the token never comes back in a header.
        assert ws.subprotocol == WS_SUBPROTOCOL
        text = await asyncio.wait_for(ws.recv(), 5)
    assert (SECRET_ARG in str(text)) is sees_args
    assert json.loads(text)["workers"] == 2


@pytest.mark.parametrize(
    "protocols",
    [
        [WS_SUBPROTOCOL],  # no token at all
        [WS_SUBPROTOCOL, bearer("not-a-configured-token")],
        [WS_SUBPROTOCOL, "bearer.%%%not-base64"],
        [WS_SUBPROTOCOL, "bearer."],
        [WS_SUBPROTOCOL, bearer(VIEWER_TOKEN), bearer(ADMIN_TOKEN)],  # ambiguous
    ],
)
async def test_missing_or_bad_subprotocol_token_is_refused(server: StatusServer, protocols: list[str]) -> None:
    with pytest.raises(websockets.InvalidStatus) as caught:
        await websockets.connect(ws_url(server), subprotocols=protocols, open_timeout=5)  # type: ignore[arg-type]
    assert caught.value.response.status_code == 401


async def test_header_and_subprotocol_together_are_refused(server: StatusServer) -> None:
    with pytest.raises(websockets.InvalidStatus) as caught:
        await websockets.connect(
            ws_url(server),
            subprotocols=[WS_SUBPROTOCOL, bearer(VIEWER_TOKEN)],  # type: ignore[list-item]
            additional_headers=auth(ADMIN_TOKEN),
            open_timeout=5,
        )
    assert caught.value.response.status_code == 401


async def test_plain_http_requests_ignore_the_subprotocol_header(server: StatusServer) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
        response = await http.get("/api/celery-status", headers={"Sec-WebSocket-Protocol": bearer(ADMIN_TOKEN)})
    assert response.status_code == 401
