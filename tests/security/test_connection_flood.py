"""Idle-connection floods and slowloris against a real ``celery-status serve`` with 1,024 descriptors.

Before the connection limits, 1,100 idle TCP connections to the HTTP port
exhausted the process's descriptors: HTTP, /livez and gRPC stopped answering,
the collector reported a false broker outage, and the log grew by tens of MB
of tracebacks. Here the attackers come from other loopback addresses than the
probes, so the per-client limit does not hide the total limit.
"""

from __future__ import annotations

import resource
from pathlib import Path

import grpc
import httpx
import pytest

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc
from tests.support.flood import Flood, attacker_addresses
from tests.support.serve_process import ServeProcess
from tests.support.waiting import wait_for

LOWERED = (1024, 1024)
#: The log may hold a few state-change lines, never one per connection.
MAX_LOG_BYTES = 64 * 1024

SERVE_ARGS = [
    "--refresh-interval", "0.5",
    "--rate-limit", "0",
    "--http-header-timeout", "2",
    "--log-level", "info",
]


def _attacker_descriptors(needed: int) -> None:
    """The test process plays the attacker: it needs a descriptor per connection it holds."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < needed:
        pytest.fail(f"the test process needs {needed} descriptors to play the attacker (hard limit {hard})")


def _probe(server: ServeProcess, http: httpx.Client, channel: grpc.Channel) -> None:
    """One round of what must keep working: /livez, the JSON status, gRPC GetStatus."""
    assert http.get("/livez").status_code == 200
    status = http.get("/api/celery-status")
    assert status.status_code == 200, status.text
    assert status.json()["connected"] is True, status.json()
    reply = pb_grpc.CeleryStatusServiceStub(channel).GetStatus(pb.GetStatusRequest(), timeout=10)
    assert reply.status.connected


def _flood_and_probe(tmp_path: Path, redis_url: str, idle: int, slow: int, probes: int = 10) -> ServeProcess:
    _attacker_descriptors(idle + slow + 500)
    server = ServeProcess(redis_url, tmp_path / "serve.log", args=SERVE_ARGS, nofile=LOWERED)
    with server, Flood(server.http_port) as flood:
        with httpx.Client(base_url=server.http_url, timeout=10) as http:
            wait_for(lambda: http.get("/api/celery-status").json()["connected"], timeout=30,
                     message="collector never connected")
        attackers = attacker_addresses(100)
        flood.idle(idle, attackers)
        flood.slow_headers(slow, attacker_addresses(50, network=1))
        # The attacker reopens whatever the server closes, for as long as the probes run.
        flood.keep_up(attackers)
        # A new client (new connection each time) still gets through, several times over.
        with grpc.insecure_channel(server.grpc_target) as channel:
            for _ in range(probes):
                with httpx.Client(base_url=server.http_url, timeout=10) as http:
                    _probe(server, http, channel)
                assert server.open_descriptors() < LOWERED[0] - 100
            wait_for(lambda: flood.reopened > 0, timeout=30, message="the server never closed an idle connection")
        # Slowloris: every request head that never completes is cut off by the server.
        wait_for(lambda: flood.slow_still_open() == 0, timeout=60, interval=0.5,
                 message="slow-header connections left open")
        with httpx.Client(base_url=server.http_url, timeout=10) as http, \
                grpc.insecure_channel(server.grpc_target) as channel:
            _probe(server, http, channel)
        log = server.log_text()
    assert "Too many open files" not in log
    assert "Traceback" not in log, log[-3000:]
    assert len(log.encode()) < MAX_LOG_BYTES, f"{len(log)} bytes of log"
    return server


def test_idle_and_slow_header_flood_leaves_the_service_answering(tmp_path: Path, redis_url: str) -> None:
    _flood_and_probe(tmp_path, redis_url, idle=1100, slow=500)


@pytest.mark.slow
def test_five_thousand_idle_connections(tmp_path: Path, redis_url: str) -> None:
    _flood_and_probe(tmp_path, redis_url, idle=5000, slow=500)


def test_idle_flood_on_the_grpc_port_is_bounded(tmp_path: Path, redis_url: str) -> None:
    """gRPC core refuses connections past its limit and drops unfinished handshakes.

    It has no "close the longest idle" rule, so a new gRPC client may be
    refused until the handshake timeout has cleared the idle ones (clients
    retry UNAVAILABLE); the process itself, HTTP and the collector are unharmed.
    """
    args = [*SERVE_ARGS, "--grpc-handshake-timeout", "2"]
    _attacker_descriptors(1600)
    server = ServeProcess(redis_url, tmp_path / "serve.log", args=args, nofile=LOWERED)
    with server, Flood(server.grpc_port) as flood:
        # The in-process bridge holds its gRPC connection from before the flood;
        # one that had to reconnect would wait like any new gRPC client.
        with httpx.Client(base_url=server.http_url, timeout=10) as http:
            wait_for(lambda: http.get("/api/celery-status").json()["connected"], timeout=30,
                     message="collector never connected")
        flood.idle(1100, attacker_addresses(100))
        assert server.open_descriptors() < LOWERED[0] - 100
        with httpx.Client(base_url=server.http_url, timeout=10) as http:
            assert http.get("/livez").status_code == 200
            status = http.get("/api/celery-status")
            assert status.status_code == 200 and status.json()["connected"] is True, status.text

        def get_status() -> bool:
            with grpc.insecure_channel(server.grpc_target) as channel:
                stub = pb_grpc.CeleryStatusServiceStub(channel)
                return stub.GetStatus(pb.GetStatusRequest(), timeout=5).status.connected

        assert wait_for(get_status, timeout=30, ignore=(grpc.RpcError,))
        log = server.log_text()
    assert "Too many open files" not in log
    assert len(log.encode()) < MAX_LOG_BYTES


def test_one_client_address_cannot_take_every_connection(tmp_path: Path, redis_url: str) -> None:
    args = [*SERVE_ARGS, "--http-max-connections-per-client", "8", "--http-header-timeout", "60"]
    with ServeProcess(redis_url, tmp_path / "serve.log", args=args) as server, Flood(server.http_port) as flood:
        flood.idle(50, ["127.0.0.9"])
        # The server closes all but 8 of them (the longest idle first), long before the header timeout.
        wait_for(lambda: sum(not flood.closed_by_server(s) for s in flood.sockets) <= 8, timeout=30,
                 message="more than 8 connections from one address left open")
        assert httpx.get(f"{server.http_url}/livez", timeout=10).status_code == 200


def test_descriptor_limit_is_raised_to_the_hard_limit(tmp_path: Path, redis_url: str) -> None:
    with ServeProcess(redis_url, tmp_path / "serve.log", nofile=(256, 4096)) as server:
        assert server.soft_nofile() == 4096


def test_websockets_outlive_the_header_timeout(tmp_path: Path, redis_url: str) -> None:
    """A WebSocket is never an idle HTTP connection, however long it lasts."""
    import asyncio

    import websockets

    args = ["--refresh-interval", "0.3", "--http-header-timeout", "1"]

    async def listen(url: str) -> int:
        received = 0
        async with websockets.connect(url, open_timeout=10) as ws:
            # 12 snapshots at one per 0.3 s: several header timeouts long.
            while received < 12:
                await asyncio.wait_for(ws.recv(), 10)
                received += 1
        return received

    with ServeProcess(redis_url, tmp_path / "serve.log", args=args) as server:
        url = f"ws://127.0.0.1:{server.http_port}/ws/celery-status"
        assert asyncio.run(listen(url)) == 12
