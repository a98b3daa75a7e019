"""Running the bridge under uvicorn inside an existing asyncio loop.

``celery-status serve`` runs the gRPC server and the bridge in one process and
one loop, so uvicorn must neither own the loop nor take over the process's
signal handlers; the process's owner decides when to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import sys
from collections.abc import Iterator
from typing import Any, cast

import uvicorn
from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

from celerystatus import TLSConfig

from ..config import DEFAULT_HTTP_ADDRESS, SettingsError, parse_address
from ..security import logs
from ..startup import ListenError, load_server_tls
from .app import create_app
from .connections import ConnectionGuard, ConnectionLimits, guarded_protocol, listening_socket
from .security import MAX_WS_MESSAGE, BridgeSecurity
from .upstream import Timeouts


def _denial_aware(base: type[Any]) -> type[Any]:
    """uvicorn's WebSocket protocol, minus a false ERROR on every refused handshake.

    A handshake refused with an HTTP answer (``websocket.http.response.*``:
    our 401/429) is complete as far as the client is concerned, but uvicorn's
    sans-io protocol still logs "ASGI callable returned without completing
    handshake" at ERROR for it: 1,000 refused clients made 1,000 error lines.
    """

    class DenialAwareWebSocketProtocol(base):  # type: ignore[misc]
        async def send(self, message: Any) -> None:
            await super().send(message)
            if message.get("type") == "websocket.http.response.body" and not message.get("more_body", False):
                self.handshake_complete = True

    return DenialAwareWebSocketProtocol


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class BridgeServer:
    """The bridge's HTTP server; ``port`` is known after :meth:`start` (port 0 allowed)."""

    def __init__(
        self,
        target: str,
        http_address: str = DEFAULT_HTTP_ADDRESS,
        *,
        timeouts: Timeouts | None = None,
        log_level: str = "warning",
        access_log: bool = False,
        security: BridgeSecurity | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        backend_tls: TLSConfig | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self.target = target
        self.limits = limits or ConnectionLimits()
        self.guard = ConnectionGuard(self.limits)
        self.host, self.port = parse_address("http address", http_address)
        self.tls = bool(tls_cert)
        self._tls_files = (tls_cert, tls_key)
        self._app = create_app(
            target,
            timeouts=timeouts,
            security=security,
            backend_tls=backend_tls,
        )
        config = uvicorn.Config(
            self._app,
            host=self.host,
            port=self.port,
            lifespan="on",
            log_level=log_level,
            access_log=access_log,
            ssl_certfile=tls_cert,
            ssl_keyfile=tls_key,
            # The app never reads client messages beyond noticing a close.
            ws_max_size=MAX_WS_MESSAGE,
            # Secrets in X-Forwarded-* are not ours to trust unless configured.
            proxy_headers=False,
            server_header=False,
            # WebSocket clients are told to go away by the app itself; this
            # only bounds how long a stuck connection may delay a stop.
            timeout_graceful_shutdown=3,
            ws_ping_interval=20,
            ws=_denial_aware(cast(type[Any], AutoWebSocketsProtocol)) if AutoWebSocketsProtocol else "none",
            # uvicorn takes whole seconds here.
            timeout_keep_alive=max(1, math.ceil(self.limits.keepalive_timeout)),
            # The process's own handlers (celerystatus_server.logconfig) format, mask
            # and fold uvicorn's records like everyone else's.
            log_config=None,
        )
        self._server = _EmbeddedServer(config)
        self._main_loop: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and start serving; raises ListenError (an OSError) or SettingsError naming the flag."""
        config = self._server.config
        if not config.loaded:
            # uvicorn would raise a bare ssl.SSLError for a bad file.
            load_server_tls(*self._tls_files)
            config.load()
            config.http_protocol_class = guarded_protocol(config.http_protocol_class, self.guard)
        # What uvicorn's serve() does before startup(); serve() itself would
        # run its own main loop and turn failures into a process exit. The socket is
        # bound here so that a busy port is one error naming the flag, not uvicorn's log line and exit.
        # Our own listening socket, so connections are admitted at accept() (see connections.py).
        sock = listening_socket(self.host, self.port, self.guard)
        self._server.lifespan = config.lifespan_class(config)
        try:
            await self._server.startup(sockets=[sock])
        except SystemExit as exc:
            # uvicorn reports lifespan failures by exiting; inside a
            # shared process that must become an ordinary error.
            sock.close()
            raise OSError(f"cannot start the bridge on {self.host}:{self.port}") from exc
        if self._server.should_exit or not self._server.started:
            raise OSError(f"cannot start the bridge on {self.host}:{self.port}")
        sockets = self._server.servers[0].sockets
        self.port = sockets[0].getsockname()[1]
        self._main_loop = asyncio.create_task(self._server.main_loop(), name="bridge-http")

    async def stop(self) -> None:
        if self._main_loop is None:
            return
        self._server.should_exit = True
        await self._main_loop
        self._main_loop = None
        # Stop the hub before uvicorn waits for connections, so open WebSockets
        # get a clean close (1001) from the app instead of waiting for a timeout.
        bridge = getattr(self._app.state, "bridge", None)
        if bridge is not None:
            await bridge.close_sockets()
        await self._server.shutdown()


async def serve_bridge(target: str, http_address: str, stop: asyncio.Event, **options: Any) -> None:
    server = BridgeServer(target, http_address, **options)
    await server.start()
    print(f"celery-status bridge on {server.url} -> {target}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()


def run_bridge(target: str, http_address: str = DEFAULT_HTTP_ADDRESS, **options: Any) -> int:
    """Serve the bridge in front of ``target`` until SIGINT or SIGTERM; an exit code.

    ``options`` are :class:`BridgeServer`'s keyword arguments (security, TLS).
    """
    logs.install()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve_bridge(target, http_address, stop, **options)

    try:
        asyncio.run(main())
    except (SettingsError, ListenError) as exc:
        print(f"celery-status bridge: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"celery-status bridge: {exc}", file=sys.stderr)
        return 1
    return 0
