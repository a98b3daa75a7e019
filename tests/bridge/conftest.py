"""Fixtures for the bridge tests: a canned gRPC backend and the bridge over real HTTP."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from celerystatus_server.bridge import BridgeServer

from .fake_service import FakeBackend


@pytest.fixture
async def fake_backend() -> AsyncIterator[FakeBackend]:
    backend = FakeBackend()
    await backend.start()
    try:
        yield backend
    finally:
        await backend.stop()


@pytest.fixture
def dead_target() -> str:
    """An address nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


BridgeFactory = Callable[[str], Awaitable[BridgeServer]]


@pytest.fixture
async def start_bridge() -> AsyncIterator[BridgeFactory]:
    """Start a bridge on a free loopback port in front of a gRPC target."""
    started: list[BridgeServer] = []

    async def start(target: str) -> BridgeServer:
        server = BridgeServer(target, "127.0.0.1:0")
        await server.start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        await server.stop()


@pytest.fixture
async def bridge(fake_backend: FakeBackend, start_bridge: BridgeFactory) -> BridgeServer:
    return await start_bridge(fake_backend.target)


@pytest.fixture
async def http(bridge: BridgeServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=bridge.url, timeout=10) as client:
        yield client


@pytest.fixture
async def status_server(redis_url: str) -> AsyncIterator[Any]:
    """The real status server with its bridge, in this process and loop."""
    from celerystatus_server.config import Settings
    from celerystatus_server.server import StatusServer

    server = StatusServer(
        Settings(
            broker_url=redis_url,
            grpc_address="127.0.0.1:0",
            http_address="127.0.0.1:0",
            refresh_interval=0.5,
            min_refresh_interval=0.2,
            # The seed's stuck-evaluation finder looks for the id in args.
            show_args=True,
        )
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=0.5)


@pytest.fixture
async def live_http(status_server: Any) -> AsyncIterator[httpx.AsyncClient]:
    base = f"http://127.0.0.1:{status_server.http_port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        yield client
