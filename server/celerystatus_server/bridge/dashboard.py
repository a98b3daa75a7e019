"""The operations dashboard and the API docs page, both served without any CDN.

The dashboard is plain ES modules, CSS and SVG shipped inside the package
(``bridge/static``); nothing is built or downloaded. ``/docs`` serves Swagger
UI from the installed ``swagger-ui-bundle`` wheel; without it ``/docs`` says
so and points at ``/openapi.json`` instead of rendering a blank page.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.routing import BaseRoute
from starlette.staticfiles import StaticFiles

from .security import WS_BEARER_PREFIX, WS_SUBPROTOCOL, BridgeSecurity

__all__ = ["FEATURE_PATHS", "STATIC_DIR", "install"]

STATIC_DIR = Path(str(resources.files("celerystatus_server.bridge") / "static"))
#: Optional APIs the page uses when this bridge serves them; found from the
#: app's own routes so the browser never probes for them with failing requests.
FEATURE_PATHS = {
    "history": "/api/celery-status/history",
    "trends": "/api/celery-status/trends",
    "alerts": "/api/alerts",
}
# Everything the page loads comes from this origin; no inline script, no framing.
_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": _PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class _StaticFiles(StaticFiles):
    """Revalidated on every load, so an upgraded server never runs an old page."""

    def file_response(self, *args: Any, **kwargs: Any) -> Any:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def _swagger_assets() -> Path | None:
    try:
        from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]
    except ImportError:
        return None
    path = Path(str(swagger_ui_path))
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def _has_route(routes: list[BaseRoute], path: str) -> bool:
    return any(getattr(route, "path", None) == path for route in routes)


def install(app: FastAPI, security: BridgeSecurity, *, docs_guard: Callable[[Request], None] | None = None) -> None:
    """Add ``/``, ``/ui/…``, ``/ui/config.json`` and ``/docs`` to ``app`` (created with ``docs_url=None``).

    ``docs_guard`` admits callers of ``/docs`` (the same rule as ``/openapi.json``).
    """

    def guard(request: Request) -> None:
        if docs_guard is not None:
            docs_guard(request)

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=_PAGE_HEADERS)

    @app.get("/ui/config.json", include_in_schema=False)
    async def dashboard_config() -> JSONResponse:
        # Nothing secret: whether a token is needed is what a 401 would say anyway.
        body = {
            "auth_required": security.policy.auth_required,
            "ws_subprotocol": WS_SUBPROTOCOL,
            "ws_bearer_prefix": WS_BEARER_PREFIX,
            "features": {name: _has_route(app.router.routes, path) for name, path in FEATURE_PATHS.items()},
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    app.mount("/ui", _StaticFiles(directory=STATIC_DIR), name="dashboard")

    assets = _swagger_assets()
    if assets is not None:
        app.mount("/docs/assets", _StaticFiles(directory=assets), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs(_: None = Depends(guard)) -> HTMLResponse:
        if assets is None:
            return HTMLResponse(
                "<!doctype html><title>API docs</title><p>Swagger UI is not installed "
                "(<code>pip install swagger-ui-bundle</code>). The OpenAPI document is at "
                '<a href="/openapi.json">/openapi.json</a>.</p>'
            )
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )
