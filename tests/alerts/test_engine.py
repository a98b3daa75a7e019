"""The alert engine and rules as pure logic: hand-made snapshots and a settable clock."""

from __future__ import annotations

from pathlib import Path

from celerystatus.alerts import AlertState
from celerystatus_server.alerts import AlertEngine, SnapshotRing, parse_alert_config
from celerystatus_server.alerts.state import StateFile

from .support import FakeClock, make_status


def engine_for(yaml_text: str, clock: FakeClock) -> AlertEngine:
    config = parse_alert_config(yaml_text)
    return AlertEngine(config.active_rules(), SnapshotRing(), clock=clock,
                       resolved_retention=config.options.resolved_retention)


def by_name(engine: AlertEngine, name: str) -> list[AlertState]:
    return [a.state for a in engine.alerts() if a.name == name]


ONLY_WORKERS = """
rules:
  WorkersBelowMinimum: {min: 2, for: 60s}
"""


def test_pending_then_firing_after_for_then_resolved() -> None:
    clock = FakeClock()
    engine = engine_for(ONLY_WORKERS, clock)
    one = {"w1@h": {}}
    first = engine.evaluate(make_status(clock(), workers=one))
    assert [a.state for a in first.changed] == [AlertState.PENDING]
    alert = first.changed[0]
    assert alert.labels == {"alertname": "WorkersBelowMinimum", "severity": "critical"}
    assert "1 live worker, fewer than the minimum of 2" in alert.annotations["description"]
    clock.advance(59)
    assert not engine.evaluate(make_status(clock(), workers=one)).changed
    clock.advance(1)
    fired = engine.evaluate(make_status(clock(), workers=one)).changed
    assert [(a.state, a.fingerprint) for a in fired] == [(AlertState.FIRING, alert.fingerprint)]
    assert fired[0].active_since == alert.active_since and fired[0].fired_at == clock()
    clock.advance(5)
    resolved = engine.evaluate(make_status(clock())).changed
    assert [a.state for a in resolved] == [AlertState.RESOLVED]
    assert by_name(engine, "WorkersBelowMinimum") == [AlertState.RESOLVED]


def test_evaluation_is_idempotent_per_fingerprint() -> None:
    clock = FakeClock()
    engine = engine_for(ONLY_WORKERS, clock)
    status = make_status(clock(), workers={"w1@h": {}})
    assert engine.evaluate(status).changed
    for _ in range(3):
        assert not engine.evaluate(status).any
    assert len(engine.alerts()) == 1


def test_pending_that_stops_is_dropped_without_resolving() -> None:
    clock = FakeClock()
    engine = engine_for(ONLY_WORKERS, clock)
    engine.evaluate(make_status(clock(), workers={"w1@h": {}}))
    evaluation = engine.evaluate(make_status(clock()))
    assert not evaluation.changed and [a.state for a in evaluation.removed] == [AlertState.PENDING]
    assert engine.alerts() == []


def test_worker_rules_pause_while_the_broker_is_unreachable() -> None:
    clock = FakeClock()
    engine = engine_for(ONLY_WORKERS + "  BrokerDisconnected: {for: 30s}\n", clock)
    engine.evaluate(make_status(clock(), workers={"w1@h": {}}))
    clock.advance(61)
    engine.evaluate(make_status(clock(), workers={"w1@h": {}}))
    assert by_name(engine, "WorkersBelowMinimum") == [AlertState.FIRING]
    down = make_status(clock(), workers={}, connected=False, stale=True)
    engine.evaluate(down)
    # Neither resolved nor re-evaluated on data the collector could not refresh.
    assert by_name(engine, "WorkersBelowMinimum") == [AlertState.FIRING]
    assert by_name(engine, "BrokerDisconnected") == [AlertState.PENDING]
    clock.advance(30)
    engine.evaluate(down)
    assert by_name(engine, "BrokerDisconnected") == [AlertState.FIRING]


def test_resolved_alerts_expire_after_retention() -> None:
    clock = FakeClock()
    engine = engine_for(ONLY_WORKERS.replace("60s", "0s") + "options: {resolved_retention: 10m}\n", clock)
    engine.evaluate(make_status(clock(), workers={"w1@h": {}}))
    engine.evaluate(make_status(clock()))
    clock.advance(600)
    engine.evaluate(make_status(clock()))
    assert by_name(engine, "WorkersBelowMinimum") == [AlertState.RESOLVED]
    clock.advance(1)
    assert [a.state for a in engine.evaluate(make_status(clock())).removed] == [AlertState.RESOLVED]
    assert engine.alerts() == []


def test_state_survives_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = engine_for(ONLY_WORKERS, clock)
    one = {"w1@h": {}}
    engine.evaluate(make_status(clock(), workers=one))
    clock.advance(60)
    engine.evaluate(make_status(clock(), workers=one))
    state = StateFile(tmp_path / "alerts.json", "redis://127.0.0.1:6379/0")
    assert state.save(engine.export_state())
    before = engine.alerts()

    restarted = engine_for(ONLY_WORKERS, clock)
    saved = state.load()
    assert saved is not None and restarted.load_state(saved) == 1
    assert restarted.alerts() == before
    # Still firing after the restart: no new transition, hence no second notification.
    assert not restarted.evaluate(make_status(clock(), workers=one)).changed
    assert [a.state for a in restarted.evaluate(make_status(clock())).changed] == [AlertState.RESOLVED]
    # Another cluster's state is not taken over.
    assert StateFile(tmp_path / "alerts.json", "redis://elsewhere:6379/0").load() is None


def test_threshold_rule_with_wildcard_labels_each_worker() -> None:
    clock = FakeClock()
    engine = engine_for(
        """
thresholds:
  - name: BusyWorker
    field: worker_stats.*.active_tasks
    op: ">="
    value: 2
    labels: {team: ops}
""",
        clock,
    )
    status = make_status(clock(), workers={"a@h": {"active": 2}, "b@h": {"active": 1}})
    changed = engine.evaluate(status).changed
    assert [(a.name, a.state, a.labels.get("worker"), a.labels.get("team")) for a in changed] == [
        ("BusyWorker", AlertState.FIRING, "a@h", "ops")
    ]


def test_queue_growing_and_exhaustion_from_the_trend() -> None:
    clock = FakeClock()
    engine = engine_for(
        """
rules:
  WorkersBelowMinimum: {enabled: false}
  QueueGrowing: {floor: 50, for: 0s, window: 5m}
  ExhaustionPredicted: {for: 0s, backlog_limit: 200, horizon: 15m}
""",
        clock,
    )
    for depth in (10, 20, 30, 40, 50, 60):
        engine.evaluate(make_status(clock(), queues={"celery": depth}))
        clock.advance(60)
    names = {a.name: a for a in engine.alerts()}
    assert names["QueueGrowing"].labels["queue"] == "celery"
    assert names["QueueGrowing"].value == 10.0  # messages per minute
    # 60 messages, +10/min: the limit of 200 is 14 minutes away.
    assert names["ExhaustionPredicted"].labels["resource"] == "backlog"
    assert 13 * 60 <= names["ExhaustionPredicted"].value <= 15 * 60


def test_worker_stalled_needs_the_whole_window() -> None:
    clock = FakeClock()
    engine = engine_for("rules:\n  WorkerStalled: {window: 5m}\n  WorkersBelowMinimum: {enabled: false}\n", clock)
    busy = {"w1@h": {"active": 1, "total": 7}}
    for _ in range(5):
        engine.evaluate(make_status(clock(), workers=busy))
        clock.advance(60)
        assert by_name(engine, "WorkerStalled") == []
    engine.evaluate(make_status(clock(), workers=busy))
    assert by_name(engine, "WorkerStalled") == [AlertState.FIRING]
    engine.evaluate(make_status(clock(), workers={"w1@h": {"active": 1, "total": 8}}))
    assert by_name(engine, "WorkerStalled") == [AlertState.RESOLVED]


def test_task_running_long_and_slower_than_usual_from_followed_task_ids() -> None:
    clock = FakeClock()
    engine = engine_for(
        """
rules:
  WorkersBelowMinimum: {enabled: false}
  TaskRunningLong: {factor: 3, min_runtime: 10s, min_samples: 3}
  TaskSlowerThanUsual: {min_samples: 3, window: 10m}
""",
        clock,
    )
    # Three runs of 4 s each, followed from snapshot to snapshot.
    for index in range(3):
        start = clock()
        engine.evaluate(make_status(clock(), active={"w1@h": [(f"t{index}", "tasks.x", start)]}))
        clock.advance(4)
        engine.evaluate(make_status(clock(), active={"w1@h": [(f"t{index}", "tasks.x", start)]}))
        engine.evaluate(make_status(clock()))
    clock.advance(3600)  # the usual runs leave the 10 min window, stay in the 24 h baseline
    start = clock()
    engine.evaluate(make_status(clock(), active={"w1@h": [("slow", "tasks.x", start)]}))
    clock.advance(12)
    engine.evaluate(make_status(clock(), active={"w1@h": [("slow", "tasks.x", start)]}))
    assert by_name(engine, "TaskRunningLong") == []  # 12 s is exactly 3 x 4 s: not beyond
    clock.advance(1)
    engine.evaluate(make_status(clock(), active={"w1@h": [("slow", "tasks.x", start)]}))
    long = [a for a in engine.alerts() if a.name == "TaskRunningLong"]
    assert [(a.state, a.labels["task"], a.labels["task_id"]) for a in long] == [
        (AlertState.FIRING, "tasks.x", "slow")
    ]
    assert "3 x its usual p95 of 4.0s over 3 runs" in long[0].annotations["description"]
    engine.evaluate(make_status(clock()))
    for index in range(3):  # three slow runs of 12 s: p95 3 x the baseline's
        start = clock()
        engine.evaluate(make_status(clock(), active={"w1@h": [(f"s{index}", "tasks.x", start)]}))
        clock.advance(12)
        engine.evaluate(make_status(clock(), active={"w1@h": [(f"s{index}", "tasks.x", start)]}))
        engine.evaluate(make_status(clock()))
    assert by_name(engine, "TaskSlowerThanUsual") == [AlertState.FIRING]


def test_pool_process_replaced_without_recycling_is_a_crash() -> None:
    clock = FakeClock()
    engine = engine_for("rules:\n  PoolProcessesCrashed: {for: 1m}\n  WorkersBelowMinimum: {enabled: false}\n", clock)
    engine.evaluate(make_status(clock(), workers={"w1@h": {"processes": [11, 12]}}))
    clock.advance(2)
    engine.evaluate(make_status(clock(), workers={"w1@h": {"processes": [12, 13]}}))
    assert by_name(engine, "PoolProcessesCrashed") == [AlertState.PENDING]
    clock.advance(60)
    engine.evaluate(make_status(clock(), workers={"w1@h": {"processes": [12, 13]}}))
    assert by_name(engine, "PoolProcessesCrashed") == [AlertState.FIRING]
    # A restarted worker (new main pid) has a new pool: not a crash.
    other = engine_for("rules:\n  PoolProcessesCrashed: {for: 0s}\n  WorkersBelowMinimum: {enabled: false}\n", clock)
    other.evaluate(make_status(clock(), workers={"w1@h": {"processes": [11, 12], "pid": 1}}))
    other.evaluate(make_status(clock(), workers={"w1@h": {"processes": [21, 22], "pid": 2}}))
    assert by_name(other, "PoolProcessesCrashed") == []
