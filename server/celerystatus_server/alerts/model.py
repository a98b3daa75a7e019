"""Alert identity and the rule-side value; the alert itself is the SDK's model.

The SDK's :class:`~celerystatus.alerts.Alert` is shared so the JSON of an
alert (API, WebSocket, webhooks, state file) is defined once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from celerystatus.alerts import Alert, AlertState

__all__ = ["SEVERITIES", "Alert", "AlertState", "Condition", "fingerprint"]

#: Severities in increasing order; ``check`` maps warning and critical to its exit codes.
SEVERITIES = ("info", "warning", "critical")


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable id for a set of labels (same labels, same alert, on every replica and after restarts)."""
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
