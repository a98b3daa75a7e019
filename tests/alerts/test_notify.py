"""Receivers against real HTTP servers on 127.0.0.1: a webhook, a dead port, a real Alertmanager."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from celerystatus.alerts import AlertState
from celerystatus_server.alerts import AlertEngine, Receiver, SnapshotRing, parse_alert_config
from celerystatus_server.alerts.notify import Notifier, build_payload, mask_url
from celerystatus_server.local_redis import free_port
from tests.support.services import ci
from tests.support.waiting import wait_for

from .support import FakeClock, WebhookReceiver, make_status

RULES = "rules:\n  WorkersBelowMinimum: {min: 2, for: 0s}\n"


def drive(engine: AlertEngine, notifier: Notifier, status_workers: dict[str, dict[str, int]]) -> None:
    evaluation = engine.evaluate(make_status(engine.clock(), workers=status_workers))
    notifier.handle(evaluation, engine.alerts())


def setup(receivers: list[Receiver], clock: Callable[[], float]) -> tuple[AlertEngine, Notifier]:
    engine = AlertEngine(parse_alert_config(RULES).active_rules(), SnapshotRing(), clock=clock)
    notifier = Notifier(receivers, clock=clock)
    notifier.start()
    return engine, notifier


def test_webhook_gets_exactly_one_firing_and_one_resolved() -> None:
    clock = FakeClock()
    with WebhookReceiver() as hook:
        receiver = Receiver(name="hook", type="webhook", url=hook.url, repeat_interval=3600)
        engine, notifier = setup([receiver], clock)
        try:
            for _ in range(3):  # evaluated again and again while firing
                drive(engine, notifier, {"w1@h": {}})
                clock.advance(10)
            for _ in range(3):
                drive(engine, notifier, {"w1@h": {}, "w2@h": {}})
                clock.advance(10)
            wait_for(lambda: len(hook.bodies) >= 2 and notifier.idle(), timeout=10)
            # Nothing more is on its way: both messages were delivered and counted.
            wait_for(lambda: notifier.stats()[0].sent == 2, timeout=10)
        finally:
            notifier.stop()
    assert hook.messages("WorkersBelowMinimum") == ["firing", "resolved"]
    path, first = hook.bodies[0]
    assert path == "/hooks/secret-token-123"
    assert first["receiver"] == "hook" and first["alert"]["labels"]["alertname"] == "WorkersBelowMinimum"
    assert first["alert"]["state"] == "firing" and "1 live worker" in first["alert"]["annotations"]["description"]


def test_repeat_interval_resends_a_long_firing_alert() -> None:
    clock = FakeClock()
    with WebhookReceiver() as hook:
        engine, notifier = setup([Receiver(name="hook", type="webhook", url=hook.url, repeat_interval=300)], clock)
        try:
            drive(engine, notifier, {"w1@h": {}})
            clock.advance(299)
            drive(engine, notifier, {"w1@h": {}})
            clock.advance(1)
            drive(engine, notifier, {"w1@h": {}})
            wait_for(lambda: notifier.stats()[0].sent == 2, timeout=10)
        finally:
            notifier.stop()
    assert hook.messages("WorkersBelowMinimum") == ["firing", "firing"]


def test_a_dead_receiver_blocks_nothing_and_its_failures_are_counted(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    dead = f"http://127.0.0.1:{free_port()}/services/T0/B0/very-secret"
    with WebhookReceiver() as hook:
        receivers = [
            Receiver(name="dead", type="slack", url=dead, attempts=3, timeout=1),
            Receiver(name="alive", type="webhook", url=hook.url),
        ]
        engine, notifier = setup(receivers, clock)
        caplog.set_level(logging.WARNING)
        try:
            began = time.monotonic()
            drive(engine, notifier, {"w1@h": {}})
            drive(engine, notifier, {"w1@h": {}, "w2@h": {}})
            # handle() only enqueues: the evaluator never waits for a receiver.
            assert time.monotonic() - began < 0.5
            wait_for(lambda: hook.messages("WorkersBelowMinimum") == ["firing", "resolved"], timeout=10)
            wait_for(lambda: notifier.stats()[0].failed == 2, timeout=30)
        finally:
            notifier.stop()
    stats = {s.name: s for s in notifier.stats()}
    assert (stats["dead"].sent, stats["dead"].failed) == (0, 2)
    assert (stats["alive"].sent, stats["alive"].failed) == (2, 0)
    logged = caplog.text
    assert "very-secret" not in logged and "/services/" not in logged
    assert mask_url(dead) in logged


def test_slack_and_alertmanager_payloads() -> None:
    clock = FakeClock()
    engine = AlertEngine(parse_alert_config(RULES).active_rules(), SnapshotRing(), clock=clock)
    alert = engine.evaluate(make_status(clock(), workers={"w1@h": {}})).changed[0]
    slack = build_payload(Receiver(name="s", type="slack", url="https://hooks.slack.com/x"), alert, clock())
    assert set(slack) == {"text"} and "[FIRING] WorkersBelowMinimum: Too few Celery workers" in slack["text"]
    am = Receiver(name="am", type="alertmanager", url="http://127.0.0.1:9093")
    (entry,) = build_payload(am, alert, clock())
    assert entry["labels"] == {"alertname": "WorkersBelowMinimum", "severity": "critical"}
    assert entry["startsAt"].endswith("Z") and entry["endsAt"] > entry["startsAt"]
    resolved = alert.with_(state=AlertState.RESOLVED, resolved_at=clock() + 5)
    (gone,) = build_payload(am, resolved, clock() + 5)
    assert gone["endsAt"] < entry["endsAt"]


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        if ci():
            pytest.fail("prometheus-alertmanager not installed (CI=true: required)")
        pytest.skip("prometheus-alertmanager not installed")
    config = tmp_path / "alertmanager.yml"
    config.write_text("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            binary, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
        ],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: urllib.request.urlopen(f"{url}/-/ready", timeout=1).status == 200,
                 timeout=30, ignore=(OSError,), message="alertmanager ready")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _listed(url: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=2) as response:
        alerts: list[dict[str, object]] = json.load(response)
    return alerts


def test_real_alertmanager_lists_the_alert_and_drops_it_once_resolved(alertmanager: str) -> None:
    # The real clock: Alertmanager compares endsAt with its own time.
    engine, notifier = setup([Receiver(name="am", type="alertmanager", url=alertmanager)], time.time)
    try:
        drive(engine, notifier, {"w1@h": {}})
        listed = wait_for(lambda: _listed(alertmanager), timeout=15, message="alert listed by Alertmanager")
        (alert,) = listed
        assert alert["labels"] == {"alertname": "WorkersBelowMinimum", "severity": "critical"}
        assert "1 live worker" in alert["annotations"]["description"]  # type: ignore[index]
        drive(engine, notifier, {"w1@h": {}, "w2@h": {}})
        wait_for(lambda: not _listed(alertmanager), timeout=15, message="resolved alert gone from Alertmanager")
        # Alertmanager may answer before the receiver thread counts the delivery.
        wait_for(lambda: notifier.stats()[0].sent == 2, timeout=10)
        assert notifier.stats()[0].failed == 0
    finally:
        notifier.stop()
