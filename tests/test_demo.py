"""``celery-status demo``: its job plan, its job stream on real workers, and the whole command."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from celerystatus_server.demo.jobs import STUCK_EVAL_ID, JobStream, plan
from celerystatus_server.demo.workers import WorkerProcess, child_pids
from tests.support.waiting import wait_for
from tests.support.workers import control_app


def test_plan_starts_with_the_stuck_evaluation_and_mixes_in_the_other_tasks() -> None:
    rng = random.Random(7)
    steps = [plan(n, rng) for n in range(31)]
    (first,) = steps[0]
    assert (first.name, first.args[0]) == ("tasks.evaluate_code", STUCK_EVAL_ID)
    names = [job.name for step in steps for job in step]
    assert names.count("tasks.cleanup_old_evaluations") == 3  # 10, 20, 30 (0 is the stuck one)
    assert names.count("tasks.monitor_dead_letter_queue") == 2  # 15, 30
    delayed = [job for step in steps for job in step if job.countdown]
    assert len(delayed) == 7 and all(15 <= job.countdown <= 45 for job in delayed)
    assert [job.args[0] for job in steps[5]] == ["eval-128"]


@pytest.mark.slow
def test_job_stream_gives_real_workers_active_and_scheduled_tasks(
    redis_url: str, tmp_path: Path
) -> None:
    app = control_app(redis_url)
    worker = WorkerProcess(
        "celerystatus_server.demo.tasks",
        "demo1",
        broker_url=redis_url,
        log_path=tmp_path / "demo1.log",
    ).start()
    stream = JobStream(app, interval=0.05, seed=1)
    try:
        worker.wait_ready(app)
        stream.start()
        inspect = app.control.inspect(destination=[worker.hostname], timeout=1.0)
        wait_for(lambda: stream.sent >= 6, timeout=10)

        def stuck_is_active() -> bool:
            active = (inspect.active() or {}).get(worker.hostname, [])
            return any(task["args"][:1] == [STUCK_EVAL_ID] for task in active)

        wait_for(stuck_is_active, timeout=20, message=f"{STUCK_EVAL_ID} never active")
        wait_for(lambda: (inspect.scheduled() or {}).get(worker.hostname), timeout=20)
    finally:
        stream.stop()
        worker.kill()
        app.close()
    assert not stream.running and stream.errors == 0


def _pid_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.slow
def test_demo_command_serves_status_and_cleans_up_on_sigterm(redis_url: str) -> None:
    command = [
        str(Path(sys.executable).with_name("celery-status")), "demo",
        "--grpc-address", "127.0.0.1:0",
        "--http-address", "127.0.0.1:0",
        "--redis-url", redis_url,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    demo = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    output: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            output.append(line)
            if line.startswith("Try:"):
                break
        text = "".join(output)
        match = re.search(r"JSON\s+(http://\S+)", text)
        assert match, text
        page = re.search(r"Dashboard\s+(http://\S+/)$", text, re.MULTILINE)
        assert page and match.group(1) == page.group(1) + "api/celery-status", text
        assert re.search(r"gRPC\s+127\.0\.0\.1:\d+", text), text
        workers = [pid for pid in child_pids(demo.pid)]
        assert len(workers) == 2, text
        pool = [pid for worker in workers for pid in child_pids(worker)]

        def status() -> dict[str, object] | None:
            with urllib.request.urlopen(match.group(1), timeout=5) as response:
                body: dict[str, object] = json.load(response)
            return body if body["workers"] == 2 and body["active_tasks"] else None

        body = wait_for(status, timeout=30, message="demo status with 2 workers and work")
        with urllib.request.urlopen(page.group(1), timeout=5) as response:
            assert b'<div id="banner"' in response.read()
        assert body["connected"] is True
        assert "tasks.evaluate_code" in body["registered_tasks"]  # type: ignore[operator]

        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=30) == 0
        assert all(_pid_gone(pid) for pid in workers + pool)
    finally:
        demo.kill()
        demo.wait()
        for pid in child_pids(demo.pid):
            os.killpg(pid, signal.SIGKILL)
