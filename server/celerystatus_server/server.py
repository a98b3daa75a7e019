"""The process: collector + gRPC server (+ JSON bridge when an HTTP address is set)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import time
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from celerystatus.keda import externalscaler_pb2_grpc as keda_grpc
from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus.v1 import celery_status_pb2_grpc as pb_grpc

from . import scaler
from .alerts import AlertEngine, AlertRunner, SnapshotRing, load_alert_config
from .alerts.notify import Notifier
from .alerts.state import StateFile
from .collector import Collector
from .config import Settings, SettingsError, parse_address
from .coordination import Leadership, Replica
from .descriptors import connection_budget
from .history import HistoryError, HistoryRecorder, HistoryStore, Retention, resolve_url
from .history.reader import HistoryReader
from .history.recorder import off_info
from .security import logs
from .security.grpc_auth import SecurityInterceptor
from .security.policy import SecurityPolicy, policy_from_settings
from .service import CeleryStatusServicer
from .snapshot import SnapshotStore
from .startup import bind_error, check_bindable, load_server_tls

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["CeleryStatusService"].full_name
#: Every service of this server, behind the same credentials and limits.
SERVED = (SERVICE_NAME, scaler.SERVICE_NAME)

#: Requests are tiny; a large one is a mistake or an attack.
MAX_RECEIVE_MESSAGE_BYTES = 64 * 1024
GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES),
    ("grpc.max_concurrent_streams", 1000),
    ("grpc.so_reuseport", 0),
]


#: Name of the in-process bridge's own credential (never in a tokens file).
BRIDGE_PRINCIPAL = "internal:bridge"


def trusted_snapshot_age(settings: Settings) -> float:
    """Oldest snapshot the autoscaler acts on: three missed rounds mean the collector is stuck."""
    return 3 * settings.refresh_interval + settings.round_deadline


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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
    """TLS from the certificate files; client certificates required when a client CA is set.

    Raises :class:`SettingsError` naming the flag when a file is missing, is not PEM, or the key
    does not belong to the certificate (gRPC itself would only say "Failed to bind").
    """
    tls = load_server_tls(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
    if tls is None:
        return None
    return grpc.ssl_server_credentials(
        [(tls.key, tls.cert)], root_certificates=tls.client_ca, require_client_auth=tls.client_ca is not None
    )


def _alert_runner(settings: Settings, store: SnapshotStore, clock: Callable[[], float]) -> AlertRunner:
    config = load_alert_config(settings.alerts_file)
    trends = SnapshotRing(horizon=config.longest_window() + 60.0)
    engine = AlertEngine(
        config.active_rules(), trends, clock=clock, resolved_retention=config.options.resolved_retention
    )
    state_path = settings.alerts_state_path()
    return AlertRunner(
        store,
        engine,
        notifier=Notifier(config.receivers, clock=clock),
        state=StateFile(state_path, settings.broker_url) if state_path else None,
        interval=min(config.options.evaluation_interval, settings.refresh_interval),
    )


class StatusServer:
    """Owns the collector and the servers; ``await start()`` then ``await stop()``."""

    def __init__(
        self,
        settings: Settings,
        *,
        app: Any = None,
        policy: SecurityPolicy | None = None,
        alert_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        #: Raises TokenError for unreadable or malformed credential files.
        self.policy = policy or policy_from_settings(settings)
        self.store = SnapshotStore()
        #: With --coordination-url the replica runs the collector when it leads; alone, the collector runs here.
        self.replica: Replica | None = None
        self.collector: Collector | None = None
        if settings.coordination_url and settings.enabled:
            self.replica = Replica(settings, self.store, app=app)
        else:
            self.collector = Collector(settings, self.store, app=app)
        #: Jobs that must run once per deployment (history, alerts) check this: see coordination.Leadership.
        self.leadership: Leadership = self.replica or Leadership()
        self.history: HistoryRecorder | None = None
        self.history_reader: HistoryReader | None = None
        url = resolve_url(settings.history_url, settings.data_dir) if settings.enabled else None
        if url is not None:
            retention = Retention(
                raw=settings.history_retention_raw,
                minute=settings.history_retention_minute,
                hour=settings.history_retention_hour,
                runs=settings.history_retention_runs,
            )
            try:
                history_store = HistoryStore(url, retention=retention, interval=settings.history_interval)
            except HistoryError as exc:
                raise SettingsError(str(exc)) from None
            except Exception as exc:  # SQLAlchemy's URL and driver errors
                raise SettingsError(f"history_url: {type(exc).__name__}: {exc}") from None
            self.history = HistoryRecorder(
                self.store, history_store, interval=settings.history_interval, buffer=settings.history_buffer
            )
            self.history_reader = HistoryReader(history_store)
        #: Raises RulesFileError for a bad rules file, before anything starts.
        self.alerts = _alert_runner(settings, self.store, alert_clock)
        self.health = health.aio.HealthServicer()
        self._server: grpc.aio.Server | None = None
        self.servicer: CeleryStatusServicer | None = None
        self.scaler: scaler.ExternalScalerServicer | None = None
        self.bridge: Any = None
        self.grpc_port: int = 0
        self.grpc_target: str = ""
        self.http_port: int | None = None

    async def start(self) -> None:
        logs.install()
        settings = self.settings
        if self.history is not None:
            # Migrations before anything listens: a database from a newer version
            # stops the start here (SchemaTooNew); an unreachable one does not.
            await asyncio.to_thread(self.history.prepare)
        host, port = parse_address("grpc_address", settings.grpc_address)
        # The in-process bridge authenticates like anyone else, with a token that
        # exists only in this process; it limits its own callers, so it is exempt.
        bridge_token = secrets.token_urlsafe(32) if settings.http_address else None
        policy = self.policy.with_internal_token(bridge_token, BRIDGE_PRINCIPAL) if bridge_token else self.policy
        credentials = server_credentials(settings)
        server = grpc.aio.server(options=grpc_options(settings), interceptors=[SecurityInterceptor(policy)])
        self.servicer = CeleryStatusServicer(
            self.store,
            self.replica or self.collector,
            redactor=policy.redactor,
            anonymous_sees_args=policy.anonymous_sees_args,
            history=self.history_reader,
            history_info=self.history.info if self.history is not None else off_info,
            alerts=self.alerts,
        )
        pb_grpc.add_CeleryStatusServiceServicer_to_server(self.servicer, server)
        self.scaler = scaler.ExternalScalerServicer(self.store, max_age=trusted_snapshot_age(settings))
        keda_grpc.add_ExternalScalerServicer_to_server(self.scaler, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (*SERVED, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            server,
        )
        address = _format_address(host, port)
        check_bindable("grpc_address", host, port)
        try:
            if credentials is not None:
                self.grpc_port = server.add_secure_port(address, credentials)
            else:
                self.grpc_port = server.add_insecure_port(address)
        except RuntimeError:  # grpcio raises "Failed to bind" where older versions returned 0
            self.grpc_port = 0
        if self.grpc_port == 0:
            raise bind_error("grpc_address", host, port)
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
        try:
            await self._start_bridge(bridge_target, bridge_token)
        except BaseException:
            await self.stop(grace=0)
            raise
        await self.alerts.start()
        # The collector starts once both ports are bound, so a start-up failure leaves no thread behind.
        (self.replica or self.collector).start()  # type: ignore[union-attr]
        if self.history is not None:
            self.history.start()
        # Health reflects this process only: a Celery outage is data, not a reason to
        # restart the status service.
        for name in ("", *SERVED):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("celery-status gRPC on %s", self.grpc_target)

    async def _start_bridge(self, bridge_target: str, bridge_token: str | None) -> None:
        settings = self.settings
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

    async def stop(self, grace: float = 2.0) -> None:
        for name in ("", *SERVED):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        if self.bridge is not None:
            await self.bridge.stop()
            self.bridge = None
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        await self.alerts.stop()
        await asyncio.to_thread((self.replica or self.collector).stop)  # type: ignore[union-attr]
        if self.history is not None:
            await asyncio.to_thread(self.history.stop)
        if self.history_reader is not None:
            self.history_reader.close()

    async def __aenter__(self) -> StatusServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_forever(self, ready: Callable[[StatusServer], None] | None = None) -> None:
        """Run until SIGINT/SIGTERM, then shut down gracefully; *ready* is called once both ports are bound."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        if ready is not None:
            ready(self)
        try:
            await stop.wait()
        finally:
            await self.stop()
