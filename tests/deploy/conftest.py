"""A live scrape of a real status server with real workers, and the deploy tools that check it.

One server and two workers per module: promtool, the dashboard and the alert
rules are all checked against what a real ``/metrics`` serves.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from celerystatus_server.config import Settings
from celerystatus_server.local_redis import LocalRedis
from tests.conftest import service_unavailable, with_db
from tests.support.redis_dbs import DbPool
from tests.support.server import running_server
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
TOOLS_VENV = REPO_ROOT / ".ci" / ".cache" / "deploy-tools"


@dataclass(frozen=True)
class Scrape:
    text: str  # the classic text format
    openmetrics: str


def tool(name: str, *, tools_venv_only: bool = False) -> str:
    """A command-line tool of the deploy checks (fails under CI=true when missing).

    The Kubernetes, Dockerfile and CRD checkers live in a venv of their own
    (.ci/run makes it) so that their dependencies stay out of the project's.
    """
    found = TOOLS_VENV / "bin" / name
    if found.exists():
        return str(found)
    path = None if tools_venv_only else shutil.which(name)
    if path is None:
        service_unavailable(f"{name} not installed (.ci/run installs it in {TOOLS_VENV})")
    assert path is not None
    return path


def run(command: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def live_scrape(shared_redis: LocalRedis | None, redis_db_pool: DbPool) -> Iterator[Scrape]:
    """``/metrics`` of a real server watching two real workers that have run tasks."""
    if shared_redis is None:
        service_unavailable("no Redis reachable and none could be started")
    assert shared_redis is not None
    db = redis_db_pool.acquire()
    url = with_db(shared_redis.url, db)
    client = redis.Redis.from_url(url)
    client.flushdb()
    factory = WorkerFactory(url, Path(tempfile.mkdtemp(prefix="celery-status-deploy-")))
    try:
        factory("w1")
        factory("w2")
        settings = Settings(
            broker_url=url, grpc_address="127.0.0.1:0", http_address="127.0.0.1:0", refresh_interval=0.5
        )
        with running_server(settings) as server, httpx.Client(
            base_url=f"http://127.0.0.1:{server.http_port}", timeout=10
        ) as http:
            for _ in range(3):
                factory.send("tasks.cleanup_old_evaluations")

            def counted() -> str:
                text = http.get("/metrics").text
                done = "celery_workers 2.0" in text and 'celery_worker_total{worker="w1@' in text
                return text if done and "celery_inspection_duration_seconds_count" in text else ""

            text = wait_for(counted, timeout=60, message="a scrape with two workers")
            openmetrics = http.get("/metrics", headers={"Accept": OPENMETRICS}).text
            yield Scrape(text=text, openmetrics=openmetrics)
    finally:
        factory.close()
        client.flushdb()
        client.close()
        redis_db_pool.release(db)
