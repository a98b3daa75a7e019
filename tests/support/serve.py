"""Runs ``celery-status serve`` as a real process, on free loopback ports."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from celerystatus_server.local_redis import free_port
from tests.support.waiting import wait_for

__all__ = ["ServeProcess", "running_demo"]


class ServeProcess:
    """``ServeProcess(broker_url, log_dir, extra_args=[...], env={...}).start()``; ``url`` is the bridge."""

    def __init__(
        self,
        broker_url: str,
        log_path: Path,
        *,
        refresh_interval: float = 1.0,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.broker_url = broker_url
        self.log_path = log_path
        self.refresh_interval = refresh_interval
        self.extra_args = list(extra_args)
        self.env = env or {}
        self.http_port = free_port()
        self.grpc_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "celerystatus_server.cli", "serve",
            "--broker", self.broker_url,
            "--grpc-address", f"127.0.0.1:{self.grpc_port}",
            "--http-address", f"127.0.0.1:{self.http_port}",
            "--refresh-interval", str(self.refresh_interval),
            *self.extra_args,
        ]  # fmt: skip

    def start(self, timeout: float = 30.0) -> ServeProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_STATUS_") and k != "CELERY_BROKER_URL"}
        env.update(self.env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        wait_for(self._ready, timeout=timeout, message=f"celery-status serve not ready; log:\n{self.log_tail()}",
                 ignore=(httpx.HTTPError,), interval=0.1)  # fmt: skip
        return self

    def _ready(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise RuntimeError(f"celery-status serve exited with {self._process.returncode}:\n{self.log_tail()}")
        return httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200

    def freeze(self) -> None:
        """SIGSTOP: sockets stay open, nothing is answered or sent (a hung server)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 15.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a frozen server acts on SIGTERM only once it runs
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextmanager
def running_demo(redis_url: str, timeout: float = 90.0) -> Iterator[str]:
    """``celery-status demo`` on free ports (workers, job stream, server); yields the dashboard URL."""
    command = [
        sys.executable, "-m", "celerystatus_server.cli", "demo",
        "--redis-url", redis_url, "--grpc-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert process.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        url = None
        for line in process.stdout:
            seen.append(line)
            match = re.search(r"Dashboard\s+(http://\S+)", line)
            if match:
                url = match.group(1)
                break
            if time.monotonic() > deadline:
                break
        if url is None:
            raise RuntimeError("celery-status demo printed no dashboard URL:\n" + "".join(seen))
        # Keep reading so the demo never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in process.stdout or ()], daemon=True).start()
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
