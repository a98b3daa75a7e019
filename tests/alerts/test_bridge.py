"""Alerts through the JSON bridge of a real server: /api/alerts, WebSocket frames, /metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from celerystatus_server.config import Settings
from celerystatus_server.server import StatusServer
from tests.support.server import running_server
from tests.support.waiting import wait_for_async

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path, redis_url: str) -> Iterator[StatusServer]:
    # No worker on this broker: WorkersBelowMinimum fires at once (for 0s).
    rules = tmp_path / "alerts.yaml"
    rules.write_text(
        "rules:\n  WorkersBelowMinimum: {min: 1, for: 0s, labels: {team: ops}}\n"
        "  StatusStale: {enabled: false}\n"
        "receivers:\n  - {name: nowhere, type: webhook, url: 'http://127.0.0.1:9/secret'}\n"
        "options: {evaluation_interval: 0.5s}\n"
    )
    settings = Settings(
        broker_url=redis_url, grpc_address="127.0.0.1:0", http_address="127.0.0.1:0", refresh_interval=0.5,
        alerts_file=str(rules), alerts_state_file="none",
    )
    with running_server(settings) as running:
        yield running


def firing_names(body: dict[str, Any]) -> list[str]:
    return [a["name"] for a in body["alerts"] if a["state"] == "firing"]


async def test_api_alerts_lists_and_filters(server: StatusServer) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=5) as http:
        async def listed() -> dict[str, Any] | None:
            body: dict[str, Any] = (await http.get("/api/alerts")).json()
            return body if firing_names(body) == ["WorkersBelowMinimum"] else None

        body = await wait_for_async(listed, timeout=30)
        (alert,) = body["alerts"]
        assert alert["labels"] == {"alertname": "WorkersBelowMinimum", "severity": "critical", "team": "ops"}
        assert alert["annotations"]["description"] == "0 live workers, fewer than the minimum of 1."
        assert isinstance(alert["active_since"], float) and alert["fired_at"] >= alert["active_since"]
        assert body["evaluated_at"] <= time.time() + 1
        assert (await http.get("/api/alerts", params={"state": "pending"})).json()["alerts"] == []
        bad = await http.get("/api/alerts", params={"state": "burning"})
        assert bad.status_code == 422 and bad.json()["error"] == "invalid request parameter"
        unknown = await http.get("/api/alerts", params={"severity": "critical"})
        assert unknown.status_code == 400 and "severity" in unknown.text


async def test_websocket_sends_alert_frames_only_when_asked(server: StatusServer) -> None:
    base = f"ws://127.0.0.1:{server.http_port}/ws/celery-status"
    async with websockets.connect(base + "?alerts=1") as socket:
        async def alert_frame() -> dict[str, Any]:
            while True:
                frame = json.loads(await socket.recv())
                if frame.get("type") == "alerts" and firing_names(frame):
                    return frame

        frame = await wait_for_async(alert_frame, timeout=30)
        assert firing_names(frame) == ["WorkersBelowMinimum"]
        assert {"alerts", "changed", "evaluated_at", "receivers"} <= set(frame)
    # Without the parameter, every frame is a status document as before.
    async with websockets.connect(base) as socket:
        for _ in range(3):
            frame = json.loads(await socket.recv())
            assert "type" not in frame and "workers" in frame


async def test_metrics_count_alerts_and_receiver_failures(server: StatusServer) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=5) as http:
        async def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
            text = (await http.get("/metrics")).text
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }
            failed = samples.get((
                "celery_status_alert_notification_failures_total",
                (("kind", "webhook"), ("reason", "failed"), ("receiver", "nowhere")),
            ))
            return samples if failed else None

        samples = await wait_for_async(scrape, timeout=60)
    key = (("alertname", "WorkersBelowMinimum"), ("severity", "critical"), ("state", "firing"))
    assert samples[("celery_status_alerts", key)] == 1.0
    assert samples[("celery_status_alert_notifications_total", (("kind", "webhook"), ("receiver", "nowhere")))] == 0


def test_grpc_watch_alerts_and_bad_states(server: StatusServer) -> None:
    import grpc

    from celerystatus import AlertState, CeleryStatusClient
    from celerystatus.v1 import alerts_pb2 as apb
    from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc
    from tests.support.waiting import wait_for

    wait_for(lambda: any(a.state is AlertState.FIRING for a in server.alerts.board.alerts), timeout=30)
    with CeleryStatusClient(server.grpc_target) as client:
        stream = client.watch_alerts(states=["firing"])
        first = next(stream)
        stream.close()
    assert [a.name for a in first.alerts] == ["WorkersBelowMinimum"]
    assert first.changed == first.alerts  # the first message: every alert counts as changed
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.CeleryStatusServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.ListAlerts(apb.ListAlertsRequest(states=[42]), timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown alert state 42" in (raised.value.details() or "")
