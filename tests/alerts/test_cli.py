"""``celery-status alerts`` and ``check`` with alerts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from celerystatus import Alert, AlertList, AlertState
from celerystatus.cli import CRITICAL, OK, WARNING, evaluate_check, render_alerts
from celerystatus.models import CeleryStatus
from celerystatus_server.cli import main
from celerystatus_server.config import Settings
from celerystatus_server.server import StatusServer
from tests.support.server import running_server
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory


def alert(name: str, severity: str, state: AlertState = AlertState.FIRING, **labels: str) -> Alert:
    return Alert(
        fingerprint=name, name=name, state=state, severity=severity,
        labels={"alertname": name, "severity": severity, **labels},
        annotations={"summary": f"{name} summary", "description": "d"},
        active_since=1000.0, updated_at=1000.0, fired_at=1000.0,
    )




def healthy() -> CeleryStatus:
    from celerystatus.v1 import celery_status_pb2 as pb

    return CeleryStatus.from_proto(pb.CeleryStatus(enabled=True, connected=True, workers=3))


def test_check_exit_code_follows_the_severity_of_firing_alerts() -> None:
    assert evaluate_check(healthy(), alerts=[alert("X", "critical", AlertState.PENDING)])[0] == OK
    assert evaluate_check(healthy(), alerts=[alert("Info", "info")])[0] == OK
    code, line = evaluate_check(healthy(), alerts=[alert("QueueGrowing", "warning", queue="celery")])
    assert code == WARNING and "alert QueueGrowing queue=celery" in line
    code, line = evaluate_check(
        healthy(), alerts=[alert("QueueGrowing", "warning"), alert("WorkersBelowMinimum", "critical")]
    )
    assert code == CRITICAL and line.startswith("CELERY CRITICAL - alert WorkersBelowMinimum; alert QueueGrowing")


def test_alerts_table() -> None:
    table = render_alerts(
        AlertList(alerts=(alert("TaskRunningLong", "warning", task="tasks.x", worker="w1@h"),)), now=1090.0
    )
    header, row = table.splitlines()
    assert header.split() == ["STATE", "SEVERITY", "ALERT", "WHERE", "SINCE", "SUMMARY"]
    assert row.split()[:5] == ["FIRING", "warning", "TaskRunningLong", "worker=w1@h,task=tasks.x", "1m30s"]
    assert render_alerts(AlertList()) == "no alerts"


@pytest.fixture
def server(tmp_path: Path, redis_url: str, worker_factory: WorkerFactory) -> Iterator[StatusServer]:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(
        "rules:\n  WorkersBelowMinimum: {min: 2, for: 0s, severity: warning}\n"
        "options: {evaluation_interval: 0.5s}\n"
    )
    worker_factory("lonely")
    settings = Settings(broker_url=redis_url, grpc_address="127.0.0.1:0", refresh_interval=0.5,
                        alerts_file=str(rules), alerts_state_file="none")
    with running_server(settings) as running:
        yield running


@pytest.mark.slow
def test_cli_against_a_real_service(server: StatusServer, capsys: pytest.CaptureFixture[str]) -> None:
    target = ["--target", server.grpc_target]

    def firing() -> bool:
        names = [a.name for a in server.alerts.board.alerts if a.state is AlertState.FIRING]
        return names == ["WorkersBelowMinimum"]

    wait_for(lambda: server.store.latest().status.workers == 1, timeout=30)
    wait_for(firing, timeout=30)
    assert main(["alerts", *target]) == 0
    out = capsys.readouterr().out
    assert "FIRING  warning   WorkersBelowMinimum" in out and "Too few Celery workers" in out
    # One worker is not below check's own minimum (1): the alert alone makes it WARNING.
    assert main(["check", *target]) == WARNING
    assert "CELERY WARNING - alert WorkersBelowMinimum" in capsys.readouterr().out
    assert main(["check", "--ignore-alerts", *target]) == OK
    capsys.readouterr()
    assert main(["alerts", "--json", "--state", "pending", *target]) == 0
    assert '"alerts": []' in capsys.readouterr().out
