"""The bridge in front of the real status server, with real Redis and real workers."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import websockets
from prometheus_client.parser import text_string_to_metric_families

from celerystatus.schema import SEARCH_JSON_SCHEMA, STATUS_JSON_SCHEMA
from tests.support.holds import Hold
from tests.support.schemas import validate_closed
from tests.support.waiting import wait_for_async
from tests.support.workers import WorkerFactory

from .shape import SEED_KEYS


async def _status(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/celery-status", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _held_evaluation(worker_factory: WorkerFactory, redis_url: str, eval_id: str) -> Hold:
    hold = Hold(redis_url)
    worker_factory.send("tasks.evaluate_code", eval_id, kwargs={"hold": hold.token})
    await asyncio.to_thread(hold.wait_started, 30)
    return hold


async def test_real_cluster_through_the_bridge(
    status_server: Any,
    live_http: httpx.AsyncClient,
    worker_factory: WorkerFactory,
    redis_url: str,
) -> None:
    await asyncio.to_thread(worker_factory, "w1")
    await asyncio.to_thread(worker_factory, "w2")
    eval_id = f"eval-{uuid.uuid4().hex[:8]}"
    hold = await _held_evaluation(worker_factory, redis_url, eval_id)
    try:
        latest: dict[str, Any] = {}

        async def cluster_visible() -> bool:
            latest.update(await _status(live_http))
            return latest["workers"] == 2 and latest["active_tasks"] >= 1

        await wait_for_async(cluster_visible, timeout=30)
        for key in SEED_KEYS:
            assert key in latest
        # A real snapshot through the bridge, unknown keys forbidden: drift fails here.
        validate_closed(latest, STATUS_JSON_SCHEMA)
        assert latest["connected"] is True and latest["enabled"] is True
        for stats in latest["worker_stats"].values():
            assert isinstance(stats["total"], int)
            assert set(stats["pool"]) >= {"max-concurrency", "processes", "max-tasks-per-child"}
        assert "tasks.evaluate_code" in latest["registered_tasks"]

        # Search is done by the server: only the matching task comes back.
        found = await _status(live_http, eval_id=eval_id, state="active")
        tasks = [t for ts in found["queue_details"]["active"].values() for t in ts]
        assert [t["args"][0] for t in tasks] == [eval_id]
        assert found["workers"] == 2  # counters still describe the whole cluster
        other = await _status(live_http, task_name="tasks.cleanup_old_evaluations")
        assert not any(other["queue_details"]["active"].values())
        summary = await _status(live_http, view="summary", max_age=0.3)
        assert not any(summary["queue_details"]["active"].values())

        search = await live_http.get("/api/celery-status/tasks", params={"eval_id": eval_id})
        assert search.status_code == 200, search.text
        validate_closed(search.json(), SEARCH_JSON_SCHEMA)
        (task,) = search.json()["tasks"]
        assert (task["state"], task["name"]) == ("active", "tasks.evaluate_code")

        # Two successive snapshots on the WebSocket, from successive rounds.
        url = f"ws://127.0.0.1:{status_server.http_port}/ws/celery-status"
        async with websockets.connect(url, open_timeout=5) as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            second = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert second["inspection"]["round"] > first["inspection"]["round"]
        assert second["workers"] == 2

        metrics = await live_http.get("/metrics")
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(metrics.text)
            for s in family.samples
        }
        assert samples[("celery_workers", ())] == 2
        assert samples[("celery_connected", ())] == 1
        # With a task running on one of 2 workers of -c 2 there is demand for at least one worker.
        assert samples[("celery_workers_desired", ())] >= 1
        assert samples[("celery_active_tasks", ())] >= 1
        worker_totals = [k for k in samples if k[0] == "celery_worker_total"]
        assert len(worker_totals) == 2
        assert samples[("celery_inspection_rounds_total", ())] >= 2
        assert samples[("celery_inspection_duration_seconds_count", ())] >= 1

        assert (await live_http.get("/readyz")).status_code == 200
    finally:
        hold.release()


async def test_broker_outage_is_data(redis_process: Any, worker_factory: WorkerFactory) -> None:
    """Broker gone: 200 with connected false, fast; livez stays 200."""
    from celerystatus_server.config import Settings
    from celerystatus_server.server import StatusServer

    server = StatusServer(
        Settings(
            broker_url=redis_process.url(7),
            grpc_address="127.0.0.1:0",
            http_address="127.0.0.1:0",
            refresh_interval=0.5,
        )
    )
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as client:

            async def connected() -> bool:
                return (await _status(client))["connected"] is True

            await wait_for_async(connected, timeout=20)
            await asyncio.to_thread(redis_process.stop)

            async def disconnected() -> bool:
                started = asyncio.get_running_loop().time()
                body = await _status(client)
                assert asyncio.get_running_loop().time() - started < 1.0
                return body["connected"] is False

            await wait_for_async(disconnected, timeout=20)
            body = await _status(client)
            for key in SEED_KEYS:
                assert key in body
            assert body["error"]
            assert (await client.get("/livez")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200
    finally:
        await server.stop(grace=0.5)
