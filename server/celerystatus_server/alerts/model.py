"""What an alert is: identity (fingerprint), state, labels, annotations, times.

Pure data with JSON and protobuf conversions; the engine decides the states.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from celerystatus._values import epoch_to_timestamp
from celerystatus.v1 import alerts_pb2 as apb

__all__ = ["SEVERITIES", "Alert", "AlertState", "Condition", "fingerprint"]

#: Severities in increasing order; ``check`` maps warning and critical to its exit codes.
SEVERITIES = ("info", "warning", "critical")


class AlertState(str, enum.Enum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"

    def to_proto(self) -> apb.AlertState.ValueType:
        return _STATE_TO_PROTO[self]

    @classmethod
    def from_proto(cls, value: int) -> AlertState | None:
        return _STATE_FROM_PROTO.get(value)


_STATE_TO_PROTO: dict[AlertState, apb.AlertState.ValueType] = {
    AlertState.PENDING: apb.ALERT_STATE_PENDING,
    AlertState.FIRING: apb.ALERT_STATE_FIRING,
    AlertState.RESOLVED: apb.ALERT_STATE_RESOLVED,
}
_STATE_FROM_PROTO: dict[int, AlertState] = {int(v): k for k, v in _STATE_TO_PROTO.items()}


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable id for a set of identifying labels (same labels, same alert, on every replica)."""
    text = "\x1f".join(f"{k}\x1e{labels[k]}" for k in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Condition:
    """One instance of a rule matching now: what a rule evaluation returns."""

    rule: str
    severity: str
    #: Identifying labels besides alertname/severity (worker, queue, task, ...).
    labels: Mapping[str, str]
    summary: str
    description: str
    value: float
    #: Seconds the condition must hold before the alert fires.
    for_seconds: float


@dataclass(frozen=True, slots=True)
class Alert:
    fingerprint: str
    name: str
    state: AlertState
    severity: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    #: Epoch seconds; when the condition started to hold.
    active_since: float
    updated_at: float
    value: float = 0.0
    fired_at: float | None = None
    resolved_at: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> Alert:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "name": self.name,
            "state": self.state.value,
            "severity": self.severity,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "active_since": self.active_since,
            "fired_at": self.fired_at,
            "resolved_at": self.resolved_at,
            "updated_at": self.updated_at,
            "value": self.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        return cls(
            fingerprint=str(data["fingerprint"]),
            name=str(data["name"]),
            state=AlertState(data["state"]),
            severity=str(data["severity"]),
            labels={str(k): str(v) for k, v in dict(data.get("labels") or {}).items()},
            annotations={str(k): str(v) for k, v in dict(data.get("annotations") or {}).items()},
            active_since=float(data["active_since"]),
            updated_at=float(data.get("updated_at") or data["active_since"]),
            value=float(data.get("value") or 0.0),
            fired_at=None if data.get("fired_at") is None else float(data["fired_at"]),
            resolved_at=None if data.get("resolved_at") is None else float(data["resolved_at"]),
        )

    def to_proto(self) -> apb.Alert:
        msg = apb.Alert(
            fingerprint=self.fingerprint,
            name=self.name,
            state=self.state.to_proto(),
            severity=self.severity,
            labels=dict(self.labels),
            annotations=dict(self.annotations),
            value=self.value,
        )
        msg.active_since.CopyFrom(epoch_to_timestamp(self.active_since))
        msg.updated_at.CopyFrom(epoch_to_timestamp(self.updated_at))
        if self.fired_at is not None:
            msg.fired_at.CopyFrom(epoch_to_timestamp(self.fired_at))
        if self.resolved_at is not None:
            msg.resolved_at.CopyFrom(epoch_to_timestamp(self.resolved_at))
        return msg
