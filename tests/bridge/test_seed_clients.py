"""The client patterns of the seed document, run unchanged against the real endpoint.

They read keys directly (``status['queue_details']['active']``, ``jq -r
.workers`` fed to ``[ -lt ]``), so any missing key or wrongly typed value
breaks them; that is what these tests guard.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.holds import Hold
from tests.support.waiting import wait_for_async
from tests.support.workers import WorkerFactory

from .conftest import BridgeFactory

MONITOR = Path(__file__).parent / "clients" / "monitor.sh"

_TOOLS_MISSING = not (shutil.which("curl") and shutil.which("jq") and shutil.which("bash"))


@pytest.fixture(autouse=True)
def _shell_tools() -> None:
    # CI installs them (.ci/run); a missing tool there is a failure, not a skip.
    if _TOOLS_MISSING:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("bash, curl and jq are required under CI=true")
        pytest.skip("needs bash, curl and jq (apt-get install jq curl)")


def run_monitor(base_url: str, **env: str) -> str:
    result = subprocess.run(
        ["bash", str(MONITOR)],
        env={**os.environ, "STATUS_URL": base_url, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # bash reports "integer expression expected" on stderr when a field is not a number.
    assert result.stderr == "", result.stderr
    return result.stdout


def find_evaluation(status: dict[str, Any], eval_id: str) -> str:
    """Where an evaluation is, read the way a debugging script reads it."""
    for worker, tasks in status["queue_details"]["active"].items():
        for task in tasks:
            if eval_id in task["args"]:
                runtime = time.time() - task["time_start"]
                return f"running on {worker} for {runtime:.0f}s"
    for worker, tasks in status["queue_details"]["scheduled"].items():
        for task in tasks:
            if eval_id in task["args"]:
                return f"scheduled on {worker}"
    return "not found"


def worker_warnings(status: dict[str, Any]) -> list[str]:
    warnings = []
    for worker, stats in status["worker_stats"].items():
        pool = stats["pool"]
        if len(pool["processes"]) < pool["max-concurrency"]:
            warnings.append(f"{worker}: crashed processes")
        if stats["total"] < 100:
            warnings.append(f"{worker}: low throughput")
    return warnings


async def test_seed_clients_against_live_cluster(
    status_server: Any,
    live_http: httpx.AsyncClient,
    worker_factory: WorkerFactory,
    redis_url: str,
) -> None:
    await asyncio.to_thread(worker_factory, "w1")
    await asyncio.to_thread(worker_factory, "w2")
    eval_id = f"eval-{uuid.uuid4().hex[:8]}"
    hold = Hold(redis_url)
    worker_factory.send("tasks.evaluate_code", eval_id, kwargs={"hold": hold.token})
    later_id = f"eval-{uuid.uuid4().hex[:8]}"
    worker_factory.send("tasks.evaluate_code", later_id, countdown=300)
    try:
        await asyncio.to_thread(hold.wait_started, 30)
        status: dict[str, Any] = {}

        async def ready() -> bool:
            status.clear()
            status.update((await live_http.get("/api/celery-status")).json())
            return status["workers"] == 2 and status["active_tasks"] >= 1 and status["scheduled_tasks"] >= 1

        await wait_for_async(ready, timeout=30)
        assert find_evaluation(status, eval_id).startswith("running on ")
        assert find_evaluation(status, later_id).startswith("scheduled on ")
        assert find_evaluation(status, "eval-missing") == "not found"
        # Fresh workers have run almost nothing: the throughput rule fires, the
        # process-count rule does not (every prefork process is up).
        warnings = worker_warnings(status)
        assert sorted(w.split(":")[1] for w in warnings) == [" low throughput"] * 2

        base = str(live_http.base_url).rstrip("/")
        out = await asyncio.to_thread(run_monitor, base)
        assert "PAGE" not in out and "NOTIFY" not in out
        assert "connected=true workers=2" in out
        out = await asyncio.to_thread(run_monitor, base, MIN_WORKERS="3", MAX_ACTIVE="0")
        assert "NOTIFY: only 2 workers" in out
        assert "active tasks" in out
    finally:
        hold.release()


async def test_monitor_script_when_status_service_is_down(start_bridge: BridgeFactory, dead_target: str) -> None:
    bridge = await start_bridge(dead_target)
    out = await asyncio.to_thread(run_monitor, bridge.url)
    assert "PAGE: broker unreachable" in out
    assert "NOTIFY: only 0 workers" in out
    async with httpx.AsyncClient(base_url=bridge.url, timeout=5) as client:
        status = (await client.get("/api/celery-status")).json()
    assert find_evaluation(status, "eval-1") == "not found"
    assert worker_warnings(status) == []
