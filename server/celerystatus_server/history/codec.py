"""Packing of sample values into the ``payload`` column.

Values travel as compressed JSON arrays aligned with a layout (sorted series
names): compact, engine-neutral, and cheap to decode for the handful of series
a query asks for. ``None`` stands for "not recorded in this bucket".
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Value = float | None


def encode_raw(values: Sequence[Value]) -> bytes:
    return zlib.compress(json.dumps(list(values), separators=(",", ":")).encode(), 6)


@dataclass(frozen=True, slots=True)
class Rollup:
    """Aggregates of one bucket, each aligned with the layout."""

    count: Sequence[int]
    min: Sequence[Value]
    max: Sequence[Value]
    mean: Sequence[Value]
    last: Sequence[Value]

    def to_json(self) -> dict[str, Sequence[Value] | Sequence[int]]:
        return {"n": self.count, "min": self.min, "max": self.max, "mean": self.mean, "last": self.last}


def encode_rollup(rollup: Rollup) -> bytes:
    return zlib.compress(json.dumps(rollup.to_json(), separators=(",", ":")).encode(), 6)


def decode(payload: bytes) -> list[Value] | Rollup:
    data = json.loads(zlib.decompress(payload))
    if isinstance(data, list):
        return data
    assert isinstance(data, Mapping)
    return Rollup(count=data["n"], min=data["min"], max=data["max"], mean=data["mean"], last=data["last"])


def round_value(value: float) -> float:
    """Fewer digits, smaller payloads; sub-microsecond precision means nothing here."""
    return float(int(value)) if value == int(value) else round(value, 6)
