"""The process: collector + gRPC server (+ JSON bridge when an HTTP address is set)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc

from .collector import Collector
from .config import Settings, SettingsError, parse_address
from .descriptors import connection_budget
from .security import logs
from .security.grpc_auth import SecurityInterceptor
from .security.policy import SecurityPolicy, policy_from_settings
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


#: Name of the in-process bridge's own credential (never in a tokens file).
BRIDGE_PRINCIPAL = "internal:bridge"


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SettingsError(f"cannot read the {what} {path!r}: {exc.strerror}") from None


def grpc_options(settings: Settings) -> list[tuple[str, Any]]:
    """Server options: message size, streams, and the connection limits of docs/security.md."""
    budget = connection_budget(settings.grpc_max_connections, settings.fd_reserve)
    return [
        *GRPC_OPTIONS,
        ("grpc.max_allowed_incoming_connections", budget),
        ("grpc.server_handshake_timeout_ms", int(settings.grpc_handshake_timeout * 1000)),
    ]


def http_limits(settings: Settings) -> Any:
    from .bridge.connections import ConnectionLimits

    return ConnectionLimits(
        max_connections=connection_budget(settings.http_max_connections, settings.fd_reserve),
        max_per_client=settings.http_max_connections_per_client,
        header_timeout=settings.http_header_timeout,
        keepalive_timeout=settings.http_keepalive_timeout,
    )


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS from the certificate files; client certificates required when a client CA is set."""
    if not settings.tls_cert or not settings.tls_key:
        return None
    key = _read(settings.tls_key, "TLS key")
    cert = _read(settings.tls_cert, "TLS certificate")
    client_ca = _read(settings.tls_client_ca, "client CA") if settings.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


class StatusServer:
    """Owns the collector and the servers; ``await start()`` then ``await stop()``."""

    def __init__(self, settings: Settings, *, app: Any = None, policy: SecurityPolicy | None = None) -> None:
        self.settings = settings
        #: Raises TokenError for unreadable or malformed credential files.
        self.policy = policy or policy_from_settings(settings)
        self.store = SnapshotStore()
        self.collector = Collector(settings, self.store, app=app)
        self.health = health.aio.HealthServicer()
        self._server: grpc.aio.Server | None = None
        self.servicer: CeleryStatusServicer | None = None
        self.bridge: Any = None
        self.grpc_port: int = 0
        self.grpc_target: str = ""
        self.http_port: int | None = None

    async def start(self) -> None:
        logs.install()
        settings = self.settings
        host, port = parse_address("grpc_address", settings.grpc_address)
        # The in-process bridge authenticates like anyone else, with a token that
        # exists only in this process; it limits its own callers, so it is exempt.
        bridge_token = secrets.token_urlsafe(32) if settings.http_address else None
        policy = self.policy.with_internal_token(bridge_token, BRIDGE_PRINCIPAL) if bridge_token else self.policy
        credentials = server_credentials(settings)
        server = grpc.aio.server(options=grpc_options(settings), interceptors=[SecurityInterceptor(policy)])
        self.servicer = CeleryStatusServicer(
            self.store,
            self.collector,
            redactor=policy.redactor,
            anonymous_sees_args=policy.anonymous_sees_args,
        )
        pb_grpc.add_CeleryStatusServiceServicer_to_server(self.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            server,
        )
        address = _format_address(host, port)
        if credentials is not None:
            self.grpc_port = server.add_secure_port(address, credentials)
        else:
            self.grpc_port = server.add_insecure_port(address)
        if self.grpc_port == 0:
            raise OSError(f"cannot bind gRPC address {settings.grpc_address}")
        connect_host = "127.0.0.1" if host in {"0.0.0.0", "", "::"} else host
        self.grpc_target = _format_address(connect_host, self.grpc_port)
        bridge_target = self.grpc_target
        if credentials is not None and bridge_token:
            # The public port wants TLS (and maybe a client certificate) that the
            # in-process bridge does not have; it gets a loopback port of its own,
            # where the interceptor still demands its token.
            internal_port = server.add_insecure_port("127.0.0.1:0")
            if internal_port == 0:
                raise OSError("cannot bind the loopback port of the in-process bridge")
            bridge_target = f"127.0.0.1:{internal_port}"
        await server.start()
        self._server = server
        self.collector.start()
        # Health reflects this process only: a Celery outage is data, not a reason to
        # restart the status service.
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if settings.http_address:
            from .bridge import BridgeSecurity, BridgeServer

            security = BridgeSecurity(
                policy=self.policy,
                trust_forwarded_for=settings.trust_forwarded_for,
                metrics_public=settings.metrics_public,
                docs_public=settings.docs_public,
                cors_origins=settings.cors_origins,
                backend_token=bridge_token,
            )
            self.bridge = BridgeServer(
                bridge_target,
                settings.http_address,
                security=security,
                tls_cert=settings.tls_cert,
                tls_key=settings.tls_key,
                limits=http_limits(settings),
            )
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
