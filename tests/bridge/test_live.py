"""WebSocket fan-out, probes and metrics over real HTTP against a canned gRPC backend."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from celerystatus_server.bridge import BridgeServer
from tests.support.waiting import wait_for_async

from .conftest import BridgeFactory
from .fake_service import FakeBackend, make_status


def ws_url(bridge: BridgeServer) -> str:
    return f"ws://127.0.0.1:{bridge.port}/ws/celery-status"


async def test_websocket_receives_successive_snapshots(bridge: BridgeServer, fake_backend: FakeBackend) -> None:
    async with websockets.connect(ws_url(bridge), open_timeout=5) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert first["inspection"]["round"] == 1
        await fake_backend.service.publish(make_status(2, active=2))
        second = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert second["inspection"]["round"] == 2
        assert second["active_tasks"] == 2
        await fake_backend.service.publish(make_status(3))
        third = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert third["inspection"]["round"] == 3


async def test_all_sockets_share_one_stream(bridge: BridgeServer, fake_backend: FakeBackend) -> None:
    sockets = [await websockets.connect(ws_url(bridge), open_timeout=5) for _ in range(5)]
    try:
        for ws in sockets:
            json.loads(await asyncio.wait_for(ws.recv(), 5))
        await fake_backend.service.publish(make_status(2))
        for ws in sockets:
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["inspection"]["round"] == 2
        assert fake_backend.service.watch_calls == 1
    finally:
        for ws in sockets:
            await ws.close()
    hub = bridge._app.state.bridge.hub
    await wait_for_async(lambda: hub.subscriber_count == 0)


async def test_slow_consumer_skips_to_the_latest(bridge: BridgeServer, fake_backend: FakeBackend) -> None:
    hub = bridge._app.state.bridge.hub
    await hub.wait_for(lambda s: s.data["inspection"]["round"] == 1, 5)
    with hub.subscribe() as subscription:
        for round_number in range(2, 22):
            await fake_backend.service.publish(make_status(round_number))
            await hub.wait_for(lambda s, n=round_number: s.data["inspection"]["round"] == n, 5)
        # Twenty snapshots reached the hub while nobody read: only the newest
        # is kept, together with the one the subscription was primed with.
        latest = await asyncio.wait_for(subscription.next(), 1)
        assert latest is not None and latest.data["inspection"]["round"] == 21
        assert subscription.skipped == 20


async def test_websocket_closes_cleanly_on_server_stop(fake_backend: FakeBackend, start_bridge: BridgeFactory) -> None:
    bridge = await start_bridge(fake_backend.target)
    async with websockets.connect(ws_url(bridge), open_timeout=5) as ws:
        await asyncio.wait_for(ws.recv(), 5)
        await bridge.stop()
        # Closed by the app (1001), not by uvicorn's shutdown timeout.
        with pytest.raises(websockets.ConnectionClosedOK):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1001


async def test_probes_while_backend_down(start_bridge: BridgeFactory, dead_target: str) -> None:
    bridge = await start_bridge(dead_target)
    async with httpx.AsyncClient(base_url=bridge.url, timeout=10) as client:
        live = await client.get("/livez")
        assert (live.status_code, live.json()["status"]) == (200, "ok")
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable"
        # The WebSocket tells its clients about the outage rather than hanging.
        async with websockets.connect(ws_url(bridge), open_timeout=5) as ws:
            body = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert (body["connected"], body["error"]) == (False, "status service unavailable")


async def test_outage_is_pushed_and_the_stream_comes_back(
    fake_backend: FakeBackend, start_bridge: BridgeFactory
) -> None:
    bridge = await start_bridge(fake_backend.target)
    hub = bridge._app.state.bridge.hub
    async with websockets.connect(ws_url(bridge), open_timeout=5) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert (first["connected"], first["inspection"]["round"]) == (True, 1)
        await fake_backend.stop()
        lost = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert (lost["connected"], lost["error"]) == (False, "status service unavailable")
        assert not hub.stream_connected and hub.last_error
        # The restarted service still holds round 1: the same snapshot as before
        # the gap, delivered again because the consumers were told of the gap.
        await fake_backend.restart()
        back = json.loads(await asyncio.wait_for(ws.recv(), 15))
        assert (back["connected"], back["inspection"]["round"]) == (True, 1)
    await wait_for_async(lambda: hub.stream_connected and hub.last_error is None)


async def test_readiness_follows_the_backend(fake_backend: FakeBackend, start_bridge: BridgeFactory) -> None:
    bridge = await start_bridge(fake_backend.target)
    async with httpx.AsyncClient(base_url=bridge.url, timeout=10) as client:
        assert (await client.get("/readyz")).status_code == 200
        await fake_backend.stop()
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert (await client.get("/livez")).status_code == 200


async def test_metrics_parse_and_follow_the_snapshot(
    http: httpx.AsyncClient, bridge: BridgeServer, fake_backend: FakeBackend
) -> None:
    hub = bridge._app.state.bridge.hub
    await hub.wait_for(lambda s: s.from_backend, timeout=5)
    await fake_backend.service.publish(make_status(2, active=3))
    await hub.wait_for(lambda s: s.data["inspection"]["round"] == 2, timeout=5)
    # Same round again (e.g. after a reconnect): must not be observed twice.
    await fake_backend.service.publish(make_status(2, active=3))

    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}

    def value(name: str, **labels: str) -> float:
        for sample in families[name].samples:
            if sample.labels == labels and sample.name in (name, f"{name}_total"):
                return sample.value
        raise AssertionError(f"{name}{labels} not found")

    assert value("celery_workers") == 2
    # 3 active + 3 waiting over 80% of the mean pool of 2: ceil(6 / 1.6)
    assert value("celery_workers_desired") == 4
    assert value("celery_active_tasks") == 3
    assert value("celery_scheduled_tasks") == 1
    assert value("celery_reserved_tasks") == 0
    assert value("celery_connected") == 1
    # A counter family "celery_worker" whose sample is celery_worker_total,
    # so promtool accepts it and rate(celery_worker_total[5m]) still works.
    assert families["celery_worker"].type == "counter"
    assert value("celery_worker", worker="celery@w1") == 150
    assert value("celery_worker", worker="celery@w2") == 7
    assert "celery_worker_total{" in response.text
    assert value("celery_queue_messages", queue="celery") == 3
    assert value("celery_status_stale") == 0
    assert 0.1 <= value("celery_snapshot_age_seconds") < 30
    assert families["celery_inspection_rounds"].type == "counter"
    assert value("celery_inspection_rounds") == 2
    assert value("celery_inspection_errors") == 0
    histogram = families["celery_inspection_duration_seconds"]
    assert histogram.type == "histogram"
    count = next(s for s in histogram.samples if s.name.endswith("_count"))
    assert count.value == 2  # rounds 1 and 2, each once
    assert fake_backend.service.get_requests == []  # scrapes never ask the backend
    # The standard process and platform series, and no _created noise.
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "python_info"} <= set(families)
    assert "_created" not in response.text


async def test_metrics_negotiate_openmetrics(http: httpx.AsyncClient, bridge: BridgeServer) -> None:
    hub = bridge._app.state.bridge.hub
    await hub.wait_for(lambda s: s.from_backend, timeout=5)
    response = await http.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    assert "# TYPE celery_worker counter" in response.text
    assert "_created" not in response.text
    classic = await http.get("/metrics")
    assert classic.headers["content-type"].startswith("text/plain")
    assert "# EOF" not in classic.text


async def test_metrics_without_backend_report_only_backend_up(
    http: httpx.AsyncClient, bridge: BridgeServer, fake_backend: FakeBackend
) -> None:
    hub = bridge._app.state.bridge.hub
    await hub.wait_for(lambda s: s.from_backend, timeout=5)
    before = {f.name for f in text_string_to_metric_families((await http.get("/metrics")).text)}
    assert {"celery_workers", "celery_connected", "celery_inspection_rounds"} <= before

    await fake_backend.stop()
    await hub.wait_for(lambda s: not s.from_backend, timeout=10)
    families = {f.name: f for f in text_string_to_metric_families((await http.get("/metrics")).text)}
    assert families["celery_status_backend_up"].samples[0].value == 0
    cluster = {name for name in families if name.startswith("celery_")}
    # Absent, not zero: a "no workers" alert must not fire because the bridge lost its backend.
    # The histogram is the bridge's own record of rounds it saw and may stay.
    assert cluster <= {"celery_status_backend_up", "celery_inspection_duration_seconds"}, cluster
