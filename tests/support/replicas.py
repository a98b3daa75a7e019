"""Replicated servers for tests and benchmarks: real ``celery-status serve`` processes, their streams,
and a count of the broker commands they cause.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import redis

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc
from tests.support.waiting import wait_for

__all__ = ["BrokerTally", "ServeProcess", "StreamRecord", "leader_of", "start_replicas"]

CLI = str(Path(sys.executable).parent / "celery-status")
_BANNER = re.compile(r"celery-status: gRPC on \S+ \(port (\d+)\)(?:, HTTP on \S+ \(port (\d+)\))?")


@dataclass
class StreamRecord:
    """One WatchStatus stream: (receipt monotonic time, status) for every message."""

    messages: list[tuple[float, pb.CeleryStatus]] = field(default_factory=list)
    error: BaseException | None = None

    def fresh(self) -> list[tuple[float, pb.CeleryStatus]]:
        """Messages carrying a new observation (the stream also repeats one when it is marked stale)."""
        seen: set[int] = set()
        out = []
        for at, status in self.messages:
            key = status.observed_at.ToNanoseconds()
            if key and key not in seen:
                seen.add(key)
                out.append((at, status))
        return out


class ServeProcess:
    """``celery-status serve`` with a private gRPC port; SIGKILL, SIGSTOP and SIGCONT on demand."""

    def __init__(self, name: str, args: Sequence[str], log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_dir / f"serve-{name}.log"
        log_dir.mkdir(parents=True, exist_ok=True)
        environ = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_STATUS_")}
        environ.update(env or {})
        self._log = open(self.log_path, "w")  # closed in close()
        self.process = subprocess.Popen(
            [CLI, "--log-level", "WARNING", "serve", "--grpc-address", "127.0.0.1:0", "--replica-name", name, *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=environ,
        )
        self.port = 0
        self.http_port: int | None = None
        self._channel: grpc.Channel | None = None
        self._streams: list[tuple[grpc.Channel, threading.Thread]] = []

    def wait_ready(self, timeout: float = 60.0) -> ServeProcess:
        def banner() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"serve {self.name} exited {self.process.returncode}:\n{self.log()}")
            found = _BANNER.search(self.log_path.read_text())
            if found:
                self.port = int(found.group(1))
                self.http_port = int(found.group(2)) if found.group(2) else None
            return bool(found)

        wait_for(banner, timeout=timeout, interval=0.1, message=f"serve {self.name} did not start")
        self._channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        return self

    def log(self) -> str:
        return self.log_path.read_text()[-4000:]

    @property
    def stub(self) -> pb_grpc.CeleryStatusServiceStub:
        assert self._channel is not None
        return pb_grpc.CeleryStatusServiceStub(self._channel)

    def status(self, timeout: float = 2.0, max_age: float | None = None) -> pb.CeleryStatus:
        request = pb.GetStatusRequest(view=pb.STATUS_VIEW_SUMMARY)
        if max_age is not None:
            request.max_age.FromNanoseconds(int(max_age * 1e9))
        reply: pb.GetStatusResponse = self.stub.GetStatus(request, timeout=timeout)
        return reply.status

    def role(self) -> int:
        return self.status().replica.role

    def watch(self) -> StreamRecord:
        """Record this replica's WatchStatus stream in a thread until close()."""
        record = StreamRecord()
        channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        stub = pb_grpc.CeleryStatusServiceStub(channel)

        def run() -> None:
            try:
                for reply in stub.WatchStatus(pb.WatchStatusRequest(view=pb.STATUS_VIEW_SUMMARY)):
                    record.messages.append((time.monotonic(), reply.status))
            except grpc.RpcError as exc:
                record.error = exc

        thread = threading.Thread(target=run, name=f"watch-{self.name}", daemon=True)
        thread.start()
        self._streams.append((channel, thread))
        return record

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.process.wait(10)

    def close(self) -> None:
        for channel, _ in self._streams:
            channel.close()
        if self._channel is not None:
            self._channel.close()
        if self.process.poll() is None:
            self.signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def start_replicas(
    names: Sequence[str], args: Sequence[str], log_dir: Path, *, http: bool = False
) -> list[ServeProcess]:
    """Start them all, then wait for each (they start in parallel)."""
    extra = ["--http-address", "127.0.0.1:0"] if http else []
    replicas = [ServeProcess(name, [*args, *extra], log_dir) for name in names]
    for replica in replicas:
        replica.wait_ready()
    return replicas


def leader_of(replicas: Sequence[ServeProcess], timeout: float = 30.0) -> ServeProcess:
    """The one replica that says it leads (waits until exactly one does)."""

    def one() -> ServeProcess | None:
        leaders = []
        for replica in replicas:
            if replica.process.poll() is not None:
                continue
            try:
                if replica.role() == pb.REPLICA_ROLE_LEADER:
                    leaders.append(replica)
            except grpc.RpcError:
                continue
        return leaders[0] if len(leaders) == 1 else None

    return wait_for(one, timeout=timeout, interval=0.1, message="exactly one leader")


class BrokerTally:
    """Counts the commands a Redis broker receives on one DB (MONITOR), by kind, while running."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url)
        self._db = int(url.rsplit("/", 1)[1] or 0)
        self.counts: Counter[str] = Counter()
        self._counting = False
        self._thread = threading.Thread(target=self._run, name="broker-monitor", daemon=True)
        self._stop = threading.Event()
        self._thread.start()

    def _run(self) -> None:
        with self._client.monitor() as monitor:
            for line in monitor.listen():
                if self._stop.is_set():
                    return
                if not self._counting or int(line.get("db", -1)) != self._db:
                    continue
                words = str(line.get("command", "")).split()
                if not words:
                    continue
                command = words[0].upper()
                self.counts["commands"] += 1
                target = words[1] if len(words) > 1 else ""
                if command == "PUBLISH" and "pidbox" in target:
                    self.counts["broadcasts"] += 1
                elif command == "LPUSH" and "reply.celery.pidbox" in target:
                    self.counts["replies"] += 1

    def window(self, seconds: float) -> Counter[str]:
        """Counts during the next *seconds*."""
        self.counts.clear()
        self._counting = True
        time.sleep(seconds)  # measuring a rate over a fixed window, not synchronising
        self._counting = False
        return Counter(self.counts)

    def close(self) -> None:
        self._stop.set()
        # MONITOR only returns on a command: send one so the thread sees the flag.
        self._client.ping()
        self._thread.join(5)
        self._client.close()

