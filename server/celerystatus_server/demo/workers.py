"""``celery worker`` subprocesses that can be stopped without leaving orphans.

Each worker runs in its own session, so its whole process group (the main
process and its prefork children) can be signalled at once, and a Ctrl-C on
the parent's terminal reaches the parent only, whose cleanup then decides.
Used by the demo and by the test suite's worker fixture.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from celery.utils.nodenames import host_format

__all__ = ["WorkerNotReadyError", "WorkerProcess", "child_pids"]


class WorkerNotReadyError(RuntimeError):
    """The worker exited, or did not answer ``ping`` before its deadline."""


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid``, read from /proc (Linux only)."""
    children = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                raw = stat.read()
        except OSError:
            continue  # exited while we were scanning
        # The command name (field 2) may contain spaces and parentheses;
        # the parent pid is the second field after its closing parenthesis.
        fields = raw[raw.rindex(b")") + 2 :].split()
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return sorted(children)


class WorkerProcess:
    """One ``celery -A APP worker`` subprocess, logging to a file."""

    def __init__(
        self,
        app: str,
        name: str,
        *,
        broker_url: str | None = None,
        concurrency: int = 2,
        pool: str = "prefork",
        queues: Sequence[str] = (),
        include: Sequence[str] = (),
        loglevel: str = "warning",
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        die_with_parent: bool = False,
    ) -> None:
        self.app = app
        self.name = name
        # Celery expands %h to the machine's hostname; ping replies are keyed by it.
        self.hostname = host_format(f"{name}@%h")
        self.broker_url = broker_url
        self.concurrency = concurrency
        self.pool = pool
        self.queues = tuple(queues)
        self.include = tuple(include)
        self.loglevel = loglevel
        self.extra_args = tuple(extra_args)
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.log_path = Path(log_path or Path(tempfile.gettempdir()) / f"celery-{name}.log")
        #: Killed by the kernel when the process that started it exits, even by
        #: SIGKILL (Linux; see tether.py). Only for a caller that starts workers
        #: from its main thread and lives as long as they should.
        self.die_with_parent = die_with_parent
        self._process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "celery", "-A", self.app]
        if self.broker_url:
            command += ["-b", self.broker_url]
        command += [
            "worker",
            "-P", self.pool,
            "-c", str(self.concurrency),
            "-n", f"{self.name}@%h",
            "-l", self.loglevel,
            "--without-mingle",
        ]  # fmt: skip
        if self.queues:
            command += ["-Q", ",".join(self.queues)]
        for module in self.include:
            command += ["-I", module]
        return command + list(self.extra_args)

    def start(self) -> WorkerProcess:
        if self._process is not None:
            raise RuntimeError(f"worker {self.hostname} was already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            command = self.command()
            if self.die_with_parent:
                from .tether import command as tethered

                command = tethered(command)
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        return self

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError(f"worker {self.hostname} was not started")
        return self._process

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def pool_pids(self) -> list[int]:
        """The pool's child processes (empty once the worker is gone)."""
        return child_pids(self.pid) if self.running else []

    def answers_ping(self, control_app: Any, timeout: float = 0.5) -> bool:
        """True when the worker answers the ``ping`` remote-control command."""
        replies = control_app.control.ping(destination=[self.hostname], timeout=timeout)
        return any(self.hostname in reply for reply in replies or ())

    def wait_ready(self, control_app: Any, timeout: float = 30.0) -> None:
        """Blocks until the worker answers ``ping``; raises if it exits or the deadline passes."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise WorkerNotReadyError(
                    f"worker {self.hostname} exited with {self.process.returncode}; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            if self.answers_ping(control_app):
                return
            if time.monotonic() >= deadline:
                raise WorkerNotReadyError(
                    f"worker {self.hostname} did not answer ping within {timeout:.0f}s; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )

    def _signal_group(self, signum: signal.Signals) -> None:
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass  # the whole group is already gone

    def kill(self) -> None:
        """SIGKILL the whole process group: the worker vanishes mid-task, like an OOM kill."""
        if self._process is None:
            return
        self._signal_group(signal.SIGKILL)
        self._process.wait()

    def terminate(self) -> None:
        """Asks for a warm shutdown (SIGTERM) without waiting; lets many stop in parallel."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 15.0) -> None:
        """Warm shutdown (SIGTERM); SIGKILL for whatever is left after ``timeout``."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Pool children that outlived their parent would keep consuming.
        self.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<WorkerProcess {self.hostname} {state}>"
