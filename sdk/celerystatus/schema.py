"""JSON Schema (draft 2020-12) of the documents the HTTP bridge serves.

This is the one definition of the JSON shape besides the code that produces
it (:meth:`celerystatus.models.CeleryStatus.to_dict` and
:meth:`~celerystatus.models.TaskSearchResult.to_dict`); a test checks the two
against each other on real snapshots, with unknown keys forbidden, so neither
can drift.  The bridge's OpenAPI document is generated from
:func:`definitions`, so it cannot disagree either.

Every key a model always produces is required, and nullable values are
spelled out.  Objects allow additional properties because new keys may be
added to the documents (additive changes only); removing or retyping one is a
breaking change.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = [
    "SEARCH_JSON_SCHEMA",
    "STATUS_JSON_SCHEMA",
    "TASK_JSON_SCHEMA",
    "definitions",
]

_DEFS = "#/$defs/"

_INT: dict[str, Any] = {"type": "integer"}
_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
_NUMBER: dict[str, Any] = {"type": "number"}
_OPT_NUMBER: dict[str, Any] = {"type": ["number", "null"]}
_OPT_INT: dict[str, Any] = {"type": ["integer", "null"]}
_OPT_STR: dict[str, Any] = {"type": ["string", "null"]}
_STR: dict[str, Any] = {"type": "string"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_STR_LIST: dict[str, Any] = {"type": "array", "items": _STR}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _DEFS + name}


def _map(values: dict[str, Any]) -> dict[str, Any]:
    """An object keyed by data (worker hostname, queue name, task name)."""
    return {"type": "object", "additionalProperties": values}


def _object(
    description: str, properties: dict[str, Any], optional: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": list(properties),
        "properties": {**properties, **(optional or {})},
    }


_TASK_PROPERTIES: dict[str, Any] = {
    "id": _STR,
    "name": _STR,
    "args": {"type": "array", "description": 'Positional arguments; a withheld value is "***" in place.'},
    "kwargs": {"type": "object", "description": 'Keyword arguments; a withheld value is "***".'},
    "time_start": _OPT_NUMBER,
    "eta": _OPT_NUMBER,
    "priority": _OPT_INT,
    "worker_pid": _OPT_INT,
    "acknowledged": _BOOL,
    "routing_key": _STR,
    "exchange": _STR,
    "args_redacted": _BOOL,
}
_TASK_OPTIONAL: dict[str, Any] = {"argsrepr": _STR, "kwargsrepr": _STR}

# Named parts, each referring to the others through "#/$defs/<name>".
_DEFINITIONS: dict[str, dict[str, Any]] = {
    "Task": _object(
        "A task held by a worker; its worker and state are given by where it sits.",
        _TASK_PROPERTIES,
        _TASK_OPTIONAL,
    ),
    "LocatedTask": _object(
        "A task found by a search, with the worker holding it and its state.",
        {
            **_TASK_PROPERTIES,
            "worker": _STR,
            "state": {"enum": ["active", "scheduled", "reserved", None]},
        },
        _TASK_OPTIONAL,
    ),
    "Pool": _object(
        "A worker's execution pool.",
        {
            "max-concurrency": _COUNT,
            "processes": {"type": "array", "items": _INT},
            "max-tasks-per-child": _OPT_INT,
            "implementation": _STR,
        },
    ),
    "WorkerStats": _object(
        "One live worker.",
        {
            "total": _COUNT,
            "pool": _ref("Pool"),
            "total_by_task": _map(_COUNT),
            "pid": _INT,
            "uptime": _NUMBER,
            "prefetch_count": _COUNT,
            "active_queues": _STR_LIST,
            "registered_tasks": _STR_LIST,
            "active_tasks": _COUNT,
            "scheduled_tasks": _COUNT,
            "reserved_tasks": _COUNT,
            "loadavg": {"type": "array", "items": _NUMBER},
            "transport": _STR,
            "sw_version": _STR,
            "last_heartbeat": _OPT_NUMBER,
            "max_rss_kb": _COUNT,
            "extension": _BOOL,
        },
    ),
    "QueueDetails": _object(
        "Tasks per state, then per worker hostname.",
        {
            state: _map({"type": "array", "items": _ref("Task")})
            for state in ("active", "scheduled", "reserved")
        },
    ),
    "QueueDepth": _object(
        "Messages waiting in one broker queue.", {"messages": _COUNT, "consumers": _OPT_INT}
    ),
    "InspectionInfo": _object(
        "How the snapshot was produced.",
        {
            "duration": _OPT_NUMBER,
            "method": {"enum": ["stock", "extension", "mixed", None]},
            "round": _COUNT,
            "errors": _COUNT,
            "refresh_interval": _OPT_NUMBER,
        },
    ),
    "HistoryInfo": _object(
        "Whether the history store is recording.",
        {
            "state": {"enum": ["off", "ok", "degraded", None]},
            "dropped": _COUNT,
            "error": _OPT_STR,
            "buffered": _COUNT,
            "last_write": _OPT_NUMBER,
            "interval": _OPT_NUMBER,
        },
    ),
    "ReplicaInfo": _object(
        "Which replica observed the snapshot and which one answered (replicated servers only).",
        {
            "observed_by": _STR,
            "term": _COUNT,
            "served_by": _STR,
            "role": {"enum": ["leader", "follower", "degraded", None]},
            "degraded": _BOOL,
            "published_at": _OPT_NUMBER,
        },
    ),
    "CeleryStatus": _object(
        "GET /api/celery-status: every key is present in every response.",
        {
            "enabled": _BOOL,
            "connected": _BOOL,
            "workers": _COUNT,
            "broker_url": _STR,
            "active_tasks": _COUNT,
            "scheduled_tasks": _COUNT,
            "registered_tasks": _STR_LIST,
            "worker_stats": _map(_ref("WorkerStats")),
            "queue_details": _ref("QueueDetails"),
            "reserved_tasks": _COUNT,
            "queues": _map(_ref("QueueDepth")),
            "observed_at": _OPT_NUMBER,
            "age": _OPT_NUMBER,
            "stale": _BOOL,
            "error": _OPT_STR,
            "message": _OPT_STR,
            "inspection": _ref("InspectionInfo"),
            "history": _ref("HistoryInfo"),
            "replica": {"anyOf": [{"type": "null"}, _ref("ReplicaInfo")]},
        },
        # Added by the bridge when an arg filter could only see unmasked values.
        {"search_limited": _STR},
    ),
    "TaskSearchResult": _object(
        "GET /api/celery-status/tasks.",
        {
            "tasks": {"type": "array", "items": _ref("LocatedTask")},
            "observed_at": _OPT_NUMBER,
            "stale": _BOOL,
            "truncated": _BOOL,
        },
        # error: only when the bridge could not reach the status service;
        # search_limited: only when an arg filter could only see unmasked values.
        {"error": _STR, "search_limited": _STR},
    ),
}


def _retarget(node: Any, prefix: str) -> Any:
    if isinstance(node, dict):
        return {
            key: (prefix + value[len(_DEFS) :] if key == "$ref" else _retarget(value, prefix))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_retarget(item, prefix) for item in node]
    return node


def definitions(ref_prefix: str = _DEFS) -> dict[str, dict[str, Any]]:
    """Every named part of the documents, referring to each other with ``ref_prefix``.

    ``"#/components/schemas/"`` gives OpenAPI components.
    """
    return {name: _retarget(copy.deepcopy(schema), ref_prefix) for name, schema in _DEFINITIONS.items()}


def _document(root: str, title: str) -> dict[str, Any]:
    """A standalone schema: the root part plus the parts it reaches, under ``$defs``."""
    reachable: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref[len(_DEFS) :] not in reachable:
                reachable.add(ref[len(_DEFS) :])
                walk(_DEFINITIONS[ref[len(_DEFS) :]])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(_DEFINITIONS[root])
    document: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        **copy.deepcopy(_DEFINITIONS[root]),
    }
    if reachable:
        document["$defs"] = {name: copy.deepcopy(_DEFINITIONS[name]) for name in sorted(reachable)}
    return document


STATUS_JSON_SCHEMA: dict[str, Any] = _document("CeleryStatus", "Celery cluster status")
TASK_JSON_SCHEMA: dict[str, Any] = _document("Task", "Task in queue_details")
SEARCH_JSON_SCHEMA: dict[str, Any] = _document("TaskSearchResult", "Task search result")
