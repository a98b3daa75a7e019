"""Fixtures for integration tests against real Redis, RabbitMQ, PostgreSQL and workers.

Environment:
  CELERY_STATUS_TEST_REDIS_URL      Redis to use (must answer); default: 127.0.0.1:6379,
                                    or a private redis-server when nothing answers there
  CELERY_STATUS_TEST_REDIS_DBS      DB numbers this run may flush, e.g. "1-3" (default "1-15")
  CELERY_STATUS_TEST_RABBITMQ_URL   default amqp://guest:guest@127.0.0.1:5672//
  CELERY_STATUS_TEST_POSTGRES_DSN   default: postgresql://127.0.0.1:5432/test as postgres or root
  CI=true                           a missing service fails the test instead of skipping it
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from celerystatus_server.local_redis import (
    LocalRedis,
    RedisNotFoundError,
    RedisProcess,
    RedisStartError,
    ensure_redis,
)
from tests.support.redis_dbs import DbPool, parse_db_range
from tests.support.services import (
    amqp_reachable,
    ci,
    postgres_dsn_that_works,
    redis_reachable,
)
from tests.support.workers import WorkerFactory

# Celery lets this variable override every app's broker, the tests' own included.
os.environ.pop("CELERY_BROKER_URL", None)
# Servers started by tests keep their files (alert state) in a throwaway data directory,
# never in the user's own ~/.local/share/celery-status.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="celery-status-test-data-")

DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
POSTGRES_CANDIDATES = [
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
]


def service_unavailable(reason: str) -> None:
    """Fails in CI (the service is part of the CI contract), skips elsewhere."""
    if ci():
        pytest.fail(f"{reason} (CI=true: required)", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Marked by what they use, so `-m "not rabbitmq"` works without decorating each test.
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "rabbitmq_url" in names:
            item.add_marker(pytest.mark.rabbitmq)
        if "postgres_dsn" in names:
            item.add_marker(pytest.mark.postgres)


def with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def shared_redis() -> Iterator[LocalRedis | None]:
    """The Redis the whole run shares (None when there is none to be had)."""
    explicit = os.environ.get("CELERY_STATUS_TEST_REDIS_URL")
    if explicit:
        yield LocalRedis(explicit) if redis_reachable(explicit) else None
        return
    try:
        local = ensure_redis()
    except (RedisNotFoundError, RedisStartError):
        yield None
        return
    with local:
        yield local


@pytest.fixture(scope="session")
def redis_db_pool() -> DbPool:
    return DbPool(parse_db_range(os.environ.get("CELERY_STATUS_TEST_REDIS_DBS", "1-15")))


@pytest.fixture
def redis_url_factory(
    shared_redis: LocalRedis | None, redis_db_pool: DbPool
) -> Iterator[Callable[[], str]]:
    """Each call returns the URL of another flushed DB, returned to the pool after the test."""
    if shared_redis is None:
        service_unavailable("no Redis reachable and none could be started")
    assert shared_redis is not None
    taken: list[tuple[int, redis.Redis]] = []

    def take() -> str:
        db = redis_db_pool.acquire()
        url = with_db(shared_redis.url, db)
        client = redis.Redis.from_url(url)
        client.flushdb()
        taken.append((db, client))
        return url

    yield take
    for db, client in taken:
        try:
            client.flushdb()
        finally:
            client.close()
            redis_db_pool.release(db)


@pytest.fixture
def redis_url(redis_url_factory: Callable[[], str]) -> str:
    """A flushed DB on the shared Redis, for this test alone."""
    return redis_url_factory()


@pytest.fixture
def redis_process() -> Iterator[RedisProcess]:
    """A private redis-server for tests that stop, kill or freeze their broker."""
    try:
        process = RedisProcess()
        process.start()
    except (RedisNotFoundError, RedisStartError) as exc:
        service_unavailable(f"cannot run a private redis-server: {exc}")
        raise
    try:
        yield process
    finally:
        process.close()


@pytest.fixture
def worker_factory(redis_url: str, tmp_path: Path) -> Iterator[WorkerFactory]:
    """Starts real ``celery worker`` processes on ``redis_url``; all are killed at teardown."""
    factory = WorkerFactory(redis_url, tmp_path / "workers")
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    url = os.environ.get("CELERY_STATUS_TEST_RABBITMQ_URL", DEFAULT_RABBITMQ_URL)
    reason = amqp_reachable(url)
    if reason is not None:
        service_unavailable(f"RabbitMQ unreachable at {url}: {reason}")
    return url


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    explicit = os.environ.get("CELERY_STATUS_TEST_POSTGRES_DSN")
    dsn, error = postgres_dsn_that_works([explicit] if explicit else POSTGRES_CANDIDATES)
    if dsn is None:
        service_unavailable(f"PostgreSQL unreachable: {error}")
    assert dsn is not None
    return dsn
