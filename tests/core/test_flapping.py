"""A worker paused for a round stays listed; a SIGKILLed one leaves (real workers, real Redis)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from celerystatus_server.collector import Collector
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory

from .test_collector import latest, make_collector

pytestmark = pytest.mark.slow


@pytest.fixture
def manual(redis_url: str) -> Iterator[Collector]:
    """A collector whose rounds the test runs by hand, with its event monitor live."""
    collector = make_collector(redis_url, discovery_interval=3600.0, inspect_timeout=0.5, round_deadline=2.0)
    collector._monitor.start()
    yield collector
    collector.stop()


def _both_listed(collector: Collector, *hosts: str) -> None:
    wait_for(lambda: set(hosts) <= set(collector.registry.targets()), timeout=15, message="heartbeats")
    wait_for(lambda: set(hosts) <= set(collector.run_round().worker_stats), timeout=15)


def test_a_worker_paused_for_one_round_does_not_flap(manual: Collector, worker_factory: WorkerFactory) -> None:
    steady = worker_factory("steady")
    paused = worker_factory("paused")
    _both_listed(manual, steady.hostname, paused.hostname)
    os.killpg(paused.pid, signal.SIGSTOP)
    try:
        missed = manual.run_round()  # asked, no answer within the timeout
        sighting = manual.registry.sighting(paused.hostname)
        assert sighting is not None and sighting.missed_rounds == 1
        assert paused.hostname in missed.worker_stats and missed.workers == 2
    finally:
        os.killpg(paused.pid, signal.SIGCONT)
    # Its next heartbeat makes it a target again, and it answers.
    wait_for(lambda: paused.hostname in manual.registry.targets(), timeout=15, message="heartbeat after SIGCONT")
    back = manual.run_round()
    assert back.workers == 2 and paused.hostname in back.worker_stats
    sighting = manual.registry.sighting(paused.hostname)
    assert sighting is not None and sighting.missed_rounds == 0


def test_a_killed_worker_leaves_after_the_missed_rounds(manual: Collector, worker_factory: WorkerFactory) -> None:
    steady = worker_factory("steady")
    killed = worker_factory("killed")
    _both_listed(manual, steady.hostname, killed.hostname)
    killed.kill()
    first = manual.run_round()
    assert killed.hostname in first.worker_stats  # one missed round is never enough
    gone = wait_for(lambda: (s := manual.run_round()).workers == 1 and s, timeout=20, message="killed worker gone")
    assert set(gone.worker_stats) == {steady.hostname}
    sighting = manual.registry.sighting(killed.hostname)
    assert sighting is None or sighting.missed_rounds >= 2
    assert killed.hostname not in manual.run_round().worker_stats


def test_a_killed_worker_leaves_within_three_intervals(
    redis_url: str, worker_factory: WorkerFactory
) -> None:
    """Counted in rounds of the default 2 s interval (heartbeats every 2 s), not in seconds."""
    steady = worker_factory("steady")
    killed = worker_factory("killed")
    collector = make_collector(redis_url, refresh_interval=2.0)
    collector.start()
    try:
        wait_for(lambda: latest(collector).workers == 2, timeout=30, message="both workers listed")
        killed.kill()
        round_at_kill = latest(collector).inspection.round
        gone = wait_for(
            lambda: (s := latest(collector)).connected and killed.hostname not in s.worker_stats and s,
            timeout=30,
            message="killed worker gone",
        )
        assert steady.hostname in gone.worker_stats
        assert gone.inspection.round - round_at_kill <= 3
    finally:
        collector.stop()
