"""The published JSON Schema, closed: for tests that must notice any drift from ``to_dict``."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema

__all__ = ["closed", "validate_closed"]


def closed(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with unknown keys forbidden in every fixed-key object.

    The published schema lets documents gain keys (clients must not break on
    additions); a test comparing it with what the code produces must not, or
    a key added to ``to_dict`` but not to the schema would go unnoticed.
    """

    def close(node: Any) -> Any:
        if isinstance(node, dict):
            node = {key: close(value) for key, value in node.items()}
            if "properties" in node:
                node["additionalProperties"] = False
            return node
        if isinstance(node, list):
            return [close(item) for item in node]
        return node

    result: dict[str, Any] = close(copy.deepcopy(schema))
    return result


def validate_closed(document: Any, schema: dict[str, Any]) -> None:
    """Validate ``document`` as a JSON consumer receives it (through ``json``)."""
    jsonschema.Draft202012Validator(closed(schema)).validate(json.loads(json.dumps(document)))
