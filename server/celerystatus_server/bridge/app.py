"""The FastAPI application: JSON status, task search, WebSocket, probes, metrics.

HTTP status codes tell whether the *bridge and its backend* work. A Celery or
broker outage is data (200 with ``connected: false``); only an unreachable
status service gives 503, and then with the full key set so scripts that read
``.connected`` or ``.workers`` still get an answer.
"""

# No "from __future__ import annotations": FastAPI resolves the handlers'
# annotations at run time, and they name objects local to create_app.
import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.websockets import WebSocketState

from celerystatus import CeleryStatusError, StatusView, TaskFilter, TLSConfig, parse_target
from celerystatus.alerts import AlertState

from ..search import ARGUMENTS_WITHHELD
from ..security.principal import Principal
from . import dashboard, history, query
from .alerts import AlertHub
from .errors import BadRequest, http_status
from .hub import StatusHub
from .metrics import BridgeMetrics
from .schema import ErrorModel, ProbeModel, install_components, json_body
from .security import (
    WS_SUBPROTOCOL,
    BridgeSecurity,
    Refused,
    RequestLimits,
    admit,
    offered_subprotocols,
    rate_limited,
)
from .serving import PRINCIPAL_KEY, STATUS_PATH, StatusFastPath
from .upstream import UNAVAILABLE_ERROR, Timeouts, Upstream, unavailable_status

ALERTS_PATH = "/api/alerts"
_TRUE = frozenset({"1", "true", "yes", "on"})
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
    502: json_body("CeleryStatus", "The status service failed the call."),
    503: json_body(
        "CeleryStatus",
        f'Status service unreachable: full key set, connected false, error "{UNAVAILABLE_ERROR}".',
    ),
}


class _State:
    """What the lifespan creates; reached from handlers through ``app.state.bridge``."""

    def __init__(
        self,
        upstream: Upstream,
        hubs: dict[bool, StatusHub],
        metrics: BridgeMetrics,
        security: BridgeSecurity,
        alert_hub: AlertHub,
    ) -> None:
        self.upstream = upstream
        self.alert_hub = alert_hub
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
        await self.alert_hub.stop()
        if self.sockets:
            await asyncio.wait(set(self.sockets), timeout=timeout)


def create_app(
    target: str,
    *,
    timeouts: Timeouts | None = None,
    security: BridgeSecurity | None = None,
    backend_tls: TLSConfig | None = None,
    backend_options: dict[str, Any] | None = None,
) -> FastAPI:
    """A bridge in front of the CeleryStatusService at ``target`` (``host:port``).

    The SDK client (and its channel), the shared status streams and the
    metrics registry live for the lifespan of the app, so the app must be
    served by an ASGI server that runs lifespan events (uvicorn does).
    ``backend_tls`` and ``backend_options`` (gRPC channel arguments) are
    passed to the client.
    """
    target = parse_target(target)  # a bad target is the caller's mistake: ValueError now, not at startup
    security = security or BridgeSecurity()
    policy = security.policy

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        upstream = Upstream(
            target,
            timeouts=timeouts,
            token=security.backend_token,
            tls=backend_tls,
            options=backend_options,
        )
        hubs = {redacted: StatusHub(upstream, redact_args=redacted) for redacted in (True, False)}
        alert_hub = AlertHub(upstream)
        # Metrics need no arguments: they follow the redacted stream, always open.
        state = _State(upstream, hubs, BridgeMetrics(hubs[True], alert_hub), security, alert_hub)
        app.state.bridge = state
        hubs[True].start()
        alert_hub.start()
        try:
            yield
        finally:
            for hub in hubs.values():
                await hub.stop()
            await alert_hub.stop()
            await upstream.close()

    app = FastAPI(
        title="celery-status bridge",
        summary="JSON, WebSocket and Prometheus views of a CeleryStatusService.",
        version="1",
        lifespan=lifespan,
        # /openapi.json below, behind the same rule as /metrics; /docs from the dashboard module.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    install_components(app)

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

    # Innermost: plain status requests are answered here, after the limits and CORS.
    app.add_middleware(StatusFastPath, security=security)
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
        """Authenticated and charged before any parameter is looked at (once: see serving.py)."""
        admitted: Principal | None = request.scope.get(PRINCIPAL_KEY)
        return admitted if admitted is not None else admit(request, security)

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
        return query.StatusParams(filter=filter, view=StatusView(view), max_age=max_age)

    @app.get(
        STATUS_PATH,
        response_model=None,
        responses={200: json_body("CeleryStatus", "The status."), **_STATUS_RESPONSES},
        summary="Cluster status, optionally with queue_details filtered to matching tasks.",
    )
    async def celery_status(
        principal: Annotated[Principal, Depends(caller)],
        params: Annotated[query.StatusParams, Depends(status_params)],
        state: Annotated[_State, Depends(bridge)],
    ) -> Response:
        # Plain requests the stream can answer never get here (serving.StatusFastPath).
        if params.max_age:
            fresh_budget(principal)
        try:
            status = await state.upstream.get_status(
                filter=params.filter,
                view=params.view,
                max_age=params.max_age,
                redact_args=not principal.sees_arguments,
            )
        except CeleryStatusError as error:
            return _error_response(error, unavailable_status())
        body = status.to_dict()
        if params.filter.arg and not principal.sees_arguments:
            # The server matched arg on the values this caller sees; say so, as
            # SearchTasks does, rather than let "no match" look definitive.
            body["search_limited"] = ARGUMENTS_WITHHELD
        return JSONResponse(body, headers=_NO_STORE)

    @app.get(
        f"{STATUS_PATH}/tasks",
        response_model=None,
        responses={
            200: json_body("TaskSearchResult", "The matching tasks."),
            **_ERROR_RESPONSES,
            502: json_body("CeleryStatus", "The status service failed the call."),
            503: json_body("TaskSearchResult", f'Status service unreachable: no tasks, error "{UNAVAILABLE_ERROR}".'),
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
        try:
            result = await state.upstream.search_tasks(
                filter=filter, limit=limit, redact_args=not principal.sees_arguments
            )
        except CeleryStatusError as error:
            unavailable: dict[str, Any] = {"tasks": [], "observed_at": None, "stale": True, "truncated": False}
            return _error_response(error, {**unavailable, "error": UNAVAILABLE_ERROR})
        return JSONResponse(result.to_dict(), headers=_NO_STORE)

    history.install(app, caller, lambda request: bridge(request).upstream)

    @app.get(
        ALERTS_PATH,
        response_model=None,
        responses={**_ERROR_RESPONSES, 502: {"model": ErrorModel}, 503: {"model": ErrorModel}},
        summary="Firing and pending alerts, then recently resolved ones (state=... narrows it).",
    )
    async def list_alerts(
        principal: Annotated[Principal, Depends(caller)],
        request: Request,
        state: Annotated[_State, Depends(bridge)],
        states: Annotated[
            list[AlertState] | None, Query(alias="state", description="pending, firing or resolved; repeatable.")
        ] = None,
    ) -> Response:
        query.reject_unknown(request, frozenset({"state"}))
        try:
            alerts = await state.upstream.list_alerts(list(states or ()))
        except CeleryStatusError as error:
            status = http_status(error)
            body: dict[str, Any] = (
                {"alerts": [], "evaluated_at": None, "receivers": [], "error": UNAVAILABLE_ERROR}
                if status == 503
                else {"error": f"status service error: {error}", "detail": None}
            )
            return JSONResponse(body, status_code=status, headers=_NO_STORE)
        return JSONResponse(alerts.to_dict(), headers=_NO_STORE)

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
        # Status frames stay exactly as before; alert frames ({"type": "alerts", ...})
        # only for clients that ask, so existing readers never see a new shape.
        with_alerts = websocket.query_params.get("alerts", "").lower() in _TRUE
        try:
            # A browser that offered subprotocols drops a socket that does not pick one.
            subprotocol = WS_SUBPROTOCOL if WS_SUBPROTOCOL in offered_subprotocols(websocket) else None
            alert_hub = state.alert_hub if with_alerts else None
            await _serve_socket(websocket, state.hub_for(principal), subprotocol, alert_hub)
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
        ready, how = await state.upstream.check_ready()
        body = {"status": "ready" if ready else "unavailable", "backend": state.upstream.target}
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
        request: Request, _: Annotated[None, Depends(metrics_caller)], state: Annotated[_State, Depends(bridge)]
    ) -> Response:
        # OpenMetrics for scrapers that ask for it (Accept), the classic text format otherwise.
        body, content_type = state.metrics.render(request.headers.get("accept", ""))
        return Response(body, media_type=content_type)

    def docs_caller(request: Request) -> None:
        # The API description names every endpoint and parameter: with
        # credentials configured it is for callers who have them, unless the
        # operator opens it (--docs-public).
        if not security.docs_public:
            admit(request, security)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(_: Annotated[None, Depends(docs_caller)]) -> JSONResponse:
        return JSONResponse(app.openapi())

    dashboard.install(app, security, docs_guard=docs_caller)
    return app


async def _serve_socket(
    websocket: WebSocket, hub: StatusHub, subprotocol: str | None = None, alert_hub: AlertHub | None = None
) -> None:
    await websocket.accept(subprotocol=subprotocol)
    with contextlib.ExitStack() as stack:
        subscriptions = [stack.enter_context(hub.subscribe())]
        if alert_hub is not None:
            subscriptions.append(stack.enter_context(alert_hub.subscribe()))
        # Reading is the only way to notice the client going away while we
        # wait for the next snapshot.
        closed_by_client = asyncio.create_task(_drain(websocket))
        waiting: dict[asyncio.Task[Any], Any] = {}
        try:
            while True:
                for subscription in subscriptions:
                    if subscription not in waiting.values():
                        waiting[asyncio.create_task(subscription.next())] = subscription
                done, _ = await asyncio.wait({*waiting, closed_by_client}, return_when=asyncio.FIRST_COMPLETED)
                if closed_by_client in done:
                    return
                stopped = False
                for task in [t for t in waiting if t in done]:
                    del waiting[task]
                    frame = task.result()
                    if frame is None:  # hub stopped: the server is shutting down
                        stopped = True
                    else:
                        await websocket.send_text(frame.text)
                if stopped:
                    break
        except (WebSocketDisconnect, RuntimeError):
            # The client vanished mid-send; nothing is left to close.
            return
        finally:
            closed_by_client.cancel()
            for task in waiting:
                task.cancel()
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=1001, reason="server shutting down")


async def _drain(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


def _error_response(error: CeleryStatusError, unavailable_body: dict[str, Any]) -> JSONResponse:
    """The answer to a failed call to the status service (statuses from :func:`http_status`)."""
    status = http_status(error)
    if status == 503:
        return JSONResponse(unavailable_body, status_code=503, headers=_NO_STORE)
    if status == 400:
        return JSONResponse({"error": error.details or error.message, "detail": None}, 400)
    # The service answered, but not with a status: a bad gateway from the
    # client's view, with the status keys still there for scripts.
    body = unavailable_status(f"status service error: {error}")
    return JSONResponse(body, status_code=status, headers=_NO_STORE)
