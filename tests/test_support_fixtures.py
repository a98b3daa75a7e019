"""The fixtures and helpers other tests rely on."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import redis
from kombu import Connection

from tests.support.redis_dbs import DbPool, parse_db_range
from tests.support.waiting import WaitTimeout, wait_for, wait_for_async


def test_wait_for_returns_the_truthy_value() -> None:
    calls = iter([0, None, "", 42])
    assert wait_for(lambda: next(calls), timeout=5, interval=0.001) == 42


def test_wait_for_times_out_with_message_and_last_value() -> None:
    with pytest.raises(WaitTimeout, match=r"nothing came \(after 0\.2s; last value: \[\]\)"):
        wait_for(list, timeout=0.2, message="nothing came")


def test_wait_for_ignores_only_listed_errors() -> None:
    attempts = iter([ConnectionError("down"), ConnectionError("down"), "up"])

    def probe() -> str:
        value = next(attempts)
        if isinstance(value, Exception):
            raise value
        return value

    assert wait_for(probe, timeout=5, interval=0.001, ignore=(ConnectionError,)) == "up"
    with pytest.raises(ZeroDivisionError):
        wait_for(lambda: 1 / 0, timeout=5)


async def test_wait_for_async_awaits_the_predicate() -> None:
    state = {"n": 0}

    async def ready() -> bool:
        state["n"] += 1
        return state["n"] >= 3

    assert await wait_for_async(ready, timeout=5, interval=0.001)
    with pytest.raises(WaitTimeout, match="still false"):
        await wait_for_async(lambda: False, timeout=0.1, message="still false")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("1-3", [1, 2, 3]), ("4", [4]), ("1,3-4, 3", [1, 3, 4])],
)
def test_parse_db_range(spec: str, expected: list[int]) -> None:
    assert parse_db_range(spec) == expected


@pytest.mark.parametrize("spec", ["", "3-1", "a-b", "-1"])
def test_parse_db_range_rejects_nonsense(spec: str) -> None:
    with pytest.raises(ValueError, match="bad Redis DB range"):
        parse_db_range(spec)


def test_db_pool_hands_out_distinct_numbers_and_says_when_exhausted() -> None:
    pool = DbPool([1, 2])
    first, second = pool.acquire(), pool.acquire()
    assert {first, second} == {1, 2}
    with pytest.raises(RuntimeError, match="CELERY_STATUS_TEST_REDIS_DBS"):
        pool.acquire()
    pool.release(first)
    assert pool.acquire() == first


def test_redis_url_is_a_flushed_db_from_the_allowed_range(
    redis_url: str, redis_url_factory: Callable[[], str]
) -> None:
    allowed = parse_db_range(os.environ.get("CELERY_STATUS_TEST_REDIS_DBS", "1-15"))
    other = redis_url_factory()
    dbs = {int(url.rsplit("/", 1)[1]) for url in (redis_url, other)}
    assert len(dbs) == 2 and dbs <= set(allowed)
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.set("mine", "1")
    assert redis.Redis.from_url(other).get("mine") is None
    client.close()


def test_rabbitmq_url_accepts_a_login(rabbitmq_url: str) -> None:
    with Connection(rabbitmq_url, connect_timeout=3) as conn:
        conn.connect()
        assert conn.connected


def test_postgres_dsn_runs_queries(postgres_dsn: str) -> None:
    import psycopg

    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("test",)
