"""Charts from the history API contract (columnar JSON), when the bridge serves it.

A route answering in the history API's shape (``celerystatus.History.to_dict``)
stands in front of the real one on a real bridge, to pin what the page asks for
and how it draws exact values.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import Request

from celerystatus_server.config import Settings
from tests.support.server import running_server
from tests.support.waiting import wait_for

from .conftest import OpenPage

POINTS = 60


@pytest.fixture
def history_bridge(redis_url: str) -> Iterator[tuple[str, list[dict[str, str]]]]:
    # A server that records history (the page asks the history API only then), with a stand-in route below.
    settings = Settings(broker_url=redis_url, grpc_address="127.0.0.1:0", http_address="127.0.0.1:0")
    with running_server(settings) as server:
        asked: list[dict[str, str]] = []
        app = server.bridge._app

        @app.get("/api/celery-status/history")  # type: ignore[untyped-decorator]
        async def history(request: Request) -> dict[str, Any]:
            asked.append(dict(request.query_params))
            now = time.time()
            times = [now - (POINTS - i) * 60 for i in range(POINTS)]
            return {
                "timestamps": times,
                "series": {
                    "workers": [2.0] * POINTS,
                    "active_tasks": [float(i % 5) for i in range(POINTS)],
                    # Not recorded at first: a gap, sent as null (NaN in the store).
                    "queue:celery": [None] * 5 + [3.0] * (POINTS - 5),
                    "total": [10.0 * i for i in range(POINTS)],
                },
                "step": 60,
                "runs": [],
                "runs_truncated": False,
            }

        # Ahead of the bridge's own history route, which would answer 404 (history off).
        app.router.routes.insert(0, app.router.routes.pop())

        yield f"http://127.0.0.1:{server.http_port}", asked


def chart_label(page: Any, metric: str) -> str:
    label: str = page.get_attribute(f'[data-metric="{metric}"] svg', "aria-label") or ""
    return label


HistoryBridge = tuple[str, list[dict[str, str]]]


def test_charts_come_from_the_history_api(history_bridge: HistoryBridge, open_page: OpenPage) -> None:
    url, asked = history_bridge
    page, _ = open_page(url)
    wait_for(lambda: "last 1h" in chart_label(page, "active"), timeout=30, message="chart from history")
    assert page.locator("#history-note").is_hidden()
    first = asked[0]
    assert (first["since"], first["until"], first["step"]) == ("1h", "now", "1m")
    assert {"workers", "active_tasks", "queue:*", "total"} <= set(first["series"].split(","))
    assert "from 0 to 4, now 4" in chart_label(page, "active")
    assert "now 3" in chart_label(page, "waiting")
    # Throughput is derived from the cumulative total: 10 tasks a minute, shown per minute like its card.
    assert "now 10" in chart_label(page, "throughput")

    page.click('.range button[data-range="24h"]')
    wait_for(lambda: any(a["since"] == "24h" for a in asked), timeout=30, message="24 h asked for")
    assert page.get_attribute('.range button[data-range="24h"]', "aria-pressed") == "true"
    wait_for(lambda: "last 24h" in chart_label(page, "workers"), timeout=30)
