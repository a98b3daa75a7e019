"""Hostile clients: idle connections and slow request heads, from many loopback addresses.

Linux routes all of 127.0.0.0/8 to the loopback interface, so binding the
client side to 127.0.x.y gives each simulated attacker its own address.
"""

from __future__ import annotations

import contextlib
import socket
import threading

__all__ = ["Flood", "attacker_addresses"]


def attacker_addresses(count: int, network: int = 0) -> list[str]:
    """``count`` loopback addresses other than 127.0.0.1 (``network`` picks the third octet)."""
    return [f"127.{network}.{1 + (i // 250)}.{2 + i % 250}" for i in range(count)]


class Flood:
    """Opens and holds connections; closes them all on exit."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        self.sockets: list[socket.socket] = []
        self.slow: list[socket.socket] = []
        self.failed_connects = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        #: Connections opened again after the server closed them (``keep_up``).
        self.reopened = 0

    def _connect(self, source: str) -> socket.socket | None:
        sock = socket.socket()
        try:
            sock.settimeout(10)
            sock.bind((source, 0))
            sock.connect((self.host, self.port))
        except OSError:
            sock.close()
            self.failed_connects += 1
            return None
        return sock

    def idle(self, count: int, sources: list[str]) -> None:
        """``count`` connections that never send a byte, spread over ``sources``."""
        for i in range(count):
            sock = self._connect(sources[i % len(sources)])
            if sock is not None:
                with self._lock:
                    self.sockets.append(sock)

    def keep_up(self, sources: list[str], interval: float = 0.05) -> None:
        """From now on, reopen every idle connection the server closes: a flood that does not give up."""
        thread = threading.Thread(target=self._keep_up, args=(sources, interval), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _keep_up(self, sources: list[str], interval: float) -> None:
        turn = 0
        while not self._stop.wait(interval):
            with self._lock:
                current = list(self.sockets)
            for i, sock in enumerate(current):
                if self._stop.is_set():
                    return
                if not self.closed_by_server(sock):
                    continue
                sock.close()
                turn += 1
                fresh = self._connect(sources[turn % len(sources)])
                with self._lock:
                    if fresh is not None:
                        self.sockets[i] = fresh
                        self.reopened += 1

    def slow_headers(self, count: int, sources: list[str], interval: float = 0.5) -> None:
        """``count`` connections that start a request head and then send one byte per ``interval``."""
        for i in range(count):
            sock = self._connect(sources[i % len(sources)])
            if sock is None:
                continue
            with contextlib.suppress(OSError):
                sock.sendall(b"GET /api/celery-status HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            self.slow.append(sock)
        thread = threading.Thread(target=self._trickle, args=(interval,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _trickle(self, interval: float) -> None:
        # Paced by the flood itself, not by the test: a real slowloris client's rhythm.
        while not self._stop.wait(interval):
            for sock in self.slow:
                with contextlib.suppress(OSError):
                    sock.send(b"a")

    @staticmethod
    def closed_by_server(sock: socket.socket) -> bool:
        """True once the server has closed this connection (EOF or reset)."""
        try:
            sock.setblocking(False)
            data = sock.recv(4096)
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            with contextlib.suppress(OSError):
                sock.setblocking(True)
        # A 503 or 408 answer followed by EOF also counts: the server ended it.
        return data == b"" or data.startswith(b"HTTP/1.1 ")

    def slow_still_open(self) -> int:
        return sum(1 for sock in self.slow if not self.closed_by_server(sock))

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)
        for sock in self.sockets + self.slow:
            with contextlib.suppress(OSError):
                sock.close()
        self.sockets.clear()
        self.slow.clear()

    def __enter__(self) -> Flood:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

