"""``python -m celerystatus_router``: drain and stats against real Redis queues."""

from __future__ import annotations

import json

import redis

from celerystatus_router import Job, RedisLegacyQueue
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
