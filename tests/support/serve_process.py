"""``celery-status serve`` as a real subprocess, optionally under a lowered descriptor limit."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx

from .waiting import wait_for

__all__ = ["ServeProcess", "free_port"]

CLI = str(Path(sys.executable).parent / "celery-status")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """``with ServeProcess(broker, log_path, nofile=(1024, 1024)) as server:`` — serving once entered."""

    def __init__(
        self,
        broker_url: str,
        log_path: Path,
        *,
        args: Sequence[str] = (),
        nofile: tuple[int, int] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.broker_url = broker_url
        self.log_path = log_path
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.args = list(args)
        self.nofile = nofile
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def open_descriptors(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.pid}/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()

    def soft_nofile(self) -> int:
        with open(f"/proc/{self.pid}/limits") as limits:
            for line in limits:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
        raise AssertionError("no 'Max open files' line")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def start(self, timeout: float = 60.0) -> ServeProcess:
        nofile = self.nofile

        def limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

        env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_STATUS_")}
        env.update(self.env)
        command = [
            CLI, "serve",
            "--broker", self.broker_url,
            "--grpc-address", self.grpc_target,
            "--http-address", f"127.0.0.1:{self.http_port}",
            *self.args,
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=limit
            )

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited with {self.process.returncode}:\n{self.log_text()[-3000:]}")
            return httpx.get(f"{self.http_url}/livez", timeout=2).status_code == 200

        wait_for(ready, timeout=timeout, interval=0.1, ignore=(httpx.HTTPError,), message="serve not up")
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
