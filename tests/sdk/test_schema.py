"""The published JSON Schema against what ``to_dict`` produces: any drift fails here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import jsonschema
import pytest

from celerystatus.models import CeleryStatus, Task, TaskSearchResult, TaskState
from celerystatus.schema import SEARCH_JSON_SCHEMA, STATUS_JSON_SCHEMA, TASK_JSON_SCHEMA, definitions
from tests.support.schemas import closed, validate_closed

from .samples import disabled_status_proto, full_status_proto


def _sample() -> CeleryStatus:
    status = CeleryStatus.from_proto(full_status_proto())
    # Optional keys appear only when set: every task carries them here.
    def shown(lists: dict[str, tuple[Task, ...]]) -> dict[str, tuple[Task, ...]]:
        return {w: tuple(replace(t, argsrepr="('***',)", kwargsrepr="{}") for t in ts) for w, ts in lists.items()}

    details = status.queue_details
    assert details.active and details.scheduled and details.reserved
    details = replace(
        details, active=shown(details.active), scheduled=shown(details.scheduled), reserved=shown(details.reserved)
    )
    return replace(status, queue_details=details)


def _search_sample() -> TaskSearchResult:
    status = _sample()
    return TaskSearchResult(
        tasks=tuple(status.tasks()), observed_at=status.observed_at, search_limited="arguments withheld"
    )


def _schema_paths(
    schema: dict[str, Any], defs: dict[str, Any], document: Any = None, path: str = ""
) -> Iterator[str]:
    """Every key the schema describes; with ``document``, only those present in it."""
    if "$ref" in schema:
        yield from _schema_paths(defs[schema["$ref"].rsplit("/", 1)[1]], defs, document, path)
        return
    whole = document is None
    for key, sub in schema.get("properties", {}).items():
        if whole or (isinstance(document, dict) and key in document):
            yield f"{path}.{key}"
            yield from _schema_paths(sub, defs, None if whole else document[key], f"{path}.{key}")
    values = schema.get("additionalProperties")
    if isinstance(values, dict):
        for item in [None] if whole else list(document.values()):
            yield from _schema_paths(values, defs, item, f"{path}.*")
    if isinstance(schema.get("items"), dict):
        for item in [None] if whole else list(document):
            yield from _schema_paths(schema["items"], defs, item, f"{path}[]")


@pytest.mark.parametrize("schema", [STATUS_JSON_SCHEMA, TASK_JSON_SCHEMA, SEARCH_JSON_SCHEMA])
def test_schemas_are_valid_draft_2020_12(schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator.check_schema(closed(schema))


@pytest.mark.parametrize("factory", [_sample, lambda: CeleryStatus.from_proto(disabled_status_proto())])
def test_status_to_dict_satisfies_the_closed_schema(factory: Any) -> None:
    validate_closed(factory().to_dict(), STATUS_JSON_SCHEMA)


def test_search_to_dict_satisfies_the_closed_schema() -> None:
    result = _search_sample()
    assert any(task.state is TaskState.SCHEDULED for task in result.tasks)
    validate_closed(result.to_dict(), SEARCH_JSON_SCHEMA)


@pytest.mark.parametrize(
    ("document", "schema"),
    [
        (lambda: _sample().to_dict(), STATUS_JSON_SCHEMA),
        (lambda: _search_sample().to_dict(), SEARCH_JSON_SCHEMA),
    ],
)
def test_schema_lists_no_key_the_model_never_produces(document: Any, schema: dict[str, Any]) -> None:
    defs = schema.get("$defs", {})
    produced = set(_schema_paths(schema, defs, document()))
    described = set(_schema_paths(schema, defs))
    # Only what the bridge adds itself is described but never built by to_dict.
    assert described - produced == ({".error"} if schema is SEARCH_JSON_SCHEMA else {".search_limited"})


def test_a_new_or_missing_key_is_drift() -> None:
    document = _sample().to_dict()
    document["queue_details"]["active"]["celery@worker-1"][0]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate_closed(document, STATUS_JSON_SCHEMA)
    document = _sample().to_dict()
    del document["worker_stats"]["celery@worker-1"]["pool"]["max-tasks-per-child"]
    with pytest.raises(jsonschema.ValidationError):
        validate_closed(document, STATUS_JSON_SCHEMA)


def test_published_schema_accepts_additions() -> None:
    document = _sample().to_dict()
    document["added_in_a_later_version"] = True
    jsonschema.validate(document, STATUS_JSON_SCHEMA)


def test_definitions_can_point_anywhere() -> None:
    parts = definitions("#/components/schemas/")
    assert parts["CeleryStatus"]["properties"]["queue_details"] == {"$ref": "#/components/schemas/QueueDetails"}
    assert parts["CeleryStatus"]["required"] == STATUS_JSON_SCHEMA["required"]
