"""Each role against each HTTP endpoint and the WebSocket; redaction in JSON and WebSocket."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from celerystatus_server.server import StatusServer
from tests.support.waiting import wait_for_async

from .conftest import ADMIN_TOKEN, SECRET_ARG, SECRET_KWARG, VIEWER_TOKEN, StartServer, auth

ROLES = {
    "anonymous": None,
    "viewer": VIEWER_TOKEN,
    "admin": ADMIN_TOKEN,
    "bad token": "not-a-configured-token",
}
PROTECTED = ["/api/celery-status", "/api/celery-status/tasks", "/metrics"]
OPEN = ["/livez", "/readyz"]


def _tasks(path: str, body: dict) -> list[dict]:  # type: ignore[type-arg]
    if path.endswith("/tasks"):
        return [t for t in body["tasks"] if t["state"] == "active"]
    return [t for tasks in body["queue_details"]["active"].values() for t in tasks]


def assert_variant(tasks: list[dict], role: str) -> None:  # type: ignore[type-arg]
    assert len(tasks) == 2
    for task in tasks:
        if role == "admin":
            assert SECRET_ARG in task["args"] and task["kwargs"]["api_key"] == SECRET_KWARG
            assert task["args_redacted"] is False
        else:
            # Withheld values are masked in place: args[0] is the evaluation id for every role.
            assert task["args"][0].startswith("eval-") and task["args"][1:] == ["***"]
            assert task["kwargs"] == {"api_key": "***", "eval_id": task["args"][0]}
            assert task["args_redacted"] is True and "argsrepr" not in task


@pytest.mark.parametrize("path", PROTECTED + OPEN)
@pytest.mark.parametrize("role", sorted(ROLES))
async def test_role_against_endpoint(http: httpx.AsyncClient, role: str, path: str) -> None:
    response = await http.get(path, headers=auth(ROLES[role]))
    if path in OPEN:
        assert response.status_code == 200
        return
    if role in ("anonymous", "bad token"):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"]
        return
    assert response.status_code == 200, response.text
    if path == "/metrics":
        assert "celery_workers 2.0" in response.text and SECRET_ARG not in response.text
        return
    assert SECRET_ARG in response.text if role == "admin" else SECRET_ARG not in response.text
    assert_variant(_tasks(path, response.json()), role)


@pytest.mark.parametrize("query", [{}, {"max_age": "5"}, {"eval_id": "eval-1"}, {"view": "summary"}])
async def test_every_status_variant_is_redacted_for_viewers(http: httpx.AsyncClient, query: dict) -> None:  # type: ignore[type-arg]
    response = await http.get("/api/celery-status", params=query, headers=auth(VIEWER_TOKEN))
    assert response.status_code == 200
    assert SECRET_ARG not in response.text and SECRET_KWARG not in response.text


async def test_viewer_finds_an_evaluation_by_its_allowed_id(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/celery-status/tasks", params={"eval_id": "eval-1"}, headers=auth(VIEWER_TOKEN))
    assert [t["id"] for t in response.json()["tasks"]] == ["task-1"]
    hidden = await http.get("/api/celery-status/tasks", params={"arg": SECRET_ARG}, headers=auth(VIEWER_TOKEN))
    assert hidden.json()["tasks"] == []


def ws_url(server: StatusServer) -> str:
    return f"ws://127.0.0.1:{server.http_port}/ws/celery-status"


@pytest.mark.parametrize("role", sorted(ROLES))
async def test_role_against_websocket(server: StatusServer, role: str) -> None:
    token = ROLES[role]
    headers = auth(token)
    if role in ("anonymous", "bad token"):
        with pytest.raises(websockets.InvalidStatus) as caught:
            await websockets.connect(ws_url(server), additional_headers=headers, open_timeout=5)
        assert caught.value.response.status_code == 401
        return
    async with websockets.connect(ws_url(server), additional_headers=headers, open_timeout=5) as ws:
        text = await asyncio.wait_for(ws.recv(), 5)
    assert (SECRET_ARG in text) is (role == "admin")
    body = json.loads(text)
    assert_variant([t for ts in body["queue_details"]["active"].values() for t in ts], role)


async def test_full_stream_opens_only_when_an_admin_asks(server: StatusServer) -> None:
    hubs = server.bridge._app.state.bridge.hubs
    assert not hubs[False].started
    async with websockets.connect(ws_url(server), additional_headers=auth(VIEWER_TOKEN), open_timeout=5) as ws:
        await asyncio.wait_for(ws.recv(), 5)
    assert not hubs[False].started
    async with websockets.connect(ws_url(server), additional_headers=auth(ADMIN_TOKEN), open_timeout=5) as ws:
        await asyncio.wait_for(ws.recv(), 5)
    assert hubs[False].started


async def test_metrics_can_be_made_public(start_server: StartServer) -> None:
    server = await start_server(metrics_public=True)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as client:
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/api/celery-status")).status_code == 401


async def test_no_cors_unless_configured(http: httpx.AsyncClient, start_server: StartServer) -> None:
    headers = {"Origin": "https://evil.example", **auth(VIEWER_TOKEN)}
    response = await http.get("/api/celery-status", headers=headers)
    assert "access-control-allow-origin" not in response.headers
    server = await start_server(cors_origins=("https://ops.example",))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as client:
        good = await client.get("/api/celery-status", headers={**headers, "Origin": "https://ops.example"})
        evil = await client.get("/api/celery-status", headers=headers)
        preflight = await client.options(
            "/api/celery-status",
            headers={"Origin": "https://ops.example", "Access-Control-Request-Method": "DELETE"},
        )
    assert good.headers["access-control-allow-origin"] == "https://ops.example"
    assert "access-control-allow-origin" not in evil.headers
    assert preflight.status_code == 400  # only GET is allowed


async def test_service_is_read_only(http: httpx.AsyncClient) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = await http.request(method, "/api/celery-status", headers=auth(ADMIN_TOKEN))
        assert response.status_code == 405


@pytest.mark.parametrize("path", ["/api/celery-status", "/api/celery-status/tasks"])
async def test_viewer_finds_an_evaluation_whose_arguments_are_withheld(start_server: StartServer, path: str) -> None:
    # The spec's own example, ?task_name=evaluate_code&eval_id=..., with every
    # argument withheld (no allow-list): found through the bridge, still masked.
    server = await start_server(allow_arg_patterns=())
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10) as client:
        response = await client.get(
            path, params={"task_name": "evaluate_code", "eval_id": "eval-1"}, headers=auth(VIEWER_TOKEN)
        )
    assert response.status_code == 200, response.text
    (task,) = _tasks(path, response.json())
    assert task["id"] == "task-1" and task["name"] == "tasks.evaluate_code"
    assert task["args"] == ["***", "***"] and task["kwargs"] == {"api_key": "***", "eval_id": "***"}
    assert task["args_redacted"] is True
    assert SECRET_ARG not in response.text and "eval-1" not in response.text


@pytest.mark.parametrize("path", ["/api/celery-status", "/api/celery-status/tasks"])
async def test_arg_search_says_when_it_could_not_see_the_arguments(http: httpx.AsyncClient, path: str) -> None:
    params = {"arg": SECRET_ARG}
    viewer = await http.get(path, params=params, headers=auth(VIEWER_TOKEN))
    admin = await http.get(path, params=params, headers=auth(ADMIN_TOKEN))
    assert viewer.status_code == admin.status_code == 200
    assert not _tasks(path, viewer.json()) and len(_tasks(path, admin.json())) == 2
    assert viewer.json()["search_limited"] == "arguments withheld"
    assert "search_limited" not in admin.json()


async def test_cached_answers_stay_per_role(http: httpx.AsyncClient) -> None:
    """The pre-encoded viewer and admin documents differ, and no ETag crosses from one role to the other."""

    async def from_stream(token: str) -> httpx.Response | None:
        # The admin's stream opens on first use; until it delivers, GetStatus answers (uncached).
        response = await http.get("/api/celery-status", headers=auth(token))
        return response if "etag" in response.headers else None

    viewer = await wait_for_async(lambda: from_stream(VIEWER_TOKEN))
    admin = await wait_for_async(lambda: from_stream(ADMIN_TOKEN))
    assert viewer.headers["etag"] != admin.headers["etag"]
    for response in (viewer, admin):
        # Credentials are required here: shared caches must not keep the answer.
        assert response.headers["cache-control"].startswith("private, max-age=")
        assert "Authorization" in response.headers["vary"]
    revalidate = {**auth(VIEWER_TOKEN), "If-None-Match": admin.headers["etag"]}
    leaked = await http.get("/api/celery-status", headers=revalidate)
    assert leaked.status_code == 200 and SECRET_ARG not in leaked.text
    unauthenticated = await http.get("/api/celery-status", headers={"If-None-Match": viewer.headers["etag"]})
    assert unauthenticated.status_code == 401
