"""The rule that decides when a worker that stopped answering leaves the snapshot (pure logic, fake clock)."""

from __future__ import annotations

from celerystatus_server.liveness import HEARTBEAT_GRACE, WorkerRegistry


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _heartbeat(registry: WorkerRegistry, host: str) -> None:
    registry.on_event({"type": "worker-heartbeat", "hostname": host, "freq": 2.0, "timestamp": 0})


def test_one_missed_round_never_removes_a_worker() -> None:
    clock = Clock()
    registry = WorkerRegistry(clock=clock, missed_rounds=2)
    registry.on_round(["w"], ["w"])
    clock.now += 60  # long silent, no heartbeat at all
    registry.on_round(["w"], [])
    assert registry.keeps("w")


def test_missed_rounds_with_heartbeats_keep_a_busy_worker() -> None:
    clock = Clock()
    registry = WorkerRegistry(clock=clock, missed_rounds=2)
    _heartbeat(registry, "w")
    registry.on_round(["w"], ["w"])
    for _ in range(5):
        clock.now += 2.0
        _heartbeat(registry, "w")
        registry.on_round(registry.targets(), [])
        assert registry.keeps("w")


def test_a_silent_worker_leaves_after_k_rounds_and_its_heartbeat_grace() -> None:
    clock = Clock()
    registry = WorkerRegistry(clock=clock, missed_rounds=2)
    _heartbeat(registry, "w")
    registry.on_round(["w"], ["w"])
    # Killed right after that heartbeat; rounds every 2 s, as by default.
    clock.now += 0.1
    registry.on_round(registry.targets(), [])
    assert registry.keeps("w")  # one round missed
    clock.now += 2.0
    registry.on_round(registry.targets(), [])  # not asked again, still a round without it
    assert registry.keeps("w")  # two rounds, but the last heartbeat is only 2.1 s old
    clock.now += 2.0
    registry.on_round(registry.targets(), [])
    assert 4.1 > 2.0 * HEARTBEAT_GRACE and not registry.keeps("w")  # gone in the third interval


def test_answering_again_resets_the_count() -> None:
    clock = Clock()
    registry = WorkerRegistry(clock=clock, missed_rounds=2)
    registry.on_round(["w"], [])
    registry.on_round(["w"], ["w"])
    registry.on_round(["w"], [])
    assert registry.keeps("w")
    registry.on_round([], [])
    assert not registry.keeps("w")  # no heartbeats ever: the rounds alone decide
