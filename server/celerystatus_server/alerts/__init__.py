"""Alerts: rules evaluated on every snapshot, with state, notifications and Prometheus export.

``config`` (the rules file) → ``rules`` (what matches) → ``engine`` (pending,
firing, resolved) ← ``trends`` (what trend rules ask about the past);
``runner`` drives the engine from the snapshot store; ``notify`` delivers;
``state`` persists; ``prometheus`` exports an equivalent rule group.
"""

from .config import AlertConfig, Receiver, RulesFileError, load_alert_config, parse_alert_config
from .engine import AlertEngine, Evaluation
from .model import Alert, AlertState
from .runner import AlertBoard, AlertRunner
from .trends import RecordingTrendSource, RuntimeStats, Saturation, SnapshotRing, TrendSource

__all__ = [
    "Alert",
    "AlertBoard",
    "AlertConfig",
    "AlertEngine",
    "AlertRunner",
    "AlertState",
    "Evaluation",
    "Receiver",
    "RecordingTrendSource",
    "RulesFileError",
    "RuntimeStats",
    "Saturation",
    "SnapshotRing",
    "TrendSource",
    "load_alert_config",
    "parse_alert_config",
]
