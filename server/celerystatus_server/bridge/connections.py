"""Accept-level limits on the bridge's HTTP connections: how many, per client, and for how long idle.

uvicorn keeps every accepted connection until the client closes it: one that
never sends a byte, or sends its request head one byte at a time, is never
timed out (its keep-alive timer starts only after a first response), and
``limit_concurrency`` answers 503 to *requests* while the idle connections
themselves stay open. A thousand such clients used to exhaust the process's
descriptors and, with them, the collector and the gRPC server.

:class:`ConnectionGuard` decides at ``accept()`` (the listening socket is a
:class:`GateSocket`), before a connection costs more than a moment's
descriptor, and follows it through uvicorn's HTTP protocol class (wrapped by
:func:`guarded_protocol`). Admission must happen at ``accept()``: asyncio
accepts up to a whole backlog of connections in one go and hands them to
protocols only later, so a limit applied there alone is overrun by a burst.
The rules:

* at most ``max_connections`` open, and ``max_per_client`` per client address;
  at a limit the connection idle the longest (no request in progress) is
  closed to make room, and when every one is busy the new one gets a 503 and
  is closed at once, so a flood of idle sockets can delay nobody for long;
* a connection must deliver a complete request head within
  ``header_timeout`` of opening or of its previous answer (slowloris);
* WebSockets count as busy for as long as they are open (their number is
  bounded by the stream limits);
* at most ``ACCEPTS_PER_TURN`` connections are accepted per event-loop turn,
  so closes and admissions stay in step with accepts.

With TLS a connection counts from ``accept()``, but can be closed for being
idle only once its handshake is done; until then asyncio's 60 s TLS handshake
timeout bounds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ..logconfig import StateLog
from ..startup import bind_listener

__all__ = ["ConnectionGuard", "ConnectionLimits", "GateSocket", "guarded_protocol", "listening_socket"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int = 1000
    max_per_client: int = 64
    #: Seconds to deliver a complete request head, from connecting or from the previous answer.
    header_timeout: float = 10.0
    #: Seconds an idle keep-alive connection stays open (uvicorn's ``timeout_keep_alive``).
    keepalive_timeout: float = 5.0


_BUSY_BODY = json.dumps({"error": "too many connections; retry later", "detail": None}).encode()
BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: application/json\r\n"
    b"retry-after: 1\r\n"
    b"connection: close\r\n"
    b"content-length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY
)
#: Connections accepted per event-loop turn at most (asyncio would take a whole backlog).
ACCEPTS_PER_TURN = 16
#: A connection admitted at accept() that never reached a protocol (a failed TLS
#: handshake) stops counting after this long: asyncio's TLS handshake timeout, plus margin.
PENDING_EXPIRY = 70.0


class _Connection:
    __slots__ = ("client", "open", "timer", "transport", "upgraded")

    def __init__(self, transport: asyncio.BaseTransport, client: str) -> None:
        self.transport = transport
        self.client = client
        self.timer: asyncio.TimerHandle | None = None
        self.open = True
        #: Now a WebSocket: never idle in the HTTP sense again.
        self.upgraded = False


class ConnectionGuard:
    """Bookkeeping of one HTTP server's connections; all calls come from its event loop."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._count = 0
        self._per_client: dict[str, int] = {}
        #: Admitted at accept(), not yet handed to a protocol: fd -> (client, monotonic time).
        self._pending: dict[int, tuple[str, float]] = {}
        #: Idle connections, the longest idle first.
        self._idle: OrderedDict[_Connection, None] = OrderedDict()
        self._idle_per_client: dict[str, OrderedDict[_Connection, None]] = {}
        self._at_limit = StateLog(log, "HTTP connection limit", remind_every=60.0)
        #: Counters, for tests and metrics.
        self.accepted = 0
        self.refused = 0
        self.evicted = 0
        self.timed_out = 0

    @property
    def open_connections(self) -> int:
        return self._count

    # -- admission, at accept() ------------------------------------------------
    def admit(self, client: str) -> bool:
        """Count a new connection from ``client``, closing an idle one to make room; False: refuse it."""
        limits = self.limits
        self._expire_pending()
        if self._per_client.get(client, 0) >= limits.max_per_client:
            if not self._evict(self._idle_per_client.get(client)):
                return self._refuse(f"{limits.max_per_client} connections from one client address")
        if self._count >= limits.max_connections:
            if not self._evict(self._idle):
                return self._refuse(f"{limits.max_connections} connections, none idle")
            self._at_limit.report(f"{limits.max_connections} open; closing the longest idle to admit new ones")
        elif self._at_limit.active and self._count < limits.max_connections // 2:
            self._at_limit.clear("below half the limit again")
        self._count += 1
        self._per_client[client] = self._per_client.get(client, 0) + 1
        self.accepted += 1
        return True

    def admitted(self, fd: int, client: str) -> None:
        self._pending[fd] = (client, time.monotonic())

    def _refuse(self, why: str) -> bool:
        self.refused += 1
        log.debug("refusing an HTTP connection: %s", why)
        return False

    def _release(self, client: str) -> None:
        self._count -= 1
        left = self._per_client.get(client, 1) - 1
        if left > 0:
            self._per_client[client] = left
        else:
            self._per_client.pop(client, None)

    def _expire_pending(self) -> None:
        if not self._pending:
            return
        horizon = time.monotonic() - PENDING_EXPIRY
        for fd, (client, since) in list(self._pending.items()):
            if since < horizon:
                del self._pending[fd]
                self._release(client)

    # -- lifecycle of an admitted connection -------------------------------------
    def attach(self, transport: asyncio.BaseTransport) -> _Connection:
        """The protocol for a connection admitted at accept() is up; idle until a request head arrives."""
        sock = transport.get_extra_info("socket")
        pending = self._pending.pop(sock.fileno(), None) if sock is not None else None
        if pending is not None:
            client = pending[0]
        else:
            # Not through the gate (a server started on another socket): count it now.
            peer = transport.get_extra_info("peername")
            client = str(peer[0]) if isinstance(peer, tuple) and peer else ""
            self._count += 1
            self._per_client[client] = self._per_client.get(client, 0) + 1
        conn = _Connection(transport, client)
        self.idle(conn)
        return conn

    def busy(self, conn: _Connection) -> None:
        """A request is in progress (or the connection became a WebSocket): no idle timer."""
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        self._idle.pop(conn, None)
        per_client = self._idle_per_client.get(conn.client)
        if per_client is not None:
            per_client.pop(conn, None)
            if not per_client:
                del self._idle_per_client[conn.client]

    def idle(self, conn: _Connection) -> None:
        """Waiting for a request head; closed if it is not complete within ``header_timeout``."""
        if not conn.open or conn.upgraded or conn in self._idle:
            return  # already idle: a trickle of bytes must not restart the clock
        self._idle[conn] = None
        self._idle_per_client.setdefault(conn.client, OrderedDict())[conn] = None
        loop = asyncio.get_running_loop()
        conn.timer = loop.call_later(self.limits.header_timeout, self._expire, conn)

    def closed(self, conn: _Connection) -> None:
        if not conn.open:
            return
        conn.open = False
        self.busy(conn)
        self._release(conn.client)

    # -- enforcement -----------------------------------------------------------
    def _expire(self, conn: _Connection) -> None:
        conn.timer = None
        if conn.open and conn in self._idle:
            self.timed_out += 1
            log.debug("closing HTTP connection from %s: no complete request head in %gs",
                      conn.client, self.limits.header_timeout)
            self.closed(conn)
            conn.transport.close()

    def _evict(self, idle: OrderedDict[_Connection, None] | None) -> bool:
        if not idle:
            return False
        victim = next(iter(idle))
        self.evicted += 1
        self.closed(victim)
        victim.transport.close()
        return True


class GateSocket(socket.socket):
    """A listening socket whose ``accept()`` asks the guard first.

    A refused connection gets a 503 (if the kernel takes it without waiting)
    and is closed at once, inside ``accept()``, so it never holds a descriptor
    beyond this call.
    """

    guard: ConnectionGuard
    _turn: int = 0

    def accept(self) -> tuple[socket.socket, object]:
        if self._turn == 0:
            asyncio.get_running_loop().call_soon(self._next_turn)
        while True:
            if self._turn >= ACCEPTS_PER_TURN:
                # asyncio reads this as "nothing more to accept now" and comes back next turn.
                raise ConnectionAbortedError("accept budget of this turn spent")
            self._turn += 1
            conn, addr = super().accept()
            client = str(addr[0]) if isinstance(addr, tuple) and addr else ""
            if self.guard.admit(client):
                self.guard.admitted(conn.fileno(), client)
                return conn, addr
            with contextlib.suppress(OSError):
                conn.send(BUSY_RESPONSE, socket.MSG_DONTWAIT)
            conn.close()

    def _next_turn(self) -> None:
        self._turn = 0


def listening_socket(host: str, port: int, guard: ConnectionGuard) -> GateSocket:
    """A bound TCP socket for ``host:port`` whose accepts go through ``guard``.

    Raises :class:`~celerystatus_server.startup.ListenError` naming ``--http-address`` if it cannot bind.
    """
    sock = bind_listener("http_address", host, port, socket_type=GateSocket)
    assert isinstance(sock, GateSocket)
    sock.guard = guard
    return sock


def guarded_protocol(base: type[Any], guard: ConnectionGuard) -> type[Any]:
    """A subclass of uvicorn's HTTP protocol class ``base`` that reports to ``guard``."""

    class GuardedHTTPProtocol(base):  # type: ignore[misc]
        _guard_conn: _Connection | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self._guard_conn = guard.attach(transport)
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._guard_conn is not None:
                guard.closed(self._guard_conn)
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._sync()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._sync()

        def _sync(self) -> None:
            conn = self._guard_conn
            if conn is None or not conn.open:
                return
            cycle = getattr(self, "cycle", None)
            if cycle is not None and not cycle.response_complete:
                guard.busy(conn)
            else:
                guard.idle(conn)

        def handle_websocket_upgrade(self, *event: Any) -> None:
            # h11's protocol passes the request event; httptools' passes nothing.
            conn = self._guard_conn
            if conn is not None:
                conn.upgraded = True
                guard.busy(conn)
            super().handle_websocket_upgrade(*event)
            if conn is None:
                return
            # The transport now talks to the WebSocket protocol, which is the one
            # told when the connection ends.
            ws = self.transport.get_protocol()
            lost = ws.connection_lost

            def connection_lost(exc: Exception | None) -> None:
                guard.closed(conn)
                lost(exc)

            ws.connection_lost = connection_lost

    return GuardedHTTPProtocol
