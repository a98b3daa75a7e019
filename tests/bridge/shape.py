"""Reduce a status document to its shape: key names and value types.

Maps keyed by worker hostname or queue name are collapsed to one ``<key>``
entry, so the shape does not depend on how many workers happen to be up.
"""

from __future__ import annotations

from typing import Any

SEED_KEYS = (
    "enabled",
    "connected",
    "workers",
    "broker_url",
    "active_tasks",
    "scheduled_tasks",
    "registered_tasks",
    "worker_stats",
    "queue_details",
)

# Paths (dot-joined) whose keys are data, not schema.
_DYNAMIC = {
    "worker_stats",
    "queue_details.active",
    "queue_details.scheduled",
    "queue_details.reserved",
    "queues",
    "worker_stats.<key>.total_by_task",
}


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    raise TypeError(type(value))


def shape(value: Any, path: str = "") -> Any:
    if isinstance(value, dict):
        if path in _DYNAMIC:
            merged: Any = None
            for item in value.values():
                merged = _merge(merged, shape(item, f"{path}.<key>"))
            return {"<key>": merged} if value else {}
        return {key: shape(item, f"{path}.{key}".lstrip(".")) for key, item in value.items()}
    if isinstance(value, list):
        merged_item: Any = None
        for item in value:
            merged_item = _merge(merged_item, shape(item, f"{path}[]"))
        return [merged_item] if value else []
    return _type(value)


def _merge(a: Any, b: Any) -> Any:
    if a is None or a == b:
        return b
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: _merge(a.get(k), b.get(k)) for k in {**a, **b}}
    # Nullable values show as "a|b", e.g. time_start on active vs scheduled tasks.
    kinds = set(str(a).split("|")) | set(str(b).split("|"))
    return "|".join(sorted(kinds))
