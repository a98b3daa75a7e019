"""Rules files: validation with line and field, the CLI's exit codes, the Prometheus export."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from celerystatus_server.alerts import parse_alert_config
from celerystatus_server.cli import main
from tests.support.services import ci

GOOD = """\
rules:
  WorkersBelowMinimum:
    min: 3
    for: 2m
    labels: {team: ops}
  TooManyActiveTasks:
    enabled: false
  TaskRunningLong:
    limits:
      tasks.evaluate_code: 5m
thresholds:
  - name: ManyScheduled
    field: scheduled_tasks
    op: ">"
    value: 500
    for: 5m
receivers:
  - name: ops
    type: webhook
    url: https://hooks.example.com/services/T000/B000/XXXX
"""


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "alerts.yaml"
    path.write_text(text)
    return str(path)


def test_good_file_overrides_defaults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = parse_alert_config(GOOD)
    rule = config.rules.WorkersBelowMinimum  # type: ignore[attr-defined]
    assert (rule.min, rule.for_, rule.severity, rule.labels) == (3, 120.0, "critical", {"team": "ops"})
    assert "TooManyActiveTasks" not in [r.name for r in config.active_rules()]
    assert config.rules.TaskRunningLong.limits == {"tasks.evaluate_code": 300.0}  # type: ignore[attr-defined]
    code, out, err = run_cli(capsys, "alerts", "check", write(tmp_path, GOOD))
    assert code == 0, err
    assert "OK, 11 rules enabled" in out and "1 receivers" in out


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("rules:\n  WorkersBelowMinimum: {min: 2}\n  NoSuchRule:\n    for: 1m\n", 3,
         "rules.NoSuchRule: unknown rule 'NoSuchRule' (built-in rules: BrokerDisconnected"),
        ("rules:\n  BrokerDisconnected:\n    severity: critical\n    for: -30s\n", 4,
         "rules.BrokerDisconnected.for: must not be negative"),
        ("rules:\n  QueueGrowing:\n    window: [5m\n", 4, "invalid YAML"),
        ("rules:\n  QueueGrowing:\n    floor: many\n", 3, "rules.QueueGrowing.floor: Input should be a valid integer"),
        ("thresholds:\n  - name: X\n    field: nope.deeper\n    value: 1\n", 3,
         "thresholds.0.field: unknown status field"),
        ("receivers:\n  - name: r\n    type: pager\n    url: https://x.example\n", 3, "receivers.0.type"),
    ],
)
def test_bad_files_name_line_and_field_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, expected: str
) -> None:
    path = write(tmp_path, text)
    code, _, err = run_cli(capsys, "alerts", "check", path)
    assert code == 2
    assert f"{path}:{line}: " in err and expected in err, err
    assert "Traceback" not in err


def test_serve_refuses_a_bad_rules_file_before_starting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "rules:\n  Bogus: {}\n")
    code, _, err = run_cli(capsys, "serve", "--grpc-address", "127.0.0.1:0", "--alerts-file", path)
    assert code == 2
    assert err.count("\n") == 1 and f"{path}:2: rules.Bogus: unknown rule" in err


def test_missing_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "alerts", "check", str(tmp_path / "absent.yaml"))
    assert code == 2 and "cannot read the alerts file" in err


def _promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        if ci():
            pytest.fail("promtool not installed (Debian package prometheus; CI=true: required)")
        pytest.skip("promtool not installed (Debian package prometheus)")
    return tool


PROMTOOL_TESTS = Path(__file__).with_name("promtool_tests.yml")


def test_exported_rules_pass_promtool_check_and_unit_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    promtool = _promtool()
    code, out, err = run_cli(capsys, "alerts", "export-prometheus", "--refresh-interval", "2")
    assert code == 0, err
    rules = tmp_path / "celery-status-rules.yml"
    rules.write_text(out)
    names = [r["alert"] for r in yaml.safe_load(out)["groups"][0]["rules"]]
    assert set(names) >= {"BrokerDisconnected", "WorkersBelowMinimum", "QueueGrowing", "TaskRunningLong"}
    checked = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    shutil.copy(PROMTOOL_TESTS, tmp_path / PROMTOOL_TESTS.name)
    tested = subprocess.run(
        [promtool, "test", "rules", PROMTOOL_TESTS.name], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_export_applies_the_rules_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "alerts", "export-prometheus", "--alerts-file", write(tmp_path, GOOD))
    assert code == 0, err
    rules = {r["alert"]: r for r in yaml.safe_load(out)["groups"][0]["rules"]}
    assert "TooManyActiveTasks" not in rules
    assert rules["WorkersBelowMinimum"]["expr"].startswith("celery_workers < 3")
    assert rules["WorkersBelowMinimum"]["for"] == "2m"
    assert rules["WorkersBelowMinimum"]["labels"] == {"severity": "critical", "team": "ops"}
    assert rules["ManyScheduled"]["expr"] == "celery_scheduled_tasks > 500"
