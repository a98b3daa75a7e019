"""deploy/grafana and deploy/prometheus: every query names series a live server exposes, and parses.

The Grafana dashboard is plain JSON; its PromQL is checked here rather than
generated: metric and label names against a live scrape of a real server with
real workers, syntax with promtool. The alert rules go through
``promtool check rules`` and their unit tests through ``promtool test rules``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from prometheus_client.parser import text_string_to_metric_families

from .conftest import DEPLOY, Scrape, run, tool

DASHBOARD = DEPLOY / "grafana" / "celery-status.json"
RULES = DEPLOY / "prometheus" / "celery-status-rules.yaml"
RULE_TESTS = DEPLOY / "prometheus" / "celery-status-rules.test.yaml"

METRIC = re.compile(r"\b(celery_[a-z0-9_]+)\b")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")
# Dashboard variables, replaced by values Grafana could give them.
VARIABLES = {"$__rate_interval": "1m", "$job": ".+", "$concurrency": "4"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def dashboard_queries() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in panels() for target in panel["targets"]]


def rule_queries() -> list[tuple[str, str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [(rule["alert"], rule["expr"]) for group in groups for rule in group["rules"]]


def exposed(scrape: Scrape) -> dict[str, set[str]]:
    """Sample name -> label names, as served."""
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(scrape.text):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def test_dashboard_is_well_formed() -> None:
    board = dashboard()
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    variables = {variable["name"] for variable in board["templating"]["list"]}
    assert {"datasource", "job", "concurrency"} <= variables
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        area = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert '{job=~"$job"}' in target["expr"] or "$job" in target["expr"], (panel["title"], target["expr"])
            for name in re.findall(r"\$(\w+)", target["expr"]):
                assert f"${name}" in VARIABLES, f"{panel['title']}: unknown variable ${name}"


def test_dashboard_has_the_panels_operators_look_for() -> None:
    titles = {panel["title"] for panel in panels()}
    assert {
        "Queue depth", "Processing rate", "Worker availability vs desired", "Saturation",
        "Broker connectivity", "Staleness", "Inspection duration", "Depth per queue",
    } <= titles  # fmt: skip
    queries = " ".join(expr for _, expr in dashboard_queries())
    # The spec's queries, aggregated across replicas.
    assert "rate(celery_worker_total" in queries
    assert "celery_workers_desired" in queries


@pytest.mark.slow
@pytest.mark.parametrize("source", ["dashboard", "rules"])
def test_every_query_names_series_a_live_server_exposes(live_scrape: Scrape, source: str) -> None:
    served = exposed(live_scrape)
    queries = dashboard_queries() if source == "dashboard" else rule_queries()
    missing = []
    for where, expr in queries:
        for metric in METRIC.findall(expr):
            if metric not in served:
                missing.append(f"{where}: {metric}")
                continue
            labels: set[str] = set()
            for group in GROUPING.findall(expr):
                labels |= {label.strip() for label in group.split(",") if label.strip()}
            # Labels a query groups by must exist on some metric it reads
            # (le on buckets; instance and pod come from the scrape itself).
            known = set().union(*(served.get(m, set()) for m in METRIC.findall(expr))) | {"instance", "pod", "le"}
            missing += [f"{where}: label {label}" for label in labels - known]
    assert not missing, missing


def test_dashboard_legends_use_labels_the_query_keeps() -> None:
    for panel in panels():
        for target in panel["targets"]:
            for label in LEGEND_LABEL.findall(target["legendFormat"]):
                groups = " ".join(GROUPING.findall(target["expr"]))
                assert label in groups, f"{panel['title']}: legend {{{{{label}}}}} is aggregated away"


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    # promtool parses PromQL when it checks rules: each query becomes a recording rule.
    rules = []
    for i, (_, expr) in enumerate(dashboard_queries()):
        for variable, value in sorted(VARIABLES.items(), key=lambda item: -len(item[0])):
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run([tool("promtool"), "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_the_alert_rules() -> None:
    result = run([tool("promtool"), "check", "rules", str(RULES)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rule_queries())} rules found" in result.stdout


def test_promtool_unit_tests_the_alert_rules() -> None:
    result = run([tool("promtool"), "test", "rules", str(RULE_TESTS)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_rules_cover_the_seed_monitoring_script() -> None:
    rules = dict(rule_queries())
    assert rules["CeleryBrokerDisconnected"].endswith("(celery_connected) == 0")
    assert rules["CeleryWorkersLow"].endswith("(celery_workers) < 2")
    assert rules["CeleryActiveTasksHigh"].endswith("(celery_active_tasks) > 100")
    assert "celery_status_stale" in rules["CeleryStatusStale"]
