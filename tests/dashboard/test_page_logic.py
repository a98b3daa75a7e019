"""The page's pure logic (banner state, throughput, long-running flags), run in the real browser.

The modules are imported from the bridge exactly as the page imports them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from celerystatus_server.config import Settings
from tests.support.server import running_server

from .conftest import OpenPage


@pytest.fixture
def page(open_page: OpenPage) -> Iterator[Any]:
    settings = Settings(enabled=False, grpc_address="127.0.0.1:0", http_address="127.0.0.1:0")
    with running_server(settings) as server:
        opened, _ = open_page(f"http://127.0.0.1:{server.http_port}/")
        opened.wait_for_function("() => document.querySelector('#banner').dataset.state === 'disabled'")
        yield opened


def test_banner_states(page: Any) -> None:
    states = page.evaluate(
        """async () => {
        const { bannerState } = await import('/ui/js/banner.js');
        const ok = { enabled: true, connected: true, stale: false, age: 0.5, inspection: { refresh_interval: 2 } };
        const at = (snapshot, { transport = 'websocket', since = 0, authNeeded = false } = {}) =>
            bannerState({ snapshot, receivedAt: 0, transport, nowMs: since * 1000, authNeeded }).state;
        return {
            connected: at(ok),
            brokerDown: at({ ...ok, connected: false, stale: true, error: 'broker unreachable' }),
            serverStale: at({ ...ok, stale: true }),
            silentTooLong: at(ok, { since: 11 }),
            notYetStale: at(ok, { since: 5 }),
            disabled: at({ ...ok, enabled: false }),
            unreachable: at({ ...ok, connected: false, error: 'status service unavailable' }),
            offlineOld: at(ok, { transport: 'offline', since: 30 }),
            connecting: at(null),
            auth: at(ok, { authNeeded: true }),
        };
    }"""
    )
    assert states == {
        "connected": "connected",
        "brokerDown": "broker-down",
        "serverStale": "stale",
        "silentTooLong": "stale",
        "notYetStale": "connected",
        "disabled": "disabled",
        "unreachable": "unreachable",
        "offlineOld": "unreachable",
        "connecting": "connecting",
        "auth": "auth",
    }


def test_throughput_treats_a_worker_restart_as_a_counter_reset(page: Any) -> None:
    rate = page.evaluate(
        """async () => {
        const { ThroughputMeter } = await import('/ui/js/history.js');
        const meter = new ThroughputMeter(60);
        const snap = (total) => ({ connected: true, stale: false, worker_stats: { w1: { total } } });
        meter.update(snap(100), 0);
        meter.update(snap(110), 10);   // +10
        meter.update(snap(4), 20);     // restarted: +4, not -106
        meter.update(snap(10), 30);    // +6
        return [meter.rate(30), meter.rate(30, 'w1'), meter.rate(30, 'other')];
    }"""
    )
    assert rate == [20 / 30, 20 / 30, 0]


def test_long_running_against_the_usual_runtime(page: Any) -> None:
    flags = page.evaluate(
        """async () => {
        const { Runtimes } = await import('/ui/js/tasks.js');
        const r = new Runtimes();
        const task = (id, name) => ({ id, name });
        // Five runs of "quick" seen ending, 10 s each: p95 10 s, flagged past max(3 x 10, 60) = 60 s.
        for (let i = 0; i < 5; i++) {
            const run = { id: `q${i}`, name: 'quick', time_start: 100 };
            r.observe({ connected: true, queue_details: { active: { w: [run] } } }, 110);
            r.observe({ connected: true, queue_details: { active: { w: [] } } }, 111);
        }
        const out = {
            usual: r.usual('quick'),
            quick50: r.longRunning(task('a', 'quick'), 50),
            quick61: r.longRunning(task('a', 'quick'), 61),
            unknown200: r.longRunning(task('b', 'slow'), 200),
            unknown301: r.longRunning(task('b', 'slow'), 301),
        };
        r.fromTrends({ runtimes: [{ name: 'slow', p95: 100 }], long_running: [{ id: 'flagged' }] });
        out.trend250 = r.longRunning(task('c', 'slow'), 250);
        out.trend301 = r.longRunning(task('c', 'slow'), 301);
        out.server = r.longRunning(task('flagged', 'other'), 1);
        return out;
    }"""
    )
    assert flags["usual"] == 10
    assert flags["quick50"] is None and "usual p95 10s" in flags["quick61"]
    assert flags["unknown200"] is None and flags["unknown301"]
    assert flags["trend250"] is None and "usual p95 1m 40s" in flags["trend301"]
    assert flags["server"] == "long-running"
