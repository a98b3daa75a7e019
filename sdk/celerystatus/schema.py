"""JSON Schema (draft 2020-12) of the status document served by the bridge.

It describes exactly what :meth:`celerystatus.models.CeleryStatus.to_dict`
produces: every key is required, and nullable values are spelled out.  Objects
allow additional properties because new keys may be added to the document
(additive changes only); removing or retyping one is a breaking change.
"""

from __future__ import annotations

from typing import Any

__all__ = ["STATUS_JSON_SCHEMA", "TASK_JSON_SCHEMA"]

_INT: dict[str, Any] = {"type": "integer"}
_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
_NUMBER: dict[str, Any] = {"type": "number"}
_OPT_NUMBER: dict[str, Any] = {"type": ["number", "null"]}
_OPT_INT: dict[str, Any] = {"type": ["integer", "null"]}
_OPT_STR: dict[str, Any] = {"type": ["string", "null"]}
_STR: dict[str, Any] = {"type": "string"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_STR_LIST: dict[str, Any] = {"type": "array", "items": _STR}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": sorted(properties), "properties": properties}


TASK_JSON_SCHEMA: dict[str, Any] = _object(
    {
        "id": _STR,
        "name": _STR,
        "args": {"type": "array"},
        "kwargs": {"type": "object"},
        "time_start": _OPT_NUMBER,
        "eta": _OPT_NUMBER,
        "priority": _OPT_INT,
        "worker_pid": _OPT_INT,
        "acknowledged": _BOOL,
        "routing_key": _STR,
        "exchange": _STR,
        "args_redacted": _BOOL,
    }
)

_POOL = _object(
    {
        "max-concurrency": _COUNT,
        "processes": {"type": "array", "items": _INT},
        "max-tasks-per-child": _OPT_INT,
        "implementation": _STR,
    }
)

_WORKER = _object(
    {
        "total": _COUNT,
        "pool": _POOL,
        "total_by_task": {"type": "object", "additionalProperties": _COUNT},
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
    }
)

_TASKS_BY_WORKER: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": "array", "items": TASK_JSON_SCHEMA},
}

STATUS_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Celery cluster status",
    **_object(
        {
            "enabled": _BOOL,
            "connected": _BOOL,
            "workers": _COUNT,
            "broker_url": _STR,
            "active_tasks": _COUNT,
            "scheduled_tasks": _COUNT,
            "reserved_tasks": _COUNT,
            "registered_tasks": _STR_LIST,
            "worker_stats": {"type": "object", "additionalProperties": _WORKER},
            "queue_details": _object(
                {
                    "active": _TASKS_BY_WORKER,
                    "scheduled": _TASKS_BY_WORKER,
                    "reserved": _TASKS_BY_WORKER,
                }
            ),
            "queues": {
                "type": "object",
                "additionalProperties": _object({"messages": _COUNT, "consumers": _OPT_INT}),
            },
            "observed_at": _OPT_NUMBER,
            "age": _OPT_NUMBER,
            "stale": _BOOL,
            "error": _OPT_STR,
            "message": _OPT_STR,
            "inspection": _object(
                {
                    "duration": _OPT_NUMBER,
                    "method": {"enum": ["stock", "extension", "mixed", None]},
                    "round": _COUNT,
                    "errors": _COUNT,
                    "refresh_interval": _OPT_NUMBER,
                }
            ),
            "replica": {
                "anyOf": [
                    {"type": "null"},
                    _object(
                        {
                            "observed_by": _STR,
                            "term": _COUNT,
                            "served_by": _STR,
                            "role": {"enum": ["leader", "follower", "degraded", None]},
                            "degraded": _BOOL,
                            "published_at": _OPT_NUMBER,
                        }
                    ),
                ]
            },
        }
    ),
}
