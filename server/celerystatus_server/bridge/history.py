"""``GET /api/celery-status/history`` and ``/trends``: the history API over HTTP.

Parameters are parsed with the SDK's own request builders (so ``since=1h``
means the same in Python, on the command line and here) and answered by the
server's GetHistory / GetTrends. Bad input is a 422 whose ``error`` names the
parameter, whether the bridge or the server found it.
"""


from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from celerystatus import CeleryStatusError
from celerystatus.history import build_history_request, build_trends_request

from ..security.principal import Principal
from .errors import http_status
from .query import reject_unknown
from .schema import ErrorModel
from .upstream import Upstream

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


def _call_error(error: CeleryStatusError) -> JSONResponse:
    status = http_status(error, invalid_argument=422)
    message = error.details or str(error)
    if status == 503:
        message = f"history unavailable: {message}"
    return _error(status, message)


def install(
    app: FastAPI,
    caller: Callable[..., Principal],
    upstream_of: Callable[[Request], Upstream],
) -> None:
    """Add the history API's routes to ``app``; ``caller`` authenticates, ``upstream_of`` finds the status service.

    Added to the app itself rather than through an included router, so the
    dashboard finds them among the app's routes.
    """
    router = app

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
            # Checked here too, so a bad parameter is a 422 without a call.
            build_history_request(since, until, step, names, include_runs=runs, runs_limit=runs_limit)
        except ValueError as exc:
            return _error(422, str(exc))
        try:
            result = await upstream_of(request).get_history(
                since,
                until,
                step=step,
                series=names,
                include_runs=runs,
                runs_limit=runs_limit,
                redact_args=not principal.sees_arguments,
            )
        except CeleryStatusError as error:
            return _call_error(error)
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
            build_trends_request(window, long_running_floor)
        except ValueError as exc:
            return _error(422, str(exc))
        try:
            trends = await upstream_of(request).get_trends(window, long_running_floor=long_running_floor)
        except CeleryStatusError as error:
            return _call_error(error)
        return JSONResponse(trends.to_dict(), headers=_NO_STORE)

