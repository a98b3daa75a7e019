"""The SDK's subcommands through the real ``celery-status`` entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from celerystatus.schema import STATUS_JSON_SCHEMA
from tests.support.schemas import validate_closed

from .conftest import ScriptedServer
from .samples import full_status_proto

GOLDEN = Path(__file__).parent / "golden"


def _program() -> list[str]:
    found = shutil.which("celery-status", path=str(Path(sys.executable).parent))
    # Fall back to the SDK's own runner when the server package is not installed.
    return [found] if found else [sys.executable, "-m", "celerystatus.cli"]


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # The caller's own settings must not leak into the run.
    inherited = {
        k: v
        for k, v in os.environ.items()
        if k not in {"CELERY_STATUS_TARGET", "CELERY_STATUS_TOKEN"}
    }
    environment = {**inherited, **(env or {})}
    return subprocess.run(
        [*_program(), *argv], capture_output=True, text=True, timeout=60, env=environment
    )


def test_status_table(scripted_server: ScriptedServer) -> None:
    result = run("status", "--target", scripted_server.target)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Celery: connected")
    assert "workers: 2   active: 1   scheduled: 1   reserved: 1" in lines[1]
    worker_1 = next(line for line in lines if line.startswith("celery@worker-1"))
    assert worker_1.split() == ["celery@worker-1", "prefork", "4/4", "1", "1", "0", "1523", "1h00m"]
    assert any(line.split() == ["celery", "45", "-"] for line in lines)


def test_status_json_is_the_seed_document(scripted_server: ScriptedServer) -> None:
    result = run("status", "--json", env={"CELERY_STATUS_TARGET": scripted_server.target})
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document == json.loads((GOLDEN / "full_status.json").read_text())
    validate_closed(document, STATUS_JSON_SCHEMA)


def test_token_from_environment(scripted_server: ScriptedServer) -> None:
    result = run(
        "status",
        "--target",
        scripted_server.target,
        env={"CELERY_STATUS_TOKEN": "from-env"},
    )
    assert result.returncode == 0, result.stderr
    assert scripted_server.servicer.metadata[-1]["authorization"] == "Bearer from-env"


@pytest.mark.parametrize(
    ("args", "code", "prefix"),
    [
        (["--min-workers", "2", "--max-active", "100"], 0, "CELERY OK - 2 workers, 1 active"),
        (["--min-workers", "3"], 1, "CELERY WARNING - workers 2 < 3"),
        (["--max-scheduled", "0"], 1, "CELERY WARNING - scheduled 1 > 0"),
    ],
)
def test_check_exit_codes(
    scripted_server: ScriptedServer, args: list[str], code: int, prefix: str
) -> None:
    result = run("check", "--target", scripted_server.target, *args)
    assert result.returncode == code, result.stdout + result.stderr
    assert result.stdout.startswith(prefix)
    assert len(result.stdout.splitlines()) == 1
    assert " | workers=2;" in result.stdout


def test_check_critical_when_broker_not_connected(scripted_server: ScriptedServer) -> None:
    status = full_status_proto()
    status.connected = False
    status.error = "Connection refused"
    scripted_server.servicer.status = status
    result = run("check", "--target", scripted_server.target)
    assert result.returncode == 2
    assert result.stdout.startswith("CELERY CRITICAL - broker not connected (Connection refused)")


def test_check_unknown_when_service_unreachable(dead_target: str) -> None:
    result = run("check", "--target", dead_target, "--timeout", "2")
    assert result.returncode == 3
    assert result.stdout.startswith(f"CELERY UNKNOWN - status service {dead_target}: UNAVAILABLE")


def test_check_unknown_on_bad_target() -> None:
    result = run("check", "--target", "http://127.0.0.1:8080")
    assert result.returncode == 3
    assert "not a gRPC target" in result.stdout


def test_find_task(scripted_server: ScriptedServer) -> None:
    found = run("find-task", "eval-456", "--target", scripted_server.target)
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith(
        "eval-456: task task-123 (tasks.evaluate_code) active on celery@worker-1 for "
    )
    as_json = run("find-task", "eval-456", "--json", "--target", scripted_server.target)
    document = json.loads(as_json.stdout)
    assert (document["worker"], document["state"], document["id"]) == (
        "celery@worker-1",
        "active",
        "task-123",
    )
    missing = run("find-task", "eval-999", "--target", scripted_server.target)
    assert missing.returncode == 1
    assert "not held by any worker" in missing.stdout


def test_errors_exit_2_with_one_line_on_stderr(dead_target: str) -> None:
    result = run("status", "--target", dead_target, "--timeout", "2")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {dead_target}: UNAVAILABLE")


def test_watch_prints_updates_and_stops_after_count(scripted_server: ScriptedServer) -> None:
    process = subprocess.Popen(
        [*_program(), "watch", "--json", "--count", "2", "--target", scripted_server.target],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = json.loads(process.stdout.readline())
        assert first["inspection"]["round"] == 7
        update = full_status_proto()
        update.inspection.round = 8
        update.observed_at.seconds += 2
        scripted_server.servicer.publish(update)
        second = json.loads(process.stdout.readline())
        assert second["inspection"]["round"] == 8
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_watch_table_view(scripted_server: ScriptedServer) -> None:
    result = run("watch", "--count", "1", "--target", scripted_server.target)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Celery: connected")
    assert f"update 1 from {scripted_server.target}" in result.stdout
    assert "\x1b[" not in result.stdout  # no screen control codes into a pipe
