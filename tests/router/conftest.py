"""Fixtures for the QueueRouter tests."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence

import pytest

from celerystatus_router import PostgresLegacyQueue, RedisLegacyQueue
from tests.support.router_jobs import Ledger
from tests.support.workers import REPO_ROOT


@pytest.fixture
def ledger(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    """The dedupe store, on a flushed DB of the shared Redis; workers and consumers find it by env."""
    monkeypatch.setenv("CELERY_STATUS_TEST_DEDUPE_URL", redis_url)
    book = Ledger(redis_url)
    yield book
    book.close()


@pytest.fixture
def redis_legacy(redis_url_factory: Callable[[], str]) -> Iterator[RedisLegacyQueue]:
    queue = RedisLegacyQueue.from_url(redis_url_factory(), "legacy-test", lease=1.5, max_attempts=3)
    yield queue
    queue.close()


@pytest.fixture
def postgres_legacy(postgres_dsn: str) -> Iterator[PostgresLegacyQueue]:
    queue = PostgresLegacyQueue(postgres_dsn, f"legacy_test_{uuid.uuid4().hex[:8]}", lease=1.5, max_attempts=3)
    yield queue
    queue.drop()
    queue.close()


class Processes:
    """Subprocesses started by a test; every one is killed at teardown."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def __call__(self, args: Sequence[str]) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        process = subprocess.Popen(
            [sys.executable, "-m", "celerystatus_router", *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.started.append(process)
        return process

    def close(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.wait()


@pytest.fixture
def processes() -> Iterator[Processes]:
    procs = Processes()
    yield procs
    procs.close()
