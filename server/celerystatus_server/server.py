"""The process: collector + gRPC server (+ JSON bridge when an HTTP address is set)."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc

from .collector import Collector
from .config import Settings, parse_address
from .service import CeleryStatusServicer
from .snapshot import SnapshotStore

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["CeleryStatusService"].full_name

#: Requests are tiny; a large one is a mistake or an attack.
MAX_RECEIVE_MESSAGE_BYTES = 64 * 1024
GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES),
    ("grpc.max_concurrent_streams", 1000),
    ("grpc.so_reuseport", 0),
]


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class StatusServer:
    """Owns the collector and the servers; ``await start()`` then ``await stop()``."""

    def __init__(self, settings: Settings, *, app: Any = None) -> None:
        self.settings = settings
        self.store = SnapshotStore()
        self.collector = Collector(settings, self.store, app=app)
        self.health = health.aio.HealthServicer()
        self._server: grpc.aio.Server | None = None
        self.bridge: Any = None
        self.grpc_port: int = 0
        self.grpc_target: str = ""
        self.http_port: int | None = None

    async def start(self) -> None:
        host, port = parse_address("grpc_address", self.settings.grpc_address)
        server = grpc.aio.server(options=GRPC_OPTIONS)
        pb_grpc.add_CeleryStatusServiceServicer_to_server(
            CeleryStatusServicer(self.store, self.collector), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            server,
        )
        self.grpc_port = server.add_insecure_port(_format_address(host, port))
        if self.grpc_port == 0:
            raise OSError(f"cannot bind gRPC address {self.settings.grpc_address}")
        connect_host = "127.0.0.1" if host in {"0.0.0.0", "", "::"} else host
        self.grpc_target = _format_address(connect_host, self.grpc_port)
        await server.start()
        self._server = server
        self.collector.start()
        # Health reflects this process only: a Celery outage is data, not a reason to
        # restart the status service.
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self.settings.http_address:
            from .bridge import BridgeServer

            self.bridge = BridgeServer(self.grpc_target, self.settings.http_address)
            await self.bridge.start()
            self.http_port = self.bridge.port
        log.info("celery-status gRPC on %s", self.grpc_target)

    async def stop(self, grace: float = 2.0) -> None:
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        if self.bridge is not None:
            await self.bridge.stop()
            self.bridge = None
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        await asyncio.to_thread(self.collector.stop)

    async def __aenter__(self) -> StatusServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        """Run until SIGINT/SIGTERM, then shut down gracefully."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()
