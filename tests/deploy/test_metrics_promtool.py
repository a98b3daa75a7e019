"""``promtool check metrics`` on a live scrape, in both exposition formats."""

from __future__ import annotations

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from .conftest import Scrape, run, tool

pytestmark = pytest.mark.slow


def test_promtool_accepts_the_live_scrape(live_scrape: Scrape) -> None:
    result = run([tool("promtool"), "check", "metrics"], stdin=live_scrape.text)
    # promtool prints lint problems and exits 1 on any of them (e.g. a gauge named *_total).
    assert result.returncode == 0, result.stdout + result.stderr
    assert "celery_worker_total{" in live_scrape.text
    assert "# TYPE celery_worker_total counter" in live_scrape.text
    assert "process_resident_memory_bytes" in live_scrape.text
    assert "_created" not in live_scrape.text


def test_the_openmetrics_scrape_parses_strictly(live_scrape: Scrape) -> None:
    # promtool's linter reads the classic format only (it takes OpenMetrics
    # family names for missing help); the OpenMetrics parser is strict instead.
    families = {f.name: f for f in text_string_to_metric_families(live_scrape.openmetrics)}  # type: ignore[no-untyped-call]
    assert families["celery_worker"].type == "counter"
    assert {s.name for s in families["celery_worker"].samples} == {"celery_worker_total"}
    assert families["celery_workers"].samples[0].value == 2


def test_promtool_rejects_a_total_named_gauge() -> None:
    # The check above could pass by promtool accepting anything; it does not.
    bad = "# HELP celery_worker_total x\n# TYPE celery_worker_total gauge\ncelery_worker_total 1\n"
    result = run([tool("promtool"), "check", "metrics"], stdin=bad)
    assert result.returncode != 0
    assert "non-counter metrics should not have \"_total\" suffix" in result.stdout + result.stderr
