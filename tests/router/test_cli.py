"""``python -m celerystatus_router``: drain and stats against real Redis queues."""

from __future__ import annotations

import json
import uuid

import pytest
import redis

from celerystatus_router import Job, PostgresLegacyQueue, RedisLegacyQueue
from celerystatus_server.local_redis import RedisProcess
from tests.router.conftest import Processes


def test_drain_moves_jobs_with_their_ids(
    redis_legacy: RedisLegacyQueue, redis_process: RedisProcess, processes: Processes
) -> None:
    assert redis_legacy.url is not None
    for i in range(5):
        redis_legacy.push(Job.create("tests.record_job", (i,), job_id=f"cli-{i}"))
    where = ["--redis", redis_legacy.url, "--queue", redis_legacy.name]

    stats = processes(["stats", *where])
    out, _ = stats.communicate(timeout=30)
    assert json.loads(out) == {"pending": 5, "processing": 0, "dead": 0}

    drain = processes(["drain", *where, "--broker", redis_process.url(0)])
    out, err = drain.communicate(timeout=60)
    assert drain.returncode == 0, err.decode()
    assert json.loads(out)["moved"] == 5

    broker = redis.Redis.from_url(redis_process.url(0))
    ids = sorted(json.loads(m)["headers"]["id"] for m in broker.lrange("celery", 0, -1))
    broker.close()
    assert ids == [f"cli-{i}" for i in range(5)]
    assert redis_legacy.job_ids() == {"pending": [], "processing": [], "dead": []}


def test_drain_refuses_an_unreachable_broker(redis_legacy: RedisLegacyQueue, processes: Processes) -> None:
    assert redis_legacy.url is not None
    redis_legacy.push(Job.create("tests.record_job", job_id="stays"))
    drain = processes(["drain", "--redis", redis_legacy.url, "--queue", redis_legacy.name,
                       "--broker", "redis://127.0.0.1:1/0", "--send-timeout", "0.3"])  # fmt: skip
    out, _ = drain.communicate(timeout=60)
    assert drain.returncode == 1
    assert json.loads(out)["moved"] == 0
    assert redis_legacy.job_ids()["pending"] == ["stays"]


def test_bad_handler_is_a_usage_error(processes: Processes) -> None:
    consume = processes(["consume", "--redis", "redis://127.0.0.1:1/0", "--handler", "no_such_module:fn"])
    _, err = consume.communicate(timeout=30)
    assert consume.returncode == 2
    assert b"cannot load 'no_such_module:fn'" in err


def test_postgres_without_queue_uses_a_valid_default_table(postgres_dsn: str, processes: Processes) -> None:
    import psycopg

    # Before: the Redis default "legacy-jobs" was used as the table name and refused, with a traceback.
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        existed = conn.execute("SELECT to_regclass('legacy_jobs')").fetchone() != (None,)
        try:
            stats = processes(["stats", "--postgres", postgres_dsn])
            out, err = stats.communicate(timeout=30)
            assert stats.returncode == 0, err.decode()
            assert set(json.loads(out)) == {"pending", "processing", "dead"}
            assert conn.execute("SELECT to_regclass('legacy_jobs')").fetchone() != (None,)
        finally:
            if not existed:
                conn.execute("DROP TABLE IF EXISTS legacy_jobs")


def test_postgres_table_names_are_quoted(postgres_dsn: str, processes: Processes) -> None:
    import psycopg

    name = f"legacy-jobs {uuid.uuid4().hex[:6]}; DROP TABLE x"
    queue = PostgresLegacyQueue(postgres_dsn, name)
    try:
        queue.push(Job.create("tests.record_job", job_id="quoted-1"))
        stats = processes(["stats", "--postgres", postgres_dsn, "--queue", name])
        out, err = stats.communicate(timeout=30)
        assert stats.returncode == 0, err.decode()
        assert json.loads(out)["pending"] == 1
    finally:
        queue.drop()
        queue.close()
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT to_regclass(%s)", (f'"{name}"',)).fetchone() == (None,)


@pytest.mark.parametrize("command", [["stats"], ["consume", "--handler", "json:dumps", "--exit-when-idle"]])
@pytest.mark.parametrize("where", [["--redis", "redis://127.0.0.1:1/0"], ["--postgres", "postgresql://127.0.0.1:1/test"]])
def test_unreachable_legacy_queue_is_one_line_and_exit_3(
    processes: Processes, command: list[str], where: list[str]
) -> None:
    process = processes([command[0], *where, *command[1:]])
    _, err = process.communicate(timeout=60)
    assert process.returncode == 3
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in lines[0], err.decode()


def test_invalid_table_name_is_exit_2(postgres_dsn: str, processes: Processes) -> None:
    process = processes(["stats", "--postgres", postgres_dsn, "--queue", "x" * 60])
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert err.decode().strip().splitlines() == [
        f"error: table name must be 1 to 57 bytes without NUL, got '{'x' * 60}'"
    ]
