"""``GET /api/celery-status/history`` and ``/trends``: the history API over HTTP.

Parameters are parsed with the SDK's own request builders (so ``since=1h``
means the same in Python, on the command line and here) and answered by the
server's GetHistory / GetTrends. Bad input is a 422 whose ``error`` names the
parameter, whether the bridge or the server found it.
"""


from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import grpc
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from celerystatus.history import History, Trends, build_history_request, build_trends_request
from celerystatus.v1 import celery_status_pb2 as pb

from ..security.principal import Principal
from .backend import Backend, describe, is_unreachable
from .query import reject_unknown
from .schema import ErrorModel

HISTORY_PARAMS = frozenset({"since", "until", "step", "series", "format", "runs", "runs_limit"})
TRENDS_PARAMS = frozenset({"window", "long_running_floor"})
_NO_STORE = {"Cache-Control": "no-store"}

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorModel, "description": "Unknown query parameter."},
    401: {"model": ErrorModel, "description": "Credentials required, or invalid."},
    404: {"model": ErrorModel, "description": "History is off on the server."},
    422: {"model": ErrorModel, "description": "A parameter cannot be used; `error` names it."},
    429: {"model": ErrorModel, "description": "Request budget spent; see Retry-After."},
    503: {"model": ErrorModel, "description": "The status service or its history store did not answer."},
}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "detail": None}, status_code=status, headers=_NO_STORE)


def _rpc_error(error: grpc.aio.AioRpcError) -> JSONResponse:
    code = error.code()
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE):
        return _error(422, error.details() or code.name)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return _error(404, error.details() or "history is off on the server")
    if is_unreachable(error):
        return _error(503, f"history unavailable: {describe(error)}")
    return _error(502, f"status service error: {describe(error)}")


def history_router(
    caller: Callable[..., Principal],
    backend_of: Callable[[Request], Backend],
) -> APIRouter:
    """Routes of the history API; ``caller`` authenticates, ``backend_of`` finds the gRPC backend."""
    router = APIRouter()

    async def call(request: Request, rpc: Callable[[Backend], Awaitable[Any]]) -> Any:
        return await rpc(backend_of(request))

    @router.get(
        "/api/celery-status/history",
        response_model=None,
        responses={200: {"description": "Columnar JSON, or CSV with format=csv."}, **_RESPONSES},
        summary="Recorded samples over a range, one column per series.",
    )
    async def history(
        principal: Annotated[Principal, Depends(caller)],
        request: Request,
        since: Annotated[str, Query(max_length=64, description="1h (ago), now, ISO 8601 or epoch seconds.")] = "1h",
        until: Annotated[str, Query(max_length=64, description="As since; default now.")] = "now",
        step: Annotated[str | None, Query(max_length=32, description="30s, 1m, 1h; default 1m.")] = None,
        series: Annotated[
            list[str] | None,
            Query(description="Comma-separated or repeated: workers, queue:celery, worker:<host>:active, "
                              "task:<name>, queue:* ..."),
        ] = None,
        format: Annotated[Literal["json", "csv"], Query(description="csv: a download.")] = "json",
        runs: Annotated[bool, Query(description="Include the task runs that ended in the range.")] = False,
        runs_limit: Annotated[int, Query(ge=0, le=10000)] = 0,
    ) -> Response:
        reject_unknown(request, HISTORY_PARAMS)
        names = [part.strip() for value in series or () for part in value.split(",") if part.strip()]
        try:
            request_pb = build_history_request(
                since, until, step, names, include_runs=runs, runs_limit=runs_limit
            )
        except ValueError as exc:
            return _error(422, str(exc))
        request_pb.redact_args = not principal.sees_arguments
        try:
            reply: pb.GetHistoryResponse = await call(request, lambda b: b.get_history(request_pb))
        except grpc.aio.AioRpcError as error:
            return _rpc_error(error)
        result = History.from_proto(reply)
        if format == "csv":
            return Response(
                result.to_csv(),
                media_type="text/csv",
                headers={**_NO_STORE, "Content-Disposition": 'attachment; filename="celery-status-history.csv"'},
            )
        return JSONResponse(result.to_dict(), headers=_NO_STORE)

    @router.get(
        "/api/celery-status/trends",
        response_model=None,
        responses={200: {"description": "Trends over the window."}, **_RESPONSES},
        summary="Throughput, queue growth, saturation, task runtimes and worker trouble.",
    )
    async def trends(
        principal: Annotated[Principal, Depends(caller)],
        request: Request,
        window: Annotated[str, Query(max_length=32, description="15m, 1h, 1d; default 15m.")] = "15m",
        long_running_floor: Annotated[
            str | None, Query(max_length=32, description="Running tasks younger than this are never flagged.")
        ] = None,
    ) -> Response:
        reject_unknown(request, TRENDS_PARAMS)
        try:
            request_pb = build_trends_request(window, long_running_floor)
        except ValueError as exc:
            return _error(422, str(exc))
        try:
            reply: pb.GetTrendsResponse = await call(request, lambda b: b.get_trends(request_pb))
        except grpc.aio.AioRpcError as error:
            return _rpc_error(error)
        return JSONResponse(Trends.from_proto(reply).to_dict(), headers=_NO_STORE)

    return router
