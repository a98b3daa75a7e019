"""The coordination store contract, against a real Redis and a real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable

from celerystatus_server.coordination import CoordinationStore, StoreUnavailable, open_store
from celerystatus_server.coordination.postgres_store import MAX_NOTIFY
from tests.support.waiting import wait_for


def test_one_leader_at_a_time_with_growing_fencing_tokens(store_factory: Callable[[], CoordinationStore]) -> None:
    a, b = store_factory(), store_factory()
    first = a.acquire("a", 30.0)
    assert first.lease is not None and first.lease.holder == "a"
    refused = b.acquire("b", 30.0)
    assert refused.lease is None and refused.leader == "a" and 0 < refused.expires_in <= 30.0
    assert a.renew(first.lease, 30.0)
    a.release(first.lease)
    second = b.acquire("b", 30.0)
    assert second.lease is not None and second.lease.token > first.lease.token
    # The old holder can neither renew nor publish under the old lease.
    assert not a.renew(first.lease, 30.0)
    assert not a.publish(first.lease, b"old")
    assert b.publish(second.lease, b"new")
    assert a.latest() == b"new"


def test_an_expired_lease_is_taken_over_and_fences_its_holder(store_factory: Callable[[], CoordinationStore]) -> None:
    a, b = store_factory(), store_factory()
    old = a.acquire("a", 0.5).lease
    assert old is not None
    new = wait_for(lambda: b.acquire("b", 30.0).lease, timeout=10, message="lease not taken over")
    assert new.token > old.token
    assert not a.renew(old, 30.0), "an expired lease must not be renewable once taken"
    assert not a.publish(old, b"late round")
    assert b.latest() is None or b.latest() != b"late round"


def test_listen_delivers_the_latest_then_live_snapshots_and_refresh_requests(
    store_factory: Callable[[], CoordinationStore],
) -> None:
    leader, follower = store_factory(), store_factory()
    lease = leader.acquire("leader", 30.0).lease
    assert lease is not None
    assert leader.publish(lease, b"before")
    big = bytes(range(256)) * (2 * MAX_NOTIFY // 256 + 1)  # beyond NOTIFY's limit once encoded
    got: list[tuple[bytes, bool]] = []
    refreshes: list[int] = []
    stopping = threading.Event()

    def listen() -> None:
        try:
            follower.listen(lambda payload, live: got.append((payload, live)), lambda: refreshes.append(1), stopping)
        except StoreUnavailable:
            pass

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    try:
        wait_for(lambda: got, timeout=10, message="latest snapshot not delivered on subscribe")
        assert got[0] == (b"before", False)
        wait_for(lambda: (leader.publish(lease, b"live"), any(p == b"live" for p, _ in got))[1], timeout=10)
        assert leader.publish(lease, big)
        wait_for(lambda: any(p == big for p, _ in got), timeout=10, message="large snapshot not delivered")
        assert all(live for payload, live in got if payload in (b"live", big))
        wait_for(lambda: (leader.request_refresh("follower"), refreshes)[1], timeout=10, message="no refresh")
    finally:
        stopping.set()
        thread.join(5)


def test_an_unreachable_store_raises_store_unavailable() -> None:
    for url in ("redis://127.0.0.1:1/0", "postgresql://postgres@127.0.0.1:1/test"):
        store = open_store(url, "unreachable", timeout=0.5)
        try:
            calls = (lambda s=store: s.acquire("x", 1.0), store.latest, lambda s=store: s.request_refresh("x"))
            for call in calls:
                try:
                    call()
                except StoreUnavailable:
                    continue
                raise AssertionError(f"{url}: no StoreUnavailable")
        finally:
            store.close()
