"""Packing of sample values into the ``payload`` column.

Values are packed arrays aligned with a layout (sorted series names), then
zlib-compressed: engine-neutral, and decoded in microseconds (a query reads
thousands of rows but only a few series of each). NaN stands for "not
recorded in this bucket". Raw values are float64 (counters must stay exact);
roll-ups keep their count as int32, min/max/mean as float32 (levels, where
seven significant digits are plenty) and last as float64 (it carries the
counters' value forward).
"""

from __future__ import annotations

import math
import sys
import zlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

Value = float | None

_RAW = b"\x01"
_ROLLUP = b"\x02"
_LITTLE = sys.byteorder == "little"


def _pack(code: str, values: Sequence[float]) -> bytes:
    packed = array(code, values)
    if not _LITTLE:
        packed.byteswap()
    return packed.tobytes()


def _unpack(code: str, data: bytes) -> array:  # type: ignore[type-arg]
    packed = array(code)
    packed.frombytes(data)
    if not _LITTLE:
        packed.byteswap()
    return packed


def _nan(value: Value) -> float:
    return math.nan if value is None else value


def encode_raw(values: Sequence[Value]) -> bytes:
    return _RAW + zlib.compress(_pack("d", [_nan(v) for v in values]), 6)


@dataclass(frozen=True, slots=True)
class Rollup:
    """Aggregates of one bucket, each aligned with the layout."""

    count: Sequence[int]
    min: Sequence[Value]
    max: Sequence[Value]
    mean: Sequence[Value]
    last: Sequence[Value]


def encode_rollup(rollup: Rollup) -> bytes:
    body = (
        _pack("i", rollup.count)
        + _pack("f", [_nan(v) for v in rollup.min])
        + _pack("f", [_nan(v) for v in rollup.max])
        + _pack("f", [_nan(v) for v in rollup.mean])
        + _pack("d", [_nan(v) for v in rollup.last])
    )
    return _ROLLUP + zlib.compress(body, 6)


def decode(payload: bytes) -> Sequence[float] | Rollup:
    """Raw values, or a roll-up; NaN (not None) where nothing was recorded, to keep decoding cheap."""
    kind, body = payload[:1], zlib.decompress(payload[1:])
    if kind == _RAW:
        return _unpack("d", body)
    if kind != _ROLLUP:
        raise ValueError(f"unknown payload format {kind!r}")
    n = len(body) // 24
    return Rollup(
        count=_unpack("i", body[: 4 * n]),
        min=_unpack("f", body[4 * n: 8 * n]),
        max=_unpack("f", body[8 * n: 12 * n]),
        mean=_unpack("f", body[12 * n: 16 * n]),
        last=_unpack("d", body[16 * n:]),
    )


def round_value(value: float) -> float:
    """Whole numbers stay exact; other values keep six decimals."""
    if not math.isfinite(value):
        return value
    return float(int(value)) if value == int(value) else round(value, 6)
