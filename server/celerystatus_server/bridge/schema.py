"""The bridge's OpenAPI document: status and search bodies generated from the SDK's JSON Schema.

The status and search documents are defined once, in
:mod:`celerystatus.schema` (next to the ``to_dict`` code that produces them);
here they become OpenAPI components, so the published API cannot disagree
with what the SDK builds. Only the bodies the bridge invents itself (errors,
probes) are Pydantic models.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from celerystatus.schema import definitions

__all__ = ["COMPONENTS", "ErrorModel", "ProbeModel", "install_components", "json_body"]

_PREFIX = "#/components/schemas/"

#: OpenAPI components generated from the SDK's schema (CeleryStatus, TaskSearchResult, ...).
COMPONENTS: dict[str, dict[str, Any]] = definitions(_PREFIX)


def json_body(component: str, description: str) -> dict[str, Any]:
    """A ``responses`` entry whose JSON body is one of :data:`COMPONENTS`."""
    if component not in COMPONENTS:
        raise KeyError(component)
    return {"description": description, "content": {"application/json": {"schema": {"$ref": _PREFIX + component}}}}


def install_components(app: FastAPI) -> None:
    """Add :data:`COMPONENTS` to ``app``'s OpenAPI document (generated once, on first request)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            document.setdefault("components", {}).setdefault("schemas", {}).update(COMPONENTS)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class ErrorModel(BaseModel):
    """Body of every 4xx answer the bridge produces itself."""

    error: str
    detail: Any = None


class ProbeModel(BaseModel):
    # Probes may gain keys (backend, detail); a client schema must not reject them.
    model_config = ConfigDict(extra="allow")

    status: str
