"""``celery-status demo``: its job plan, its job stream on real workers, and the whole command."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import redis

from celerystatus_server.demo.jobs import STUCK_EVAL_ID, JobStream, plan
from celerystatus_server.demo.tasks import QUEUE
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
        queues=(QUEUE,),
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


def _demo_command(redis_url: str, *extra: str) -> list[str]:
    return [
        str(Path(sys.executable).with_name("celery-status")), "demo",
        "--grpc-address", "127.0.0.1:0",
        "--http-address", "127.0.0.1:0",
        "--redis-url", redis_url,
        *extra,
    ]  # fmt: skip


def _start_demo(command: list[str]) -> tuple[subprocess.Popen[str], str]:
    """Starts the demo and reads its output up to the banner's "Try:"."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    demo = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    output: list[str] = []
    assert demo.stdout is not None
    for line in demo.stdout:
        output.append(line)
        if line.startswith("Try:"):
            break
    return demo, "".join(output)


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


def _run_demo_expecting_refusal(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    # Refused before any worker was started.
    assert "workers: starting" not in result.stdout
    return result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--grpc-address", "--http-address"])
def test_demo_port_in_use_is_one_line_naming_the_flag(redis_url: str, flag: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        address = f"127.0.0.1:{busy.getsockname()[1]}"
        stderr = _run_demo_expecting_refusal(_demo_command(redis_url, flag, address))
    assert flag in stderr and address in stderr
    # Nothing left behind in the database it had claimed.
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.dbsize() == 0
    finally:
        client.close()


def test_demo_refuses_a_database_that_is_not_its_own(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.set("myapp:important", "1")
        stderr = _run_demo_expecting_refusal(_demo_command(redis_url))
        assert "--redis-url" in stderr
        assert client.keys("*") == [b"myapp:important"]
    finally:
        client.close()


def test_demo_bad_address_is_one_line(redis_url: str) -> None:
    stderr = _run_demo_expecting_refusal(_demo_command(redis_url, "--grpc-address", "nonsense"))
    # The setting's name or its flag, with the value that was refused.
    assert re.search(r"grpc[_-]address", stderr) and "nonsense" in stderr, stderr


@pytest.mark.slow
def test_demo_uses_its_own_queue_and_removes_its_keys(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    demo, text = _start_demo(_demo_command(redis_url))
    try:
        assert "Try:" in text, text
        # The demo's jobs travel on its own queue, never on an app's "celery".
        wait_for(lambda: client.exists("_kombu.binding.celery-status-demo"), timeout=30)
        assert not client.exists("celery", "_kombu.binding.celery")
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=30) == 0
        assert client.keys("*") == []
    finally:
        demo.kill()
        demo.wait()
        client.close()


@pytest.mark.slow
def test_demo_workers_die_with_it_when_it_is_sigkilled(redis_url: str) -> None:
    demo, text = _start_demo(_demo_command(redis_url, "--no-jobs"))
    workers: list[int] = []
    try:
        assert "Try:" in text, text
        workers = child_pids(demo.pid)
        assert len(workers) == 2, text
        pool = [pid for worker in workers for pid in child_pids(worker)]
        assert len(pool) == 4  # -c 2 each
        demo.kill()  # no cleanup code runs: the kernel has to do it
        demo.wait()
        wait_for(lambda: all(_pid_gone(pid) for pid in workers + pool), timeout=20,
                 message="demo workers outlived a SIGKILLed demo")  # fmt: skip
    finally:
        demo.kill()
        demo.wait()
        for pid in workers:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
