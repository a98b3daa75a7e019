"""Budgets: 429 / RESOURCE_EXHAUSTED once spent, recovery after the refill; streams; size limits."""

from __future__ import annotations

import asyncio

import grpc
import httpx
import pytest
import websockets

import celerystatus
from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc
from celerystatus_server.config import Settings
from celerystatus_server.security.policy import policy_from_settings
from celerystatus_server.security.ratelimit import Budget, RateLimiter, StreamLimiter
from celerystatus_server.server import StatusServer
from tests.support.waiting import wait_for_async

from .conftest import TOKENS_ENV, VIEWER_TOKEN, StartServer, auth


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_bucket_refills_at_its_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Budget(2, 4), Budget(0.5, 1), clock=clock)
    assert all(limiter.check("a").allowed for _ in range(4))
    refused = limiter.check("a")
    assert not refused.allowed and refused.retry_after == pytest.approx(0.5)
    assert refused.retry_after_header == "1"
    assert limiter.check("b").allowed  # other callers are not affected
    clock.advance(0.5)
    assert limiter.check("a").allowed and not limiter.check("a").allowed


def test_fresh_budget_is_separate_and_tighter() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Budget(10, 10), Budget(0.5, 1), clock=clock)
    assert limiter.check("a", fresh=True).allowed
    refused = limiter.check("a", fresh=True)
    assert not refused.allowed and refused.retry_after == pytest.approx(2.0) and "fresh" in refused.reason
    assert limiter.check("a").allowed  # plain requests still go through
    clock.advance(2.0)
    assert limiter.check("a", fresh=True).allowed


def test_tracked_callers_are_bounded() -> None:
    limiter = RateLimiter(Budget(1, 1), clock=FakeClock(), max_keys=100)
    for n in range(1000):
        limiter.check(f"addr:10.0.{n // 256}.{n % 256}")
    assert limiter.tracked == 100


def test_stream_slots() -> None:
    streams = StreamLimiter(per_principal=2, total=3)
    assert streams.acquire("a").allowed and streams.acquire("a").allowed
    assert not streams.acquire("a").allowed
    assert streams.acquire("b").allowed
    assert not streams.acquire("c").allowed  # total reached
    streams.release("a")
    assert streams.acquire("c").allowed


@pytest.fixture
async def limited(start_server: StartServer) -> tuple[StatusServer, FakeClock]:
    clock = FakeClock()
    settings = Settings(enabled=False, tokens=TOKENS_ENV)
    policy = policy_from_settings(settings)
    policy.limiter = RateLimiter(Budget(1, 3), Budget(0.25, 1), clock=clock)
    policy.streams = StreamLimiter(per_principal=1, total=10)
    return await start_server(policy=policy), clock


async def test_http_429_then_recovery(limited: tuple[StatusServer, FakeClock]) -> None:
    server, clock = limited
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as client:
        codes = [(await client.get("/api/celery-status", headers=auth(VIEWER_TOKEN))).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        refused = await client.get("/api/celery-status", headers=auth(VIEWER_TOKEN))
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"] == "request rate limit exceeded"
        clock.advance(1.0)
        assert (await client.get("/api/celery-status", headers=auth(VIEWER_TOKEN))).status_code == 200
        # Forced-fresh requests have their own, tighter budget.
        clock.advance(10)
        fresh = [
            (await client.get("/api/celery-status", params={"max_age": "1"}, headers=auth(VIEWER_TOKEN))).status_code
            for _ in range(2)
        ]
        assert fresh == [200, 429]


async def test_grpc_resource_exhausted_with_retry_info(limited: tuple[StatusServer, FakeClock]) -> None:
    server, clock = limited
    async with celerystatus.AsyncCeleryStatusClient(server.grpc_target, token=VIEWER_TOKEN, retries=0) as client:
        for _ in range(3):
            await client.get_status()
        with pytest.raises(celerystatus.RateLimited) as caught:
            await client.get_status()
        assert caught.value.retry_after == pytest.approx(1.0, abs=0.01)
        clock.advance(1.0)
        await client.get_status()
        clock.advance(10)
        await client.get_status(max_age=1)
        with pytest.raises(celerystatus.RateLimited) as fresh:
            await client.get_status(max_age=1)
        assert fresh.value.retry_after == pytest.approx(4.0, abs=0.01)
    # The raw trailers carry both forms of the delay.
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.CeleryStatusServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raw:
            for _ in range(5):
                await stub.GetStatus(pb.GetStatusRequest(), metadata=(("authorization", f"Bearer {VIEWER_TOKEN}"),))
    keys = dict(raw.value.trailing_metadata())
    assert raw.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "grpc-status-details-bin" in keys and float(keys["retry-after"]) > 0


async def test_streams_count_against_the_concurrency_limit(limited: tuple[StatusServer, FakeClock]) -> None:
    server, clock = limited
    md = (("authorization", f"Bearer {VIEWER_TOKEN}"),)
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.CeleryStatusServiceStub(channel)
        first = stub.WatchStatus(pb.WatchStatusRequest(), metadata=md)
        await asyncio.wait_for(first.read(), 5)
        clock.advance(10)
        second = stub.WatchStatus(pb.WatchStatusRequest(), metadata=md)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await asyncio.wait_for(second.read(), 5)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # A WebSocket by the same principal is refused too: one budget for both servers.
        url = f"ws://127.0.0.1:{server.http_port}/ws/celery-status"
        with pytest.raises(websockets.InvalidStatus) as ws_refused:
            await websockets.connect(url, additional_headers=auth(VIEWER_TOKEN), open_timeout=5)
        assert ws_refused.value.response.status_code == 429
        first.cancel()
        clock.advance(10)

        async def reopened() -> bool:
            call = stub.WatchStatus(pb.WatchStatusRequest(), metadata=md)
            try:
                await asyncio.wait_for(call.read(), 5)
                return True
            except grpc.aio.AioRpcError:
                return False
            finally:
                call.cancel()

        await wait_for_async(reopened, timeout=10, message="stream slot never released")


async def test_oversized_inputs_are_refused(http: httpx.AsyncClient, server: StatusServer) -> None:
    long_query = await http.get("/api/celery-status", params={"task_name": "x" * 5000}, headers=auth(VIEWER_TOKEN))
    assert long_query.status_code == 414
    too_long_value = await http.get("/api/celery-status", params={"task_name": "x" * 600}, headers=auth(VIEWER_TOKEN))
    assert too_long_value.status_code == 422
    huge_header = await http.get("/api/celery-status", headers={"X-Junk": "x" * 70000, **auth(VIEWER_TOKEN)})
    assert 400 <= huge_header.status_code < 500
    url = f"ws://127.0.0.1:{server.http_port}/ws/celery-status"
    async with websockets.connect(url, additional_headers=auth(VIEWER_TOKEN), open_timeout=5) as ws:
        await asyncio.wait_for(ws.recv(), 5)
        await ws.send("x" * 100_000)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            for _ in range(5):
                await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.CeleryStatusServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            big = pb.GetStatusRequest(filter=pb.TaskFilter(task_name="x" * 100_000))
            await stub.GetStatus(big, metadata=(("authorization", f"Bearer {VIEWER_TOKEN}"),), timeout=5)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
