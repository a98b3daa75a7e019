"""GET /api/celery-status and /tasks over real HTTP against a canned gRPC backend."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from celerystatus.schema import SEARCH_JSON_SCHEMA, STATUS_JSON_SCHEMA, definitions
from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus_server.bridge import BridgeServer, create_app
from tests.support.schemas import validate_closed

from .conftest import BridgeFactory
from .fake_service import FakeBackend, make_status
from .shape import SEED_KEYS, shape

GOLDEN = Path(__file__).parent / "golden" / "status_shape.json"


async def test_golden_shape(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/celery-status")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    for key in SEED_KEYS:
        assert key in body
    validate_closed(body, STATUS_JSON_SCHEMA)
    actual = shape(body)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
    assert actual == json.loads(GOLDEN.read_text())


async def test_seed_field_values(http: httpx.AsyncClient) -> None:
    body = (await http.get("/api/celery-status")).json()
    pool = body["worker_stats"]["celery@w1"]["pool"]
    seed_pool = {"max-concurrency": 2, "processes": [101, 102], "max-tasks-per-child": 100}
    assert {key: pool[key] for key in seed_pool} == seed_pool
    assert isinstance(body["worker_stats"]["celery@w1"]["total"], int)
    (task,) = body["queue_details"]["active"]["celery@w1"]
    assert task["args"] == ["eval-0"]
    assert isinstance(task["time_start"], float)
    assert body["queues"] == {"celery": {"messages": 3, "consumers": None}}


async def test_openapi_pins_the_shape(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    operation = spec["paths"]["/api/celery-status"]["get"]
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(SEED_KEYS) <= set(schema["required"])
    pool = spec["components"]["schemas"]["Pool"]
    assert {"max-concurrency", "processes", "max-tasks-per-child"} <= set(pool["required"])
    # Generated from the SDK's schema, part for part: the API cannot disagree with it.
    generated = definitions("#/components/schemas/")
    assert {name: spec["components"]["schemas"][name] for name in generated} == generated
    search = spec["paths"]["/api/celery-status/tasks"]["get"]["responses"]["200"]
    assert search["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/TaskSearchResult"}
    params = {p["name"] for p in operation["parameters"]}
    assert params == {
        "task_name",
        "eval_id",
        "arg",
        "worker",
        "state",
        "task_id",
        "view",
        "max_age",
    }


async def test_search_params_reach_the_server(http: httpx.AsyncClient, fake_backend: FakeBackend) -> None:
    response = await http.get(
        "/api/celery-status",
        params=[
            ("task_name", "tasks.evaluate_code"),
            ("eval_id", "eval-0"),
            ("arg", "x"),
            ("worker", "celery@w1"),
            ("state", "active"),
            ("state", "reserved"),
            ("task_id", "t-1"),
            ("view", "summary"),
            ("max_age", "1.5"),
        ],
    )
    assert response.status_code == 200, response.text
    request = fake_backend.service.get_requests[-1]
    assert request.filter.task_name == "tasks.evaluate_code"
    assert request.filter.eval_id == "eval-0"
    assert request.filter.arg == "x"
    assert request.filter.worker == "celery@w1"
    assert list(request.filter.states) == [pb.TASK_STATE_ACTIVE, pb.TASK_STATE_RESERVED]
    assert request.filter.task_id == "t-1"
    assert request.view == pb.STATUS_VIEW_SUMMARY
    assert (request.max_age.seconds, request.max_age.nanos) == (1, 500_000_000)


async def test_plain_requests_are_served_from_the_stream(
    http: httpx.AsyncClient, bridge: BridgeServer, fake_backend: FakeBackend
) -> None:
    hub = bridge._app.state.bridge.hub
    await hub.wait_for(lambda s: s.from_backend, timeout=5)
    await fake_backend.service.publish(make_status(7))
    await hub.wait_for(lambda s: s.data["inspection"]["round"] == 7, timeout=5)
    body = (await http.get("/api/celery-status", params={"_": "123"})).json()
    assert body["inspection"]["round"] == 7
    assert body["age"] >= 0.1  # the server's age, plus the time since receipt
    assert fake_backend.service.get_requests == []


async def test_defaults_ask_for_the_full_latest_snapshot(
    start_bridge: BridgeFactory, fake_backend: FakeBackend
) -> None:
    # Before the stream delivered anything, the request goes to GetStatus.
    bridge = await start_bridge(fake_backend.target)
    hub = bridge._app.state.bridge.hub
    await hub.stop()
    async with httpx.AsyncClient(base_url=bridge.url, timeout=10) as client:
        assert (await client.get("/api/celery-status")).status_code == 200
    request = fake_backend.service.get_requests[-1]
    assert request.view == pb.STATUS_VIEW_FULL
    assert not request.HasField("max_age")
    assert request.filter == pb.TaskFilter()


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"state": "running"}, 422),
        ({"view": "everything"}, 422),
        ({"max_age": "soon"}, 422),
        ({"max_age": "-1"}, 422),
        ({"max_age": "nan"}, 422),
        ({"max_age": "inf"}, 422),
        ({"max_age": "1e300"}, 422),
        ({"task_name": "x" * 600}, 422),
        ({"eval": "123"}, 400),
    ],
)
async def test_bad_params_get_a_json_error(http: httpx.AsyncClient, params: dict[str, str], status: int) -> None:
    response = await http.get("/api/celery-status", params=params)
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]


async def test_server_side_invalid_argument_is_a_400(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/celery-status", params={"task_id": "invalid!"})
    assert response.status_code == 400
    assert response.json()["error"] == "task_id is malformed"


async def test_task_search_endpoint(http: httpx.AsyncClient, fake_backend: FakeBackend) -> None:
    response = await http.get("/api/celery-status/tasks", params={"task_name": "tasks.evaluate_code", "limit": "5"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [task["id"] for task in body["tasks"]] == ["task-0"]
    task = body["tasks"][0]
    assert (task["worker"], task["state"], task["args"]) == ("celery@w1", "active", ["eval-0"])
    assert body["stale"] is False and body["truncated"] is False
    assert isinstance(body["observed_at"], float)
    validate_closed(body, SEARCH_JSON_SCHEMA)
    request = fake_backend.service.search_requests[-1]
    assert (request.filter.task_name, request.limit) == ("tasks.evaluate_code", 5)

    for bad in ({"limit": "-1"}, {"limit": "many"}, {"view": "full"}, {"state": "done"}):
        response = await http.get("/api/celery-status/tasks", params=bad)
        assert response.status_code in (400, 422), (bad, response.text)
        assert "error" in response.json()


async def test_backend_down_answers_fast_with_every_key(start_bridge: BridgeFactory, dead_target: str) -> None:
    bridge = await start_bridge(dead_target)
    async with httpx.AsyncClient(base_url=bridge.url, timeout=10) as client:
        # How fast the answer comes is measured in bench/bench_bounds.py.
        for path in ("/api/celery-status", "/api/celery-status?max_age=1"):
            response = await client.get(path)
            assert response.status_code == 503
            body = response.json()
            validate_closed(body, STATUS_JSON_SCHEMA)
            assert body["connected"] is False
            assert body["workers"] == 0
            assert body["error"] == "status service unavailable"
        response = await client.get("/api/celery-status/tasks")
        assert response.status_code == 503
        assert response.json()["tasks"] == []
        validate_closed(response.json(), SEARCH_JSON_SCHEMA)


async def test_bind_failure_is_an_os_error(bridge: BridgeServer) -> None:
    second = BridgeServer(bridge.target, f"127.0.0.1:{bridge.port}")
    with pytest.raises(OSError):
        await second.start()


def test_create_app_has_the_documented_routes() -> None:
    app = create_app("127.0.0.1:1")
    paths = {getattr(route, "path", None) for route in app.routes}
    assert {
        "/api/celery-status",
        "/api/celery-status/tasks",
        "/ws/celery-status",
        "/livez",
        "/readyz",
        "/metrics",
    } <= paths


@pytest.mark.parametrize("target", ["http://127.0.0.1:8080", "127.0.0.1", "", "host:99999"])
def test_a_bad_target_is_refused_before_serving(target: str) -> None:
    with pytest.raises(ValueError, match="target"):
        create_app(target)


def test_cli_reports_a_bad_target_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from celerystatus_server.cli import main

    assert main(["bridge", "--target", "http://127.0.0.1:8080", "--http-address", "127.0.0.1:0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a gRPC target" in err
