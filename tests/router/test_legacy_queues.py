"""Both legacy adapters against the real Redis and PostgreSQL: semantics and crash recovery."""

from __future__ import annotations

import signal

import pytest

from celerystatus_router import Job, LegacyConsumer, LegacyQueue, PostgresLegacyQueue, RedisLegacyQueue
from tests.router.conftest import Processes
from tests.support.router_jobs import Ledger, record_legacy
from tests.support.waiting import wait_for


@pytest.fixture(params=["redis", "postgres"])
def queue(request: pytest.FixtureRequest) -> LegacyQueue:
    name = "redis_legacy" if request.param == "redis" else "postgres_legacy"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


def test_push_claim_ack_in_order(queue: LegacyQueue) -> None:
    jobs = [Job.create("tasks.evaluate_code", (f"e{i}",), job_id=f"job-{i}") for i in range(3)]
    for job in jobs:
        queue.push(job)
    assert queue.pending() == 3
    first = queue.claim()
    assert first is not None and first.job == jobs[0] and first.attempts == 1
    assert queue.ack(first)
    assert not queue.ack(first), "a second ack finds nothing"
    rest = [queue.claim(), queue.claim()]
    assert [c.job.id for c in rest if c] == ["job-1", "job-2"]
    assert queue.claim() is None


def test_nack_retries_then_dead_letters(queue: LegacyQueue) -> None:
    queue.push(Job.create("tasks.evaluate_code", job_id="poison"))
    for attempt in (1, 2, 3):
        claim = queue.claim()
        assert claim is not None and claim.attempts == attempt
        queue.nack(claim, "boom")
    assert queue.claim() is None
    dead = queue.dead()  # type: ignore[attr-defined]
    assert [job.id for job in dead] == ["poison"]


def test_expired_lease_is_recovered_and_the_stale_claim_cannot_ack(queue: LegacyQueue) -> None:
    queue.push(Job.create("tasks.evaluate_code", job_id="slow"))
    stale = queue.claim()
    assert stale is not None
    assert queue.claim() is None
    # Redis needs recover() to requeue; PostgreSQL's claim takes expired rows itself.
    fresh = wait_for(lambda: (queue.recover(), queue.claim())[1], timeout=10, interval=0.2)
    assert fresh.job.id == "slow" and fresh.attempts == 2
    assert not queue.ack(stale)
    assert queue.ack(fresh)


def test_redis_claim_blocks_until_a_push(redis_legacy: RedisLegacyQueue) -> None:
    assert redis_legacy.claim(timeout=0.2) is None
    redis_legacy.push(Job.create("t", job_id="late"))
    claim = redis_legacy.claim(timeout=1.0)
    assert claim is not None and claim.job.id == "late"


@pytest.mark.parametrize("backend", ["redis", "postgres"])
def test_crashed_consumer_job_is_recovered(
    backend: str, request: pytest.FixtureRequest, ledger: Ledger, processes: Processes
) -> None:
    queue: RedisLegacyQueue | PostgresLegacyQueue = request.getfixturevalue(f"{backend}_legacy")
    if isinstance(queue, RedisLegacyQueue):
        assert queue.url is not None
        where = ["--redis", queue.url, "--queue", queue.name]
    else:
        where = ["--postgres", queue.dsn, "--queue", queue.table]
    common = [*where, "--lease", "1.5", "--max-attempts", "3", "--recover-interval", "0.3", "--claim-timeout", "0.3"]
    queue.push(Job.create("tests.record_job", job_id="crash-me"))
    queue.push(Job.create("tests.record_job", job_id="after"))

    doomed = processes(["consume", *common, "--handler", "tests.support.router_jobs:crash_after_start"])
    wait_for(lambda: "crash-me" in ledger.started(), timeout=30, message="consumer never started the job")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    assert "crash-me" in queue.job_ids()["processing"]

    survivor = processes(["consume", *common, "--handler", "tests.support.router_jobs:record_legacy"])
    wait_for(lambda: {"crash-me", "after"} <= set(ledger.effects()), timeout=30, message="job not recovered")
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(15) == 0
    assert ledger.effects() == {"crash-me": 1, "after": 1}
    assert queue.job_ids() == {"pending": [], "processing": [], "dead": []}


def test_consumer_loop_in_process(redis_legacy: RedisLegacyQueue, ledger: Ledger) -> None:
    for i in range(5):
        redis_legacy.push(Job.create("tests.record_job", job_id=f"j{i}"))
    redis_legacy.push(Job.create("tests.record_job", job_id="j0"))  # a duplicate delivery
    consumer = LegacyConsumer(redis_legacy, record_legacy, claim_timeout=0.1)
    assert consumer.run(exit_when_idle=True) == 6
    assert ledger.effects() == {f"j{i}": 1 for i in range(5)}
    assert ledger.deliveries()["j0"] == 2


def test_claim_with_commits_claim_and_effect_together(redis_url: str) -> None:
    import redis as redis_lib

    from celerystatus_router import RedisDedupe

    client = redis_lib.Redis.from_url(redis_url)
    dedupe = RedisDedupe(client, "claim-test")

    def effect(pipe: redis_lib.client.Pipeline) -> None:
        pipe.incr("claim-test:effect")

    assert dedupe.claim_with("job-1", effect) is True
    assert dedupe.claim_with("job-1", effect) is False
    assert int(client.get("claim-test:effect") or 0) == 1
    assert dedupe.seen("job-1") and not dedupe.seen("job-2")
    client.close()
