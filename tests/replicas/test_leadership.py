"""The Leadership hook other features use to run once per deployment, on in-process servers."""

from __future__ import annotations

import pytest

from celerystatus_server.config import Settings
from celerystatus_server.coordination import Leadership
from tests.support.server import running_server
from tests.support.waiting import wait_for

from .conftest import unique_key


def test_a_server_running_alone_always_leads() -> None:
    leadership = Leadership()
    calls: list[bool] = []
    leadership.add_listener(calls.append)
    assert leadership.is_leader() and calls == [True]


@pytest.mark.slow
def test_leadership_moves_to_the_other_replica_when_the_leader_stops(redis_url: str, coordination_url: str) -> None:
    common = {
        "broker_url": redis_url,
        "grpc_address": "127.0.0.1:0",
        "coordination_url": coordination_url,
        "coordination_key": unique_key(),
        "refresh_interval": 0.5,
        # Long: only a clean stop, which releases the lease, can hand over within the test's deadline.
        "coordination_ttl": 60.0,
    }
    first_calls: list[bool] = []
    second_calls: list[bool] = []
    with running_server(Settings(**common, replica_name="first")) as first:
        first.leadership.add_listener(first_calls.append)
        wait_for(first.leadership.is_leader, timeout=20, message="the only replica does not lead")
        assert first_calls[-1] is True
        with running_server(Settings(**common, replica_name="second")) as second:
            second.leadership.add_listener(second_calls.append)
            assert second_calls == [False] and not second.leadership.is_leader()
            assert first.replica is not None
            first.replica.stop()  # releases the lease
            assert first_calls[-1] is False and not first.leadership.is_leader()
            wait_for(second.leadership.is_leader, timeout=20, message="leadership did not move")
            # Listeners hear of it on the election thread, just after the lease is taken.
            wait_for(lambda: second_calls == [False, True], timeout=20, message=f"listener calls {second_calls}")
