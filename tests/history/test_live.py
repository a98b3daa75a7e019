"""History against real workers: throughput, restarts, long-running tasks, and the API end to end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from celerystatus import CeleryStatusClient, HistoryState, InvalidArgument
from celerystatus.aio import AsyncCeleryStatusClient
from celerystatus_server.config import Settings
from celerystatus_server.server import StatusServer
from tests.support.holds import Hold
from tests.support.server import running_server
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory

pytestmark = pytest.mark.slow


def _settings(redis_url: str, history_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "broker_url": redis_url,
        "grpc_address": "127.0.0.1:0",
        "http_address": "127.0.0.1:0",
        "refresh_interval": 0.5,
        "history_url": history_url,
        "history_interval": 1.0,
        "show_args": True,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'history.sqlite3'}"


@pytest.fixture
def client() -> Iterator[list[CeleryStatusClient]]:
    opened: list[CeleryStatusClient] = []
    yield opened
    for c in opened:
        c.close()


def _client(server: StatusServer, opened: list[CeleryStatusClient]) -> CeleryStatusClient:
    c = CeleryStatusClient(server.grpc_target, timeout=20)
    opened.append(c)
    return c


def _latest(c: CeleryStatusClient, series: str) -> float | None:
    values = c.get_history("2m", step=1, series=[series]).series[series]
    present = [v for v in values if v is not None]
    return present[-1] if present else None


def _wait_sampled(c: CeleryStatusClient, series: str, expected: float, timeout: float = 60) -> None:
    wait_for(lambda: _latest(c, series) == expected, timeout=timeout, interval=0.3,
             message=f"history never recorded {series} == {expected}")  # fmt: skip


def _settle(c: CeleryStatusClient, total: int, timeout: float = 90) -> None:
    """Every sent task accepted and finished, and a sample taken after that."""
    def done() -> bool:
        status = c.get_status()
        accepted = sum(w.total for w in status.worker_stats.values())
        return accepted == total and status.active_tasks == 0 and status.reserved_tasks == 0

    wait_for(done, timeout=timeout, interval=0.3, message=f"{total} tasks never all finished")
    _wait_sampled(c, "total", float(total), timeout)
    _wait_sampled(c, "active_tasks", 0.0, timeout)


def test_measured_throughput_matches_completed_tasks(
    redis_url: str, worker_factory: WorkerFactory, history_url: str, client: list[CeleryStatusClient]
) -> None:
    tasks = 80
    with running_server(_settings(redis_url, history_url)) as server:
        c = _client(server, client)
        worker_factory("t1")
        worker_factory("t2")
        _wait_sampled(c, "workers", 2.0)
        _wait_sampled(c, "total", 0.0)
        started = time.time()
        for i in range(tasks):
            worker_factory.send("tasks.evaluate_code", f"eval-{i}", "print(1)")
            time.sleep(0.05)  # pacing: a stream over several samples, not one burst (not a synchronisation)
        _settle(c, tasks)
        trends = c.get_trends(time.time() - started + 3)
        assert abs(trends.throughput.count - tasks) <= 0.1 * tasks, trends.throughput
        assert abs(trends.task_throughput["tasks.evaluate_code"].count - tasks) <= 0.1 * tasks
        assert sum(r.count for r in trends.worker_throughput.values()) == trends.throughput.count
        # Spread over several samples: the rate is the count over the sampled span.
        assert 0 < trends.throughput.per_second < tasks


def test_worker_restart_gives_no_negative_or_spiking_rate(
    redis_url: str, worker_factory: WorkerFactory, sqlite_url: str, client: list[CeleryStatusClient]
) -> None:
    with running_server(_settings(redis_url, sqlite_url)) as server:
        c = _client(server, client)
        first = worker_factory("r1")
        _wait_sampled(c, "workers", 1.0)
        _wait_sampled(c, "total", 0.0)
        started = time.time()
        for i in range(30):
            worker_factory.send("tasks.evaluate_code", f"eval-{i}")
        _settle(c, 30)
        first.stop(timeout=10)
        second = worker_factory("r1")  # same hostname, new process, counters from zero
        assert second.pid != first.pid
        wait_for(lambda: (s := c.get_status()).workers == 1 and all(w.total == 0 for w in s.worker_stats.values()),
                 timeout=60, interval=0.3)  # fmt: skip
        for i in range(10):
            worker_factory.send("tasks.evaluate_code", f"eval-b{i}")
        _settle(c, 10)
        trends = c.get_trends(time.time() - started + 3)
        # 30 + 10 tasks; a negative delta would give 20, counting the old total again 70.
        assert 36 <= trends.throughput.count <= 44, trends.throughput
        worker = trends.workers[second.hostname]
        assert worker.restarts >= 1
        # Step by step, the accepted-task count never goes backwards in the rate.
        history = c.get_history(started - 3, step=1, series=[f"worker:{second.hostname}:total"])
        totals = [v for v in history.series[f"worker:{second.hostname}:total"] if v is not None]
        assert max(totals) == 30 and totals[-1] == 10


def test_task_far_beyond_its_usual_runtime_is_flagged(
    redis_url: str, worker_factory: WorkerFactory, sqlite_url: str, client: list[CeleryStatusClient]
) -> None:
    with running_server(_settings(redis_url, sqlite_url)) as server:
        c = _client(server, client)
        worker_factory("s1")
        _wait_sampled(c, "workers", 1.0)
        for _ in range(4):
            hold = Hold(redis_url)
            sent = worker_factory.send("tests.hold", hold.token)
            wait_for(lambda sent=sent: any(t.id == sent.id for t in c.get_status().tasks()), timeout=30, interval=0.1)
            hold.release()
            wait_for(lambda sent=sent: any(r.id == sent.id for r in c.get_history("5m", include_runs=True).runs),
                     timeout=30, interval=0.3)  # fmt: skip
            hold.close()
        usual = c.get_trends("5m").runtimes["tests.hold"]
        assert usual.count == 4
        stuck = Hold(redis_url)
        sent = worker_factory.send("tests.hold", stuck.token, 120)
        try:
            flagged = wait_for(
                lambda: [t for t in c.get_trends("5m", long_running_floor=0).long_running if t.id == sent.id],
                timeout=60, interval=0.3, message="the stuck task was never flagged",
            )
            assert flagged[0].name == "tests.hold"
            assert flagged[0].threshold_seconds == pytest.approx(3 * c.get_trends("5m").runtimes["tests.hold"].p95)
            assert flagged[0].running_seconds > flagged[0].threshold_seconds
        finally:
            stuck.release()
            stuck.close()


def test_history_api_over_http_grpc_and_sdk(
    redis_url: str, worker_factory: WorkerFactory, sqlite_url: str, client: list[CeleryStatusClient]
) -> None:
    with running_server(_settings(redis_url, sqlite_url)) as server:
        c = _client(server, client)
        worker_factory("h1")
        _wait_sampled(c, "workers", 1.0)
        base = f"http://127.0.0.1:{server.http_port}/api/celery-status"
        with httpx.Client(timeout=20) as http:
            status = http.get(base).json()
            assert status["history"]["state"] == "ok" and status["history"]["dropped"] == 0
            body = http.get(f"{base}/history", params={"since": "2m", "step": "1s", "series": "workers,queue:*"})
            assert body.status_code == 200, body.text
            data = body.json()
            assert len(data["timestamps"]) == len(data["series"]["workers"]) >= 120
            assert "queue:celery" in data["series"] and 1.0 in data["series"]["workers"]
            csv_text = http.get(f"{base}/history", params={"since": "2m", "format": "csv", "series": "workers"}).text
            assert csv_text.splitlines()[0] == "timestamp,workers"
            # Two samples make a trend; the first may be all there is yet.
            wait_for(lambda: http.get(f"{base}/trends", params={"window": "2m"}).json()["samples"] >= 2,
                     timeout=30, interval=0.3)  # fmt: skip
            for params, name in [
                ({"since": "yesterday-ish"}, "since"),
                ({"since": "1h", "until": "2h"}, "until"),
                ({"since": "30d", "step": "1s"}, "step"),
                ({"series": "nope"}, "series"),
                ({"series": "queue:does-not-exist"}, "series"),
                ({"step": "-1m"}, "step"),
            ]:
                answer = http.get(f"{base}/history", params=params)
                assert answer.status_code == 422, (params, answer.text)
                assert answer.json()["error"].startswith(f"{name}:"), answer.json()
            assert http.get(f"{base}/trends", params={"window": "0"}).status_code == 422
            assert http.get(f"{base}/history", params={"bogus": "1"}).status_code == 400
        with pytest.raises(InvalidArgument, match="step:"):
            c.get_history("30d", step=1)
        assert c.get_status().history.state is HistoryState.OK


async def test_async_client_reads_history(redis_url: str, worker_factory: WorkerFactory, sqlite_url: str) -> None:
    import asyncio

    def start() -> tuple[StatusServer, object]:
        ctx = running_server(_settings(redis_url, sqlite_url))
        return ctx.__enter__(), ctx

    server, ctx = await asyncio.to_thread(start)
    try:
        async with AsyncCeleryStatusClient(server.grpc_target, timeout=20) as c:
            async def sampled() -> bool:
                history = await c.get_history("1m", step=1, series="workers,connected")
                return any(v is not None for v in history.series["connected"])

            from tests.support.waiting import wait_for_async

            await wait_for_async(sampled, timeout=30, interval=0.3)
            trends = await c.get_trends("1m")
            assert trends.samples >= 1
    finally:
        await asyncio.to_thread(ctx.__exit__, None, None, None)  # type: ignore[attr-defined]


def test_viewers_get_no_task_arguments_in_runs(
    redis_url: str, worker_factory: WorkerFactory, sqlite_url: str
) -> None:
    from celerystatus_server.security.tokens import hash_token

    viewer, admin = "viewer-token-history-0123", "admin-token-history-3210"
    tokens = f"{hash_token(viewer)}:viewer:dash,{hash_token(admin)}:admin:ops"
    settings = _settings(redis_url, sqlite_url, tokens=tokens, allow_arg_patterns=("eval-*",), show_args=False)
    with running_server(settings) as server:
        worker_factory("v1")
        hold = Hold(redis_url)
        sent = worker_factory.send("tasks.evaluate_code", "eval-77", "secret-code", hold.token)
        with CeleryStatusClient(server.grpc_target, token=admin, timeout=20) as as_admin, \
                CeleryStatusClient(server.grpc_target, token=viewer, timeout=20) as as_viewer:  # fmt: skip
            wait_for(lambda: any(t.id == sent.id for t in as_admin.get_status().tasks()), timeout=60, interval=0.2)
            hold.release()
            wait_for(lambda: any(r.id == sent.id for r in as_admin.get_history("5m", include_runs=True).runs),
                     timeout=30, interval=0.3)  # fmt: skip
            admin_run = next(r for r in as_admin.get_history("5m", include_runs=True).runs if r.id == sent.id)
            viewer_run = next(r for r in as_viewer.get_history("5m", include_runs=True).runs if r.id == sent.id)
            assert "secret-code" in admin_run.args and not admin_run.args_redacted
            # The allow-list, nothing else; withheld values keep their positions.
            assert viewer_run.args[:1] == ("eval-77",) and viewer_run.args_redacted
            assert len(viewer_run.args) == len(admin_run.args) and set(viewer_run.args[1:]) == {"***"}
            assert viewer_run.runtime == admin_run.runtime
            base = f"http://127.0.0.1:{server.http_port}/api/celery-status/history"
            with httpx.Client(timeout=20) as http:
                assert http.get(base, params={"runs": "true"}).status_code == 401
                body = http.get(base, params={"runs": "true", "since": "5m"},
                                headers={"Authorization": f"Bearer {viewer}"}).json()  # fmt: skip
                assert "secret-code" not in str(body["runs"]) and any(r["id"] == sent.id for r in body["runs"])
        hold.close()
