"""The alert state machine: conditions in, pending → firing → resolved out.

Pure logic with an injectable clock. Evaluating the same snapshot twice
changes nothing, and alerts are keyed by fingerprint, so replicas evaluating
the same cluster agree on identities and states.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from celerystatus.v1 import celery_status_pb2 as pb

from .model import Alert, AlertState, Condition, fingerprint
from .rules import Context, RuleBase
from .trends import RecordingTrendSource, TrendSource

__all__ = ["STATE_VERSION", "AlertEngine", "Evaluation"]

log = logging.getLogger(__name__)

#: Version of :meth:`AlertEngine.export_state`'s format.
STATE_VERSION = 1


@dataclass(frozen=True)
class Evaluation:
    #: Alerts that changed state (firing, resolved; pending when new).
    changed: list[Alert] = field(default_factory=list)
    #: Alerts that simply went away (pending ones whose condition stopped, expired resolved ones).
    removed: list[Alert] = field(default_factory=list)
    at: float = 0.0

    @property
    def any(self) -> bool:
        return bool(self.changed or self.removed)


class AlertEngine:
    """Holds the active alerts (pending, firing) and the recently resolved ones."""

    def __init__(
        self,
        rules: Iterable[RuleBase],
        trends: TrendSource,
        *,
        clock: Callable[[], float] = time.time,
        resolved_retention: float = 900.0,
    ) -> None:
        self.rules = list(rules)
        self.trends = trends
        self.clock = clock
        self.resolved_retention = resolved_retention
        self._active: dict[str, Alert] = {}
        self._resolved: dict[str, Alert] = {}
        self.evaluated_at: float | None = None
        #: Rules that raised during evaluation (a broken rule must not stop the others).
        self.rule_errors = 0

    def alerts(self) -> list[Alert]:
        """Firing first, then pending, then resolved; oldest first within each."""
        order = {AlertState.FIRING: 0, AlertState.PENDING: 1, AlertState.RESOLVED: 2}
        every = [*self._active.values(), *self._resolved.values()]
        return sorted(every, key=lambda a: (order[a.state], a.active_since, a.name, a.fingerprint))

    def evaluate(self, status: pb.CeleryStatus, *, observe: bool = True) -> Evaluation:
        now = self.clock()
        if observe and isinstance(self.trends, RecordingTrendSource):
            self.trends.observe(status, now)
        ctx = Context(status, now, self.trends)
        matched: dict[str, tuple[Condition, dict[str, str]]] = {}
        paused: set[str] = set()
        for rule in self.rules:
            if not status.enabled or (rule.needs_fresh_data and not ctx.fresh):
                paused.add(rule.name)
                continue
            try:
                for condition in rule.conditions(ctx):
                    labels = {
                        "alertname": condition.rule,
                        "severity": condition.severity,
                        **rule.labels,
                        **condition.labels,
                    }
                    matched[fingerprint(labels)] = (condition, labels)
            except Exception:
                self.rule_errors += 1
                log.exception("alert rule %s failed", rule.name)
                paused.add(rule.name)
        changed: list[Alert] = []
        removed: list[Alert] = []
        for fp, (condition, labels) in matched.items():
            annotations = {"summary": condition.summary, "description": condition.description}
            current = self._active.get(fp)
            if current is None:
                self._resolved.pop(fp, None)
                current = Alert(
                    fingerprint=fp,
                    name=condition.rule,
                    state=AlertState.PENDING,
                    severity=condition.severity,
                    labels=labels,
                    annotations=annotations,
                    active_since=now,
                    updated_at=now,
                    value=condition.value,
                )
                if condition.for_seconds <= 0:
                    current = current.with_(state=AlertState.FIRING, fired_at=now)
                changed.append(current)
            else:
                current = current.with_(annotations=annotations, value=condition.value)
                if current.state is AlertState.PENDING and now - current.active_since >= condition.for_seconds:
                    current = current.with_(state=AlertState.FIRING, fired_at=now, updated_at=now)
                    changed.append(current)
            self._active[fp] = current
        for fp, alert in list(self._active.items()):
            if fp in matched or alert.name in paused:
                continue
            del self._active[fp]
            if alert.state is AlertState.FIRING:
                resolved = alert.with_(state=AlertState.RESOLVED, resolved_at=now, updated_at=now)
                self._resolved[fp] = resolved
                changed.append(resolved)
            else:
                removed.append(alert)
        for fp, alert in list(self._resolved.items()):
            if alert.resolved_at is not None and now - alert.resolved_at > self.resolved_retention:
                removed.append(self._resolved.pop(fp))
        self.evaluated_at = now
        return Evaluation(changed, removed, now)

    # -- persistence ------------------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "evaluated_at": self.evaluated_at,
            "alerts": [alert.to_dict() for alert in self.alerts()],
        }

    def load_state(self, state: Mapping[str, Any]) -> int:
        """Restore alerts saved by :meth:`export_state`; returns how many were restored.

        Alerts of rules no longer configured are dropped: nothing would ever
        resolve them.
        """
        if state.get("version") != STATE_VERSION:
            return 0
        names = {rule.name for rule in self.rules}
        restored = 0
        for item in state.get("alerts") or []:
            try:
                alert = Alert.from_dict(item)
            except (KeyError, TypeError, ValueError):
                continue
            if alert.name not in names:
                continue
            target = self._resolved if alert.state is AlertState.RESOLVED else self._active
            target[alert.fingerprint] = alert
            restored += 1
        return restored
