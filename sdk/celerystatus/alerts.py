"""Typed, immutable alerts as the service reports them (ListAlerts, WatchAlerts).

:meth:`Alert.to_dict` is the JSON shape of an alert everywhere: ``GET
/api/alerts``, WebSocket alert frames and webhook notifications.
Times are epoch seconds.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from celerystatus.v1 import alerts_pb2 as apb
from celerystatus.values import epoch_to_timestamp, timestamp_to_epoch

__all__ = ["Alert", "AlertList", "AlertState", "AlertUpdate", "ReceiverStats"]


class AlertState(str, enum.Enum):
    PENDING = "pending"
    """The condition holds, not yet for the rule's ``for`` duration."""
    FIRING = "firing"
    RESOLVED = "resolved"
    """It fired and its condition no longer holds (listed for a while)."""

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


def _opt_time(msg: Any, name: str) -> float | None:
    return timestamp_to_epoch(getattr(msg, name)) if msg.HasField(name) else None


@dataclass(frozen=True, slots=True)
class Alert:
    fingerprint: str
    name: str
    state: AlertState
    severity: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    active_since: float
    updated_at: float
    value: float = 0.0
    fired_at: float | None = None
    resolved_at: float | None = None

    @property
    def summary(self) -> str:
        return self.annotations.get("summary", self.name)

    @property
    def description(self) -> str:
        return self.annotations.get("description", "")

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

    @classmethod
    def from_proto(cls, msg: apb.Alert) -> Alert:
        return cls(
            fingerprint=msg.fingerprint,
            name=msg.name,
            state=AlertState.from_proto(msg.state) or AlertState.PENDING,
            severity=msg.severity,
            labels=dict(msg.labels),
            annotations=dict(msg.annotations),
            active_since=_opt_time(msg, "active_since") or 0.0,
            updated_at=_opt_time(msg, "updated_at") or 0.0,
            value=msg.value,
            fired_at=_opt_time(msg, "fired_at"),
            resolved_at=_opt_time(msg, "resolved_at"),
        )


@dataclass(frozen=True, slots=True)
class ReceiverStats:
    """Delivery counters of one notification receiver since the server started."""

    name: str
    kind: str
    sent: int = 0
    failed: int = 0
    dropped: int = 0

    @classmethod
    def from_proto(cls, msg: apb.ReceiverStats) -> ReceiverStats:
        return cls(msg.name, msg.kind, msg.sent, msg.failed, msg.dropped)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "sent": self.sent, "failed": self.failed,
                "dropped": self.dropped}


@dataclass(frozen=True, slots=True)
class AlertList:
    """What ``list_alerts`` returns: firing first, then pending, then recently resolved."""

    alerts: tuple[Alert, ...] = ()
    evaluated_at: float | None = None
    receivers: tuple[ReceiverStats, ...] = field(default_factory=tuple)

    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.state is AlertState.FIRING]

    @classmethod
    def from_proto(cls, msg: apb.ListAlertsResponse | apb.WatchAlertsResponse) -> AlertList:
        return cls(
            alerts=tuple(Alert.from_proto(a) for a in msg.alerts),
            evaluated_at=_opt_time(msg, "evaluated_at"),
            receivers=tuple(ReceiverStats.from_proto(r) for r in msg.receivers),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "alerts": [a.to_dict() for a in self.alerts],
            "evaluated_at": self.evaluated_at,
            "receivers": [r.to_dict() for r in self.receivers],
        }


@dataclass(frozen=True, slots=True)
class AlertUpdate(AlertList):
    """One ``watch_alerts`` message: the whole set, and the alerts whose state changed."""

    changed: tuple[Alert, ...] = ()

    @classmethod
    def from_proto(cls, msg: apb.ListAlertsResponse | apb.WatchAlertsResponse) -> AlertUpdate:
        base = AlertList.from_proto(msg)
        changed = tuple(Alert.from_proto(a) for a in msg.changed) if isinstance(msg, apb.WatchAlertsResponse) else ()
        return cls(alerts=base.alerts, evaluated_at=base.evaluated_at, receivers=base.receivers, changed=changed)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "alerts", **AlertList.to_dict(self), "changed": [a.to_dict() for a in self.changed]}
