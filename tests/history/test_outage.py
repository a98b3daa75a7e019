"""PostgreSQL stopped mid-run: snapshots and requests unaffected, drops counted, recovery after restart."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from celerystatus import CeleryStatusClient, HistoryState
from celerystatus_server.config import Settings
from tests.conftest import service_unavailable
from tests.support.postgres import PostgresUnavailable, PrivatePostgres
from tests.support.server import running_server
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory

pytestmark = pytest.mark.slow


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    try:
        pg = PrivatePostgres().init()
        pg.start()
    except PostgresUnavailable as exc:
        service_unavailable(f"cannot run a private PostgreSQL: {exc}")
        raise
    try:
        yield pg
    finally:
        pg.close()


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return -1.0


def test_postgres_stopped_mid_run(
    redis_url: str, worker_factory: WorkerFactory, private_postgres: PrivatePostgres
) -> None:
    settings = Settings(
        broker_url=redis_url,
        grpc_address="127.0.0.1:0",
        http_address="127.0.0.1:0",
        refresh_interval=0.5,
        history_url=private_postgres.url,
        history_interval=1.0,
        history_buffer=5,
    )
    worker_factory("p1")
    with running_server(settings) as server, CeleryStatusClient(server.grpc_target, timeout=10) as client, \
            httpx.Client(timeout=5) as http:  # fmt: skip
        status_url = f"http://127.0.0.1:{server.http_port}/api/celery-status"
        wait_for(lambda: client.get_status().workers == 1, timeout=60)
        wait_for(lambda: client.get_status().history.last_write is not None, timeout=30)
        assert client.get_status().history.state is HistoryState.OK

        private_postgres.stop()
        rounds = client.get_status().inspection.round
        degraded = wait_for(
            lambda: (s := client.get_status()).history.state is HistoryState.DEGRADED and s,
            timeout=60, interval=0.2, message="history never reported degraded",
        )
        assert degraded.history.error
        # The buffer holds 5 items; past that, drops are counted.
        wait_for(lambda: client.get_status().history.dropped > 0, timeout=60, interval=0.2)
        # Snapshots keep coming and requests keep being answered while the database is down.
        wait_for(lambda: client.get_status().inspection.round >= rounds + 5, timeout=30, interval=0.2)
        body = http.get(status_url)  # the client's 5 s timeout would fail a request stuck on the database
        assert body.status_code == 200 and body.json()["workers"] == 1
        assert body.json()["history"]["state"] == "degraded"
        metrics_url = f"http://127.0.0.1:{server.http_port}/metrics"
        wait_for(lambda: _metric(http.get(metrics_url).text, "celery_status_history_dropped_total") > 0, timeout=30)
        assert _metric(http.get(metrics_url).text, "celery_status_history_degraded") == 1.0
        history = http.get(f"{status_url}/history", params={"since": "1m"})
        assert history.status_code == 503 and "history" in history.json()["error"]

        private_postgres.start()
        recovered = wait_for(
            lambda: (s := client.get_status()).history.state is HistoryState.OK and s.history.buffered == 0 and s,
            timeout=90, interval=0.3, message="history never recovered",
        )
        dropped = recovered.history.dropped
        assert dropped > 0
        before = recovered.history.last_write
        wait_for(lambda: (client.get_status().history.last_write or 0) > (before or 0), timeout=30, interval=0.2)
        answer = client.get_history("2m", step=1, series=["workers"])
        assert 1.0 in answer.series["workers"]
