"""An equivalent Prometheus rule group on the bridge's own ``/metrics``.

For teams that alert in Prometheus: the same rules, thresholds, ``for``
durations, severities and labels as the service's own engine, written in
PromQL over the metrics in ``bridge/metrics.py``. Rules whose inputs exist only
inside the service (task runtimes) follow the service's verdict through
``celery_status_alerts``.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from .config import AlertConfig
from .rules import RuleBase, ThresholdRule, format_duration

__all__ = ["export_rule_group", "render_rule_file"]

#: Status fields a threshold rule may read that have a metric of their own.
_FIELD_METRICS = {
    "workers": "celery_workers",
    "active_tasks": "celery_active_tasks",
    "scheduled_tasks": "celery_scheduled_tasks",
    "reserved_tasks": "celery_reserved_tasks",
    "connected": "celery_connected",
    "stale": "celery_status_stale",
    "age": "celery_snapshot_age_seconds",
    "queues.*.messages": "celery_queue_messages",
    "worker_stats.*.total": "celery_worker_total",
    "worker_stats.*.active_tasks": "celery_worker_active_tasks",
}
_SATURATION = "sum(celery_worker_active_tasks) / sum(celery_worker_pool_max_concurrency)"


def _service_verdict(name: str) -> str:
    return f'celery_status_alerts{{alertname="{name}",state="firing"}} > 0'


def _exprs(rule: RuleBase, refresh_interval: float) -> list[tuple[str, dict[str, str]]]:
    """PromQL expressions (with extra labels) equivalent to one rule."""
    r: Any = rule
    name = rule.name
    if isinstance(rule, ThresholdRule):
        path = rule.field_
        metric = _FIELD_METRICS.get(path)
        if metric is None and path.startswith("worker_stats.") and path.endswith(".total") and "*" not in path:
            metric = f'celery_worker_total{{worker="{path.split(".")[1]}"}}'
        if metric is None:
            return [(_service_verdict(name), {})]
        return [(f"{metric} {rule.op} {rule.value:g}", {})]
    if name == "BrokerDisconnected":
        return [("celery_connected == 0", {})]
    if name == "StatusStale":
        limit = r.intervals * refresh_interval
        return [(f"celery_status_stale == 1 or celery_snapshot_age_seconds > {limit:g}", {})]
    if name == "WorkersBelowMinimum":
        return [(f"celery_workers < {r.min} and on() celery_connected == 1", {})]
    if name == "TooManyActiveTasks":
        return [(f"celery_active_tasks > {r.max}", {})]
    if name == "QueueGrowing":
        selector = f'{{queue=~"{"|".join(r.queues)}"}}' if r.queues else ""
        window = format_duration(r.window)
        return [(
            f"deriv(celery_queue_messages{selector}[{window}]) * 60 > {r.min_growth:g}"
            f" and celery_queue_messages{selector} >= {r.floor}",
            {},
        )]
    if name == "WorkersSaturated":
        return [(f"{_SATURATION} >= {r.threshold:g}", {})]
    if name == "ExhaustionPredicted":
        window, horizon = format_duration(r.window), f"{r.horizon:g}"
        return [
            (f"predict_linear(({_SATURATION})[{window}:30s], {horizon}) >= 1 and ({_SATURATION}) < 1",
             {"resource": "pool"}),
            (f"predict_linear(celery_queue_messages[{window}], {horizon}) >= {r.backlog_limit}"
             f" and celery_queue_messages < {r.backlog_limit}", {"resource": "backlog"}),
        ]
    if name == "PoolProcessesCrashed":
        return [("celery_worker_pool_processes < celery_worker_pool_max_concurrency", {})]
    if name == "WorkerStalled":
        return [(
            f"celery_worker_active_tasks > 0 and changes(celery_worker_total[{format_duration(r.window)}]) == 0",
            {},
        )]
    # TaskRunningLong, TaskSlowerThanUsual: runtimes are known only inside the service.
    return [(_service_verdict(name), {})]


_DURATION_OPTIONS = {"window", "horizon", "baseline", "min_runtime"}


def _summary(rule: RuleBase) -> str:
    """The rule's meaning with its options' values in place of their names."""
    if isinstance(rule, ThresholdRule):
        return rule.summary or f"{rule.field_} {rule.op} {rule.value:g}"

    def value(match: re.Match[str]) -> str:
        option = match.group(1)
        current = getattr(rule, option, None)
        if isinstance(current, bool) or not isinstance(current, int | float):
            return option
        return format_duration(current) if option in _DURATION_OPTIONS else f"{current:g}"

    return re.sub(r"`([a-z_-]+)`", value, type(rule).meaning)


def export_rule_group(
    config: AlertConfig, *, refresh_interval: float = 2.0, group: str = "celery-status"
) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    for rule in config.active_rules():
        for expr, extra in _exprs(rule, refresh_interval):
            entry: dict[str, Any] = {"alert": rule.name, "expr": expr}
            if rule.for_ > 0:
                entry["for"] = format_duration(rule.for_)
            entry["labels"] = {"severity": rule.severity, **rule.labels, **extra}
            where = " on {{ $labels.worker }}" if "celery_worker_" in expr else (
                " for queue {{ $labels.queue }}" if "celery_queue_" in expr else ""
            )
            entry["annotations"] = {
                "summary": _summary(rule),
                "description": f"{rule.name}{where}: value {{{{ $value }}}}",
            }
            rules.append(entry)
    return {"groups": [{"name": group, "rules": rules}]}


def render_rule_file(config: AlertConfig, *, refresh_interval: float = 2.0) -> str:
    header = "# Generated by `celery-status alerts export-prometheus`; metrics of the celery-status bridge.\n"
    return header + yaml.safe_dump(
        export_rule_group(config, refresh_interval=refresh_interval), sort_keys=False, width=1000
    )
