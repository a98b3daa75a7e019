"""The FastAPI application: JSON status, task search, WebSocket, probes, metrics.

HTTP status codes tell whether the *bridge and its backend* work. A Celery or
broker outage is data (200 with ``connected: false``); only an unreachable
status service gives 503, and then with the full key set so scripts that read
``.connected`` or ``.workers`` still get an answer.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import grpc
from fastapi import Depends, FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.websockets import WebSocketState

from celerystatus._values import timestamp_to_epoch
from celerystatus.models import CeleryStatus, Task, TaskFilter
from celerystatus.v1 import celery_status_pb2 as pb

from ..security.principal import Principal
from . import query
from .backend import (
    UNAVAILABLE_ERROR,
    Backend,
    Timeouts,
    describe,
    is_unreachable,
    unavailable_status,
)
from .errors import BadRequest
from .hub import StatusHub
from .metrics import BridgeMetrics
from .schema import CeleryStatusModel, ErrorModel, ProbeModel, TaskSearchModel
from .security import BridgeSecurity, Refused, RequestLimits, admit, rate_limited

STATUS_PATH = "/api/celery-status"
_NO_STORE = {"Cache-Control": "no-store"}

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorModel, "description": "Unknown or invalid parameter."},
    401: {"model": ErrorModel, "description": "Credentials required (when tokens are configured), or invalid."},
    403: {"model": ErrorModel, "description": "The credential has no role here."},
    414: {"model": ErrorModel, "description": "Query string too long."},
    431: {"model": ErrorModel, "description": "Request headers too long."},
    422: {"model": ErrorModel, "description": "A parameter has the wrong type or value."},
    429: {"model": ErrorModel, "description": "Request budget spent; see Retry-After."},
}
_STATUS_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_ERROR_RESPONSES,
    502: {"model": CeleryStatusModel, "description": "The status service failed the call."},
    503: {
        "model": CeleryStatusModel,
        "description": f'Status service unreachable: full key set, connected false, error "{UNAVAILABLE_ERROR}".',
    },
}


class _State:
    """What the lifespan creates; reached from handlers through ``app.state.bridge``."""

    def __init__(
        self, backend: Backend, hubs: dict[bool, StatusHub], metrics: BridgeMetrics, security: BridgeSecurity
    ) -> None:
        self.backend = backend
        #: Keyed by "redacted": the viewer's variant and the admin's full one.
        self.hubs = hubs
        self.metrics = metrics
        self.security = security
        self.sockets: set[asyncio.Task[Any]] = set()

    @property
    def hub(self) -> StatusHub:
        """The hub anonymous callers are served from."""
        return self.hub_for(self.security.policy.anonymous(""))

    def hub_for(self, principal: Principal) -> StatusHub:
        hub = self.hubs[not principal.sees_arguments]
        hub.start()  # the full variant's stream opens on first use
        return hub

    async def close_sockets(self, timeout: float = 2.0) -> None:
        """Stop the streams and let every WebSocket handler send its close frame."""
        for hub in self.hubs.values():
            await hub.stop()
        if self.sockets:
            await asyncio.wait(set(self.sockets), timeout=timeout)


def create_app(
    target: str,
    *,
    timeouts: Timeouts | None = None,
    channel: grpc.aio.Channel | None = None,
    backoff_max: float = 2.0,
    security: BridgeSecurity | None = None,
    backend_credentials: grpc.ChannelCredentials | None = None,
    backend_channel_options: tuple[tuple[str, Any], ...] = (),
) -> FastAPI:
    """A bridge in front of the CeleryStatusService at ``target`` (``host:port``).

    The gRPC channel, the shared status streams and the metrics registry live
    for the lifespan of the app, so the app must be served by an ASGI server
    that runs lifespan events (uvicorn does).
    """
    security = security or BridgeSecurity()
    policy = security.policy

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backend = Backend(
            target,
            timeouts=timeouts,
            channel=channel,
            token=security.backend_token,
            credentials=backend_credentials,
            channel_options=backend_channel_options,
        )
        hubs = {
            redacted: StatusHub(
                backend.status, backoff_max=backoff_max, redact_args=redacted, metadata=backend.metadata
            )
            for redacted in (True, False)
        }
        # Metrics need no arguments: they follow the redacted stream, always open.
        state = _State(backend, hubs, BridgeMetrics(hubs[True]), security)
        app.state.bridge = state
        hubs[True].start()
        try:
            yield
        finally:
            for hub in hubs.values():
                await hub.stop()
            await backend.close()

    app = FastAPI(
        title="celery-status bridge",
        summary="JSON, WebSocket and Prometheus views of a CeleryStatusService.",
        version="1",
        lifespan=lifespan,
        # Served below, behind the same rule as /metrics.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"error": "invalid request parameter", "detail": jsonable_encoder(exc.errors())},
            status_code=422,
        )

    @app.exception_handler(BadRequest)
    async def _bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code)

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> JSONResponse:
        return exc.response()

    # Browsers may read the API only from the exact origins the operator lists;
    # no wildcard, no credentials mode, read-only methods.
    if security.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(security.cors_origins),
            allow_methods=["GET"],
            allow_headers=["Authorization"],
            allow_credentials=False,
        )
    app.add_middleware(RequestLimits)

    def bridge(request: Request) -> _State:
        state: _State = request.app.state.bridge
        return state

    def caller(request: Request) -> Principal:
        """Authenticated and charged before any parameter is looked at."""
        return admit(request, security)

    def fresh_budget(principal: Principal) -> None:
        if policy.rate_limited(principal):
            decision = policy.limiter.check(principal.rate_key, fresh=True, request=False)
            if not decision.allowed:
                raise rate_limited(decision)

    def status_params(
        request: Request,
        filter: Annotated[TaskFilter, Depends(query.task_filter)],
        view: Annotated[query.ViewName, Query(description="summary leaves queue_details empty.")] = "full",
        max_age: Annotated[
            float | None,
            Query(
                ge=0,
                le=query.MAX_AGE_LIMIT,
                allow_inf_nan=False,
                description="Seconds; an older snapshot makes the server refresh first.",
            ),
        ] = None,
    ) -> query.StatusParams:
        query.reject_unknown(request, query.STATUS_PARAMS)
        return query.StatusParams(filter=filter, view=view, max_age=max_age)

    @app.get(
        STATUS_PATH,
        response_model=None,
        responses={200: {"model": CeleryStatusModel}, **_STATUS_RESPONSES},
        summary="Cluster status, optionally with queue_details filtered to matching tasks.",
    )
    async def celery_status(
        principal: Annotated[Principal, Depends(caller)],
        params: Annotated[query.StatusParams, Depends(status_params)],
        state: Annotated[_State, Depends(bridge)],
    ) -> Response:
        if params.max_age:
            fresh_budget(principal)
        if params.is_plain:
            cached = _from_stream(state.hub_for(principal))
            if cached is not None:
                return JSONResponse(cached, headers=_NO_STORE)
        request_pb = params.to_proto()
        request_pb.redact_args = not principal.sees_arguments
        try:
            status = await state.backend.get_status(request_pb)
        except grpc.aio.AioRpcError as error:
            return _status_error(error)
        return JSONResponse(CeleryStatus.from_proto(status).to_dict(), headers=_NO_STORE)

    @app.get(
        f"{STATUS_PATH}/tasks",
        response_model=None,
        responses={
            200: {"model": TaskSearchModel},
            **_ERROR_RESPONSES,
            503: {"model": TaskSearchModel},
        },
        summary="Tasks matching a filter, from the latest snapshot.",
    )
    async def search_tasks(
        principal: Annotated[Principal, Depends(caller)],
        request: Request,
        filter: Annotated[TaskFilter, Depends(query.task_filter)],
        state: Annotated[_State, Depends(bridge)],
        limit: Annotated[int, Query(ge=0, le=query.SEARCH_LIMIT_MAX, description="0: server default.")] = 0,
    ) -> Response:
        query.reject_unknown(request, query.SEARCH_PARAMS)
        request_pb = pb.SearchTasksRequest(
            filter=filter.to_proto(), limit=limit, redact_args=not principal.sees_arguments
        )
        try:
            reply = await state.backend.search_tasks(request_pb)
        except grpc.aio.AioRpcError as error:
            if is_unreachable(error):
                body: dict[str, Any] = {
                    "tasks": [],
                    "observed_at": None,
                    "stale": True,
                    "truncated": False,
                    "error": UNAVAILABLE_ERROR,
                }
                return JSONResponse(body, status_code=503, headers=_NO_STORE)
            return _rpc_error_response(error)
        return JSONResponse(search_result_to_dict(reply), headers=_NO_STORE)

    @app.websocket("/ws/celery-status")
    async def celery_status_ws(websocket: WebSocket) -> None:
        state: _State = websocket.app.state.bridge
        # Refused before the handshake completes, so the client gets a plain
        # HTTP answer (401/429 JSON) rather than an opened-then-closed socket.
        try:
            principal = admit(websocket, security)
        except Refused as refused:
            await websocket.send_denial_response(refused.response())
            return
        limited = policy.rate_limited(principal)
        if limited:
            decision = policy.streams.acquire(principal.rate_key)
            if not decision.allowed:
                await websocket.send_denial_response(rate_limited(decision).response())
                return
        handler = asyncio.current_task()
        assert handler is not None
        state.sockets.add(handler)
        try:
            await _serve_socket(websocket, state.hub_for(principal))
        finally:
            state.sockets.discard(handler)
            if limited:
                policy.streams.release(principal.rate_key)

    @app.get("/livez", response_model=ProbeModel, summary="The process and its event loop work.")
    async def livez() -> dict[str, str]:
        # Deliberately checks nothing outside the process: restarting the
        # bridge cannot fix a broker or a status server.
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=None,
        responses={200: {"model": ProbeModel}, 503: {"model": ProbeModel}},
        summary="The status service answers.",
    )
    async def readyz(state: Annotated[_State, Depends(bridge)]) -> Response:
        ready, how = await state.backend.check_ready()
        body = {"status": "ready" if ready else "unavailable", "backend": state.backend.target}
        body["detail"] = how
        return JSONResponse(body, status_code=200 if ready else 503, headers=_NO_STORE)

    def metrics_caller(request: Request) -> None:
        # Counts and worker names are capacity information: private by default
        # once credentials exist, public only when the operator says so.
        if not security.metrics_public:
            admit(request, security)

    @app.get(
        "/metrics",
        response_class=Response,
        summary="Prometheus text exposition.",
        responses={401: {"model": ErrorModel}, 429: {"model": ErrorModel}},
    )
    async def metrics(
        _: Annotated[None, Depends(metrics_caller)], state: Annotated[_State, Depends(bridge)]
    ) -> Response:
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def docs_caller(request: Request) -> None:
        # The API description names every endpoint and parameter: with
        # credentials configured it is for callers who have them, unless the
        # operator opens it (--docs-public).
        if not security.docs_public:
            admit(request, security)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(_: Annotated[None, Depends(docs_caller)]) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def swagger(_: Annotated[None, Depends(docs_caller)]) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    @app.get("/redoc", include_in_schema=False)
    async def redoc(_: Annotated[None, Depends(docs_caller)]) -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc")

    return app


async def _serve_socket(websocket: WebSocket, hub: StatusHub) -> None:
    await websocket.accept()
    with hub.subscribe() as subscription:
        # Reading is the only way to notice the client going away while we
        # wait for the next snapshot.
        closed_by_client = asyncio.create_task(_drain(websocket))
        try:
            while True:
                next_snapshot = asyncio.create_task(subscription.next())
                done, _ = await asyncio.wait({next_snapshot, closed_by_client}, return_when=asyncio.FIRST_COMPLETED)
                if closed_by_client in done:
                    next_snapshot.cancel()
                    return
                snapshot = next_snapshot.result()
                if snapshot is None:  # hub stopped: the server is shutting down
                    break
                await websocket.send_text(snapshot.text)
        except (WebSocketDisconnect, RuntimeError):
            # The client vanished mid-send; nothing is left to close.
            return
        finally:
            closed_by_client.cancel()
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=1001, reason="server shutting down")


def _from_stream(hub: StatusHub) -> dict[str, Any] | None:
    """The stream's latest snapshot, when it is as good as asking GetStatus.

    While the stream is open the hub holds the server's latest snapshot (the
    server pushes every new one), so an unfiltered request needs no round trip
    and no conversion; this is what keeps the endpoint cheap under load. Only
    ``age`` moves between two snapshots, so it is brought up to date here.
    """
    snapshot = hub.latest
    if snapshot is None or not snapshot.from_backend or not hub.stream_connected:
        return None
    data = dict(snapshot.data)
    if isinstance(data.get("age"), int | float):
        data["age"] = data["age"] + (time.monotonic() - snapshot.received_at)
    return data


async def _drain(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


def _status_error(error: grpc.aio.AioRpcError) -> JSONResponse:
    if is_unreachable(error):
        return JSONResponse(unavailable_status(), status_code=503, headers=_NO_STORE)
    return _rpc_error_response(error)


def _rpc_error_response(error: grpc.aio.AioRpcError) -> JSONResponse:
    code = error.code()
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE):
        return JSONResponse({"error": error.details() or code.name, "detail": None}, 400)
    # Any other failure of the backend is a bad gateway from the client's view;
    # the status keys are still there for scripts.
    body = unavailable_status(f"status service error: {describe(error)}")
    return JSONResponse(body, status_code=502, headers=_NO_STORE)


def search_result_to_dict(reply: pb.SearchTasksResponse) -> dict[str, Any]:
    tasks = []
    for msg in reply.tasks:
        task = Task.from_proto(msg)
        # Outside queue_details nothing implies where a task sits, so the
        # worker and state the status document leaves out are added back.
        entry = task.to_dict()
        entry["worker"] = task.worker
        entry["state"] = None if task.state is None else task.state.value
        tasks.append(entry)
    return {
        "tasks": tasks,
        "observed_at": (timestamp_to_epoch(reply.observed_at) if reply.HasField("observed_at") else None),
        "stale": reply.stale,
        "truncated": reply.truncated,
    }
