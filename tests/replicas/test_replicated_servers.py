"""Three real ``celery-status serve`` processes on one Redis broker with a real worker.

Coordination through Redis (a private redis-server where it is stopped) and through PostgreSQL
(a unique row of the shared server; a private pg_ctl cluster where it is stopped).
"""

from __future__ import annotations

import itertools
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus_server.local_redis import RedisProcess
from tests.support.postgres_process import PostgresProcess, find_pg_bin
from tests.support.replicas import BrokerTally, ServeProcess, StreamRecord, leader_of, start_replicas
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory

from .conftest import unique_key

pytestmark = pytest.mark.slow

INTERVAL = 0.5
TTL = 2.0
NAMES = ("alpha", "bravo", "charlie")


def serve_args(broker: str, coordination: str, key: str, *, interval: float = INTERVAL, ttl: float = TTL) -> list[str]:
    return [
        "--broker", broker,
        "--coordination-url", coordination,
        "--coordination-key", key,
        "--refresh-interval", str(interval),
        "--coordination-ttl", str(ttl),
        # No periodic full broadcast: every round is the same targeted one, so counts compare.
        "--discovery-interval", "3600",
        # These tests poll every replica many times a second; the request budget is tested elsewhere.
        "--rate-limit", "0",
    ]


@pytest.fixture
def broker(worker_factory: WorkerFactory) -> str:
    worker_factory("solo")
    return worker_factory.broker_url


@pytest.fixture
def replica_set(tmp_path: Path) -> Iterator[Callable[..., list[ServeProcess]]]:
    started: list[ServeProcess] = []

    def start(names: tuple[str, ...], args: list[str], http: bool = False) -> list[ServeProcess]:
        replicas = start_replicas(names, args, tmp_path / "serve", http=http)
        started.extend(replicas)
        return replicas

    yield start
    for replica in started:
        replica.close()


def observation(status: pb.CeleryStatus) -> tuple[int, int, str]:
    return status.observed_at.ToNanoseconds(), status.workers, status.replica.observed_by


def same_observation(replicas: list[ServeProcess]) -> tuple[int, int, str] | None:
    """The one observation every replica serves, once it includes the test's worker."""
    seen = {observation(r.status()) for r in replicas}
    return seen.pop() if len(seen) == 1 and next(iter(seen))[1] == 1 else None


def test_three_replicas_serve_the_leaders_observation_over_grpc_json_and_metrics(
    broker: str, coordination_url: str, replica_set: Callable[..., list[ServeProcess]]
) -> None:
    replicas = replica_set(NAMES, serve_args(broker, coordination_url, unique_key()), http=True)
    leader = leader_of(replicas)
    followers = [r for r in replicas if r is not leader]

    _, workers, observed_by = wait_for(
        lambda: same_observation(replicas),
        timeout=30, interval=0.02, ignore=(grpc.RpcError,), message="replicas disagree",
    )
    assert (workers, observed_by) == (1, leader.name)
    for replica in replicas:
        status = replica.status()
        assert status.replica.served_by == replica.name
        expected = pb.REPLICA_ROLE_LEADER if replica is leader else pb.REPLICA_ROLE_FOLLOWER
        assert status.replica.role == expected and not status.replica.degraded
        assert status.replica.term >= 1

    def json_and_metrics(replica: ServeProcess) -> tuple[dict[str, object], str]:
        base = f"http://127.0.0.1:{replica.http_port}"
        return httpx.get(base + "/api/celery-status").json(), httpx.get(base + "/metrics").text

    def bridges_agree() -> bool:
        documents = [json_and_metrics(r)[0] for r in replicas]
        return len({(d["observed_at"], d["workers"]) for d in documents}) == 1

    wait_for(bridges_agree, timeout=20, interval=0.02, ignore=(httpx.HTTPError,), message="bridges disagree")
    document, metrics = json_and_metrics(followers[0])
    replica_info = document["replica"]
    assert isinstance(replica_info, dict)
    assert replica_info["observed_by"] == leader.name and replica_info["role"] == "follower"
    assert "celery_status_replica_leader 0.0" in metrics and "celery_status_replica_degraded 0.0" in metrics
    assert "celery_status_replica_leader 1.0" in json_and_metrics(leader)[1]


def test_a_fresh_snapshot_asked_of_a_follower_is_one_round_of_the_leader(
    broker: str, coordination_url: str, replica_set: Callable[..., list[ServeProcess]]
) -> None:
    # A long interval: only the request can explain a new round.
    args = [*serve_args(broker, coordination_url, unique_key(), interval=60, ttl=10), "--fresh-rate-limit", "0"]
    replicas = replica_set(NAMES, args)
    leader = leader_of(replicas)
    followers = [r for r in replicas if r is not leader]
    # The leader's first round may precede the worker's first heartbeat; the next is a minute away.
    wait_for(lambda: leader.status(timeout=10, max_age=0.1).workers == 1, timeout=30)
    wait_for(lambda: same_observation(replicas), timeout=30, ignore=(grpc.RpcError,))
    before = leader.status()
    wait_for(lambda: all(f.status().age.ToNanoseconds() > 0.2e9 for f in followers), timeout=10)
    answers = [follower.status(timeout=10, max_age=0.1) for follower in followers for _ in range(2)]
    for answer in answers:
        assert answer.replica.observed_by == leader.name
        assert answer.observed_at.ToNanoseconds() > before.observed_at.ToNanoseconds(), "not a fresh round"
        assert answer.workers == 1
    after = leader.status()
    # Four requests from two replicas: merged by the leader's collector (at most one round per floor).
    assert 1 <= after.inspection.round - before.inspection.round <= len(answers)
    assert len({a.observed_at.ToNanoseconds() for a in answers}) < len(answers)


def test_broadcasts_on_the_broker_do_not_grow_with_replicas(
    broker: str, redis_url_factory: Callable[[], str], replica_set: Callable[..., list[ServeProcess]]
) -> None:
    args = serve_args(broker, redis_url_factory(), unique_key())
    tally = BrokerTally(broker)
    try:
        (first,) = replica_set(NAMES[:1], args)
        assert leader_of([first]) is first
        wait_for(lambda: first.status().workers == 1, timeout=30)
        alone = tally.window(12)
        others = replica_set(NAMES[1:], args)
        wait_for(lambda: same_observation([first, *others]), timeout=30, ignore=(grpc.RpcError,))
        three = tally.window(12)
    finally:
        tally.close()
    assert alone["broadcasts"] > 0
    assert 0.9 * alone["broadcasts"] <= three["broadcasts"] <= 1.1 * alone["broadcasts"], (alone, three)
    assert three["replies"] <= 1.1 * alone["replies"], (alone, three)
    assert three["commands"] <= 1.1 * alone["commands"], (alone, three)


def fresh_gaps(record: StreamRecord, since: float) -> list[float]:
    """Seconds between consecutive new observations received after *since* (the first one included)."""
    times = [at for at, _ in record.fresh()]
    before = [t for t in times if t <= since]
    after = [t for t in times if t > since]
    points = before[-1:] + after
    return [b - a for a, b in itertools.pairwise(points)]


def test_sigkill_of_the_leader_fails_over_within_the_ttl(
    broker: str, coordination_url: str, replica_set: Callable[..., list[ServeProcess]]
) -> None:
    replicas = replica_set(NAMES, serve_args(broker, coordination_url, unique_key()))
    leader = leader_of(replicas)
    survivors = [r for r in replicas if r is not leader]
    wait_for(lambda: same_observation(replicas), timeout=30, ignore=(grpc.RpcError,))
    records = {r.name: r.watch() for r in survivors}
    wait_for(lambda: all(len(rec.fresh()) >= 2 for rec in records.values()), timeout=20)

    killed_at = time.monotonic()
    leader.kill()
    new_leader = leader_of(survivors, timeout=30)
    for record in records.values():
        wait_for(
            lambda record=record: any(s.replica.observed_by == new_leader.name for _, s in record.fresh()),
            timeout=30, message="followers never served the new leader's snapshot",
        )
    for name, record in records.items():
        # The stream never pauses longer than the TTL + one interval: until the new leader
        # publishes, the follower sends the last snapshot again, marked stale.
        times = [at for at, _ in record.messages]
        silences = [b - a for a, b in itertools.pairwise(times) if b > killed_at]
        assert silences and max(silences) <= TTL + INTERVAL, (name, silences, new_leader.log())
        assert any(s.stale and s.replica.observed_by == leader.name for _, s in record.messages), name
        # New observations: the last round before the kill (one interval) + the rest of the lease
        # (at most the TTL) + the new leader's first round, which on a loaded 2-core machine gets 1 s.
        gaps = fresh_gaps(record, killed_at)
        assert gaps and max(gaps) <= TTL + INTERVAL + 1.0, (name, gaps)
        late = [s for at, s in record.messages if at > killed_at and s.replica.observed_by == leader.name]
        assert all(s.observed_at.ToNanoseconds() <= record.fresh()[-1][1].observed_at.ToNanoseconds() for s in late)
    status = new_leader.status()
    assert status.replica.term > 0 and status.workers == 1


def test_followers_keep_serving_the_last_snapshot_marked_stale_while_no_leader_publishes(
    broker: str, coordination_url: str, replica_set: Callable[..., list[ServeProcess]]
) -> None:
    # A long lease: the frozen leader is not replaced during this test.
    replicas = replica_set(NAMES, serve_args(broker, coordination_url, unique_key(), ttl=30))
    leader = leader_of(replicas)
    followers = [r for r in replicas if r is not leader]
    wait_for(lambda: same_observation(replicas), timeout=30, ignore=(grpc.RpcError,))
    leader.signal(signal.SIGSTOP)
    try:
        stale = [wait_for(lambda f=f: (s := f.status()).stale and s, timeout=20) for f in followers]
        for status in stale:
            assert status.replica.observed_by == leader.name and status.workers == 1
            assert "leader" in status.error
        assert len({s.observed_at.ToNanoseconds() for s in stale}) == 1
    finally:
        leader.signal(signal.SIGCONT)
    wait_for(lambda: all(not f.status().stale for f in followers), timeout=20, message="not fresh again")
    assert leader_of(replicas) is leader


def test_a_leader_paused_past_its_ttl_steps_down_and_never_publishes_again(
    broker: str, coordination_url: str, replica_set: Callable[..., list[ServeProcess]]
) -> None:
    replicas = replica_set(NAMES, serve_args(broker, coordination_url, unique_key()))
    old = leader_of(replicas)
    others = [r for r in replicas if r is not old]
    wait_for(lambda: same_observation(replicas), timeout=30, ignore=(grpc.RpcError,))
    records = {r.name: r.watch() for r in others}
    old.signal(signal.SIGSTOP)
    try:
        new = leader_of(others, timeout=30)
        wait_for(
            lambda: all(rec.fresh() and rec.fresh()[-1][1].replica.observed_by == new.name for rec in records.values()),
            timeout=30,
        )
    finally:
        old.signal(signal.SIGCONT)
        resumed_at = time.monotonic()
    wait_for(lambda: old.status().replica.role == pb.REPLICA_ROLE_FOLLOWER, timeout=20, ignore=(grpc.RpcError,))
    wait_for(lambda: old.status().replica.observed_by == new.name, timeout=20, message="old leader not following")
    # Several more rounds of the new leader; none from the old one reached anybody.
    rounds_before = new.status().inspection.round
    wait_for(lambda: new.status().inspection.round >= rounds_before + 4, timeout=20)
    for name, record in records.items():
        split = [s for at, s in record.messages if at > resumed_at and s.replica.observed_by == old.name]
        assert not split, f"{name} received a snapshot of the old leader after it resumed"
    assert leader_of(replicas) is new
    assert "steps down" in old.log()


def _degraded_everywhere(replicas: list[ServeProcess]) -> bool:
    statuses = [r.status() for r in replicas]
    return all(
        s.replica.role == pb.REPLICA_ROLE_DEGRADED and s.replica.degraded and s.replica.observed_by == r.name
        and s.workers == 1 and s.connected
        for r, s in zip(replicas, statuses, strict=True)
    )


def _stopped_store_scenario(
    broker: str, coordination: str, stop: Callable[[], None], start: Callable[[], None],
    replica_set: Callable[..., list[ServeProcess]],
) -> None:
    replicas = replica_set(NAMES, serve_args(broker, coordination, unique_key()), http=True)
    leader_of(replicas)
    wait_for(lambda: same_observation(replicas), timeout=30, ignore=(grpc.RpcError,))
    stop()
    try:
        wait_for(lambda: _degraded_everywhere(replicas), timeout=30, ignore=(grpc.RpcError,),
                 message="replicas did not fall back to collecting alone")
        metrics = httpx.get(f"http://127.0.0.1:{replicas[0].http_port}/metrics").text
        assert "celery_status_replica_degraded 1.0" in metrics
    finally:
        start()
    leader = leader_of(replicas, timeout=30)
    wait_for(
        lambda: (o := same_observation(replicas)) and o[2] == leader.name,
        timeout=30, ignore=(grpc.RpcError,), message="no single leader serving everybody after the store returned",
    )
    assert all(not r.status().replica.degraded for r in replicas)


def test_redis_coordination_store_down_degrades_then_leadership_recovers(
    broker: str, redis_process: RedisProcess, replica_set: Callable[..., list[ServeProcess]]
) -> None:
    _stopped_store_scenario(broker, redis_process.url(0), redis_process.stop, redis_process.start, replica_set)


@pytest.fixture
def postgres_process() -> Iterator[PostgresProcess]:
    from tests.conftest import service_unavailable

    bindir = find_pg_bin()
    if bindir is None:
        service_unavailable("no PostgreSQL server binaries (pg_ctl, initdb)")
    assert bindir is not None
    cluster = PostgresProcess(bindir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


def test_postgresql_coordination_store_down_degrades_then_leadership_recovers(
    broker: str, postgres_process: PostgresProcess, replica_set: Callable[..., list[ServeProcess]]
) -> None:
    _stopped_store_scenario(
        broker, postgres_process.dsn, postgres_process.stop, postgres_process.start, replica_set
    )
