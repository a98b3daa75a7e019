"""Checks custom resources against the prometheus-operator models generated from its published CRDs.

    python crd_schema.py FILE.yaml...

Run by the deploy-tools venv (.ci/run makes it), which has the models; the
test suite's own venv does not need them. Besides the models' type checks,
every key must be a field the CRD defines, as the API server's strict field
validation demands. Prints one line per problem; exit 1 when there is any.
"""

from __future__ import annotations

import sys
import types
import typing
from typing import Any

import yaml  # type: ignore[import-untyped]
from pydantic import BaseModel, ValidationError


def unknown_fields(model: Any, data: Any, where: str) -> list[str]:
    """Keys of ``data`` that the model (or a nested one) does not define."""
    origin = typing.get_origin(model)
    if origin in (typing.Union, types.UnionType):
        results = [unknown_fields(arg, data, where) for arg in typing.get_args(model) if arg is not type(None)]
        return min(results, key=len) if results else []
    if origin is typing.Annotated:
        return unknown_fields(typing.get_args(model)[0], data, where)
    if origin is list and isinstance(data, list):
        (item,) = typing.get_args(model)
        return [bad for i, value in enumerate(data) for bad in unknown_fields(item, value, f"{where}[{i}]")]
    if origin is dict and isinstance(data, dict):
        value_type = typing.get_args(model)[1]
        return [bad for key, value in data.items() for bad in unknown_fields(value_type, value, f"{where}.{key}")]
    if isinstance(model, type) and issubclass(model, BaseModel) and isinstance(data, dict):
        fields = {(field.alias or name): field for name, field in model.model_fields.items()}
        problems = []
        for key, value in data.items():
            if key not in fields:
                problems.append(f"{where}.{key}: unknown field")
            else:
                problems += unknown_fields(fields[key].annotation, value, f"{where}.{key}")
        return problems
    return []


def check(doc: dict[str, Any]) -> list[str]:
    from cloudcoil.models.prometheus_operator import v1  # type: ignore[import-not-found]

    kind = doc.get("kind", "")
    model = getattr(v1, kind, None) if doc.get("apiVersion") == "monitoring.coreos.com/v1" else None
    if model is None:
        return [f"{kind}: not a monitoring.coreos.com/v1 kind"]
    try:
        model.model_validate(doc)
    except ValidationError as exc:
        return [f"{kind}: {error['loc']}: {error['msg']}" for error in exc.errors()]
    return unknown_fields(model, doc, kind)


def main(paths: list[str]) -> int:
    problems = [f"{path}: {problem}" for path in paths
                for doc in yaml.safe_load_all(open(path)) if doc for problem in check(doc)]  # fmt: skip
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{len(paths)} file(s) match the prometheus-operator schema")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
