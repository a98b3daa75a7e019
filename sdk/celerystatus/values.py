"""Conversions between protobuf well-known types and plain Python values.

Kept apart from the models so both directions of every conversion sit next to
each other and can be checked for round-tripping in one place.  Public because
code that builds or reads the protobuf messages directly (the status server,
the HTTP bridge, test doubles) needs exactly these conversions too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TypeAlias

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

__all__ = [
    "JSONValue",
    "dict_to_struct",
    "duration_to_seconds",
    "epoch_to_timestamp",
    "list_to_list_value",
    "list_value_to_list",
    "python_to_value",
    "seconds_to_duration",
    "struct_to_dict",
    "timestamp_to_epoch",
    "value_to_python",
]

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"

# Doubles represent every integer up to 2**53 exactly; past that a whole
# double may not be the integer the producer sent, so it stays a float.
_MAX_EXACT_INT = 2**53


def value_to_python(value: struct_pb2.Value) -> JSONValue:
    """Convert a ``google.protobuf.Value`` to a JSON-compatible Python value.

    ``Value`` has a single number type (double), so ``42`` sent by the server
    arrives as ``42.0``.  Whole numbers are turned back into ``int`` because
    Celery arguments are far more often identifiers and counts than floats
    that happen to be whole; the price is that a genuine ``1.0`` reads as ``1``,
    which JSON consumers cannot tell apart anyway.
    """
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        if number.is_integer() and abs(number) <= _MAX_EXACT_INT:
            return int(number)
        return number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return list_value_to_list(value.list_value)
    return None


def list_value_to_list(values: struct_pb2.ListValue) -> list[JSONValue]:
    return [value_to_python(item) for item in values.values]


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, JSONValue]:
    return {key: value_to_python(item) for key, item in struct.fields.items()}


def python_to_value(obj: object) -> struct_pb2.Value:
    """Convert a JSON-compatible value; anything else is sent as its ``repr``.

    Falling back to ``repr`` rather than raising keeps a status snapshot
    usable when a task was called with an argument JSON cannot express
    (bytes, a datetime, a custom object).
    """
    value = struct_pb2.Value()
    if obj is None:
        value.null_value = struct_pb2.NULL_VALUE
    elif isinstance(obj, bool):
        value.bool_value = obj
    elif isinstance(obj, int | float):
        number = float(obj)
        if math.isfinite(number):
            value.number_value = number
        else:
            value.string_value = repr(obj)
    elif isinstance(obj, str):
        value.string_value = obj
    elif isinstance(obj, Mapping):
        value.struct_value.CopyFrom(dict_to_struct({str(k): v for k, v in obj.items()}))
    elif isinstance(obj, Sequence | set | frozenset) and not isinstance(obj, bytes | bytearray):
        value.list_value.CopyFrom(list_to_list_value(obj))
    else:
        value.string_value = repr(obj)
    return value


def list_to_list_value(items: object) -> struct_pb2.ListValue:
    result = struct_pb2.ListValue()
    if isinstance(items, Sequence | set | frozenset):
        for item in items:
            result.values.append(python_to_value(item))
    return result


def dict_to_struct(mapping: Mapping[str, object]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    for key, item in mapping.items():
        result.fields[str(key)].CopyFrom(python_to_value(item))
    return result


def timestamp_to_epoch(ts: timestamp_pb2.Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def epoch_to_timestamp(epoch: float) -> timestamp_pb2.Timestamp:
    # Splitting off the whole seconds first keeps the fraction exact; scaling
    # the whole epoch by 1e9 would lose the last digits of a double.
    seconds = math.floor(epoch)
    nanos = round((epoch - seconds) * 1e9)
    if nanos >= 1_000_000_000:
        seconds, nanos = seconds + 1, nanos - 1_000_000_000
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def duration_to_seconds(duration: duration_pb2.Duration) -> float:
    return duration.seconds + duration.nanos / 1e9


def seconds_to_duration(seconds: float) -> duration_pb2.Duration:
    # Duration requires seconds and nanos to share a sign, hence the split on
    # the magnitude.
    sign = -1 if seconds < 0 else 1
    magnitude = abs(seconds)
    whole = math.floor(magnitude)
    nanos = round((magnitude - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    return duration_pb2.Duration(seconds=sign * whole, nanos=sign * nanos)
