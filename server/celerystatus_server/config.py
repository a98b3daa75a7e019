"""Server settings: one frozen object built from flags, environment and defaults."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

ENV_PREFIX = "CELERY_STATUS_"

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
DEFAULT_GRPC_ADDRESS = "127.0.0.1:50051"
DEFAULT_HTTP_ADDRESS = "127.0.0.1:8080"

_FALSE = {"0", "false", "no", "off", ""}
_TRUE = {"1", "true", "yes", "on"}


class SettingsError(ValueError):
    """A setting has a value the server cannot use."""


def parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise SettingsError(f"{name}: expected true/false, got {value!r}")


def parse_address(name: str, value: str) -> tuple[str, int]:
    """Split ``host:port`` (``[::1]:port`` for IPv6); port 0 means any free port."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise SettingsError(f"{name}: expected HOST:PORT, got {value!r}")
    try:
        port = int(port_text)
    except ValueError:
        raise SettingsError(f"{name}: port must be a number, got {port_text!r}") from None
    if not 0 <= port <= 65535:
        raise SettingsError(f"{name}: port out of range: {port}")
    return host.strip("[]"), port


def is_loopback(host: str) -> bool:
    return host in {"localhost", "::1"} or host.startswith("127.")


_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def check_origin(origin: str) -> str:
    """A CORS origin must be exact (``https://host[:port]``): no wildcard, path or trailing slash."""
    if "*" in origin or not _ORIGIN.match(origin):
        raise SettingsError(f"CORS origin must be an exact scheme://host[:port], got {origin!r}")
    return origin


@dataclass(frozen=True)
class Settings:
    """Everything the collector and the servers need; immutable once built."""

    broker_url: str = DEFAULT_BROKER_URL
    #: ``module:attr`` of the user's Celery app, to learn its configured queues
    #: and transport options; the broker URL given here still wins.
    app: str | None = None
    grpc_address: str = DEFAULT_GRPC_ADDRESS
    http_address: str | None = None
    #: Seconds between two inspection rounds.
    refresh_interval: float = 2.0
    #: Floor for client-requested refreshes (GetStatus max_age).
    min_refresh_interval: float = 0.5
    #: How long one round waits for worker replies.
    inspect_timeout: float = 1.0
    #: Upper bound on a whole round, broker outage included.
    round_deadline: float = 2.0
    enabled: bool = True
    #: Without credentials configured, anonymous callers see task arguments.
    #: Off by default: they may be sensitive. With tokens, only admins see them.
    show_args: bool = False
    #: Full-timeout discovery broadcast, to find workers that send no events.
    discovery_interval: float = 30.0
    #: A worker silent for this many heartbeat periods is considered gone.
    heartbeat_misses: float = 3.0
    #: Between rounds, check a Redis broker this often (PING on the kept connection),
    #: so an outage is reported before the next round is due. 0 disables it.
    broker_probe_interval: float = 0.5
    #: Extra queue names whose depth is reported besides those workers consume.
    queues: tuple[str, ...] = field(default_factory=tuple)

    # -- security (see docs/security.md) --------------------------------------
    #: File of ``<sha256-hex> <role> [name]`` lines.
    tokens_file: str | None = None
    #: ``sha256hex:role[:name],...`` (env CELERY_STATUS_TOKENS).
    tokens: str | None = None
    #: File of ``<common name> <role>`` lines for gRPC client certificates.
    client_cert_roles: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    #: CA that signs client certificates; setting it makes gRPC require them.
    tls_client_ca: str | None = None
    #: Serve a non-loopback address without any credentials.
    allow_unauthenticated: bool = False
    #: Key anonymous HTTP callers by X-Forwarded-For (only behind a trusted proxy).
    trust_forwarded_for: bool = False
    #: Requests per second and burst, per principal (0: no limit).
    rate_limit: float = 20.0
    rate_burst: float = 40.0
    #: Forced-fresh requests (max_age) per second and burst, per principal.
    fresh_rate_limit: float = 1.0
    fresh_burst: float = 2.0
    max_streams_per_principal: int = 8
    max_streams: int = 256
    #: fnmatch patterns of argument values viewers may see (e.g. ``eval-*``).
    allow_arg_patterns: tuple[str, ...] = field(default_factory=tuple)
    #: Viewers see Celery's argsrepr/kwargsrepr text.
    allow_argsrepr: bool = False
    #: /metrics without credentials even when tokens are configured.
    metrics_public: bool = False
    #: Exact origins allowed to call the JSON API from a browser.
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    #: /docs and /openapi.json without credentials even when tokens are configured.
    docs_public: bool = False

    # -- connection limits (see docs/security.md, "Connections and descriptors") --
    #: Open HTTP connections in total; never more than half the descriptors left after ``fd_reserve``.
    http_max_connections: int = 1000
    #: Open HTTP connections per client address (behind a proxy: the proxy's connections).
    http_max_connections_per_client: int = 64
    #: Seconds a client has to send a complete request head, from connecting or from the previous answer.
    http_header_timeout: float = 10.0
    #: Seconds an idle keep-alive HTTP connection is kept open.
    http_keepalive_timeout: float = 5.0
    #: Open gRPC connections in total (same ceiling from the descriptor limit as HTTP).
    grpc_max_connections: int = 1000
    #: Seconds a new gRPC connection has to finish its TLS/HTTP/2 handshake.
    grpc_handshake_timeout: float = 10.0
    #: Descriptors kept free for the collector's broker connections and the process itself.
    fd_reserve: int = 256

    def __post_init__(self) -> None:
        if self.refresh_interval <= 0:
            raise SettingsError("refresh_interval must be > 0")
        if self.min_refresh_interval < 0:
            raise SettingsError("min_refresh_interval must be >= 0")
        if self.inspect_timeout <= 0:
            raise SettingsError("inspect_timeout must be > 0")
        if self.round_deadline < self.inspect_timeout:
            raise SettingsError("round_deadline must be >= inspect_timeout")
        parse_address("grpc_address", self.grpc_address)
        if self.http_address:
            parse_address("http_address", self.http_address)
        if self.enabled and not self.broker_url:
            raise SettingsError("broker_url is required unless Celery status is disabled")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SettingsError("tls_cert and tls_key must be given together")
        if self.client_cert_roles and not self.tls_client_ca:
            raise SettingsError("client_cert_roles needs tls_client_ca (no client certificate is asked for without it)")
        if self.tls_client_ca and not self.tls_cert:
            raise SettingsError("tls_client_ca needs tls_cert and tls_key (client certificates need TLS)")
        for name in ("rate_limit", "rate_burst", "fresh_rate_limit", "fresh_burst"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} must be >= 0")
        if self.max_streams < 1 or self.max_streams_per_principal < 1:
            raise SettingsError("stream limits must be >= 1")
        for origin in self.cors_origins:
            check_origin(origin)
        for name in ("http_max_connections", "http_max_connections_per_client", "grpc_max_connections"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be >= 1")
        if self.fd_reserve < 0:
            raise SettingsError("fd_reserve must be >= 0")
        for name in ("http_header_timeout", "http_keepalive_timeout", "grpc_handshake_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise SettingsError(f"{name} must be a finite number > 0, got {value!r}")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Defaults, then ``CELERY_STATUS_*`` variables, then *overrides* (flags) that are not None."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        env_names = {
            "broker_url": "BROKER_URL",
            "app": "APP",
            "grpc_address": "GRPC_ADDRESS",
            "http_address": "HTTP_ADDRESS",
            "refresh_interval": "REFRESH_INTERVAL",
            "min_refresh_interval": "MIN_REFRESH_INTERVAL",
            "inspect_timeout": "INSPECT_TIMEOUT",
            "enabled": "ENABLED",
            "show_args": "SHOW_ARGS",
            "queues": "QUEUES",
            "tokens_file": "TOKENS_FILE",
            "tokens": "TOKENS",
            "client_cert_roles": "CLIENT_CERT_ROLES",
            "tls_cert": "TLS_CERT",
            "tls_key": "TLS_KEY",
            "tls_client_ca": "TLS_CLIENT_CA",
            "allow_unauthenticated": "ALLOW_UNAUTHENTICATED",
            "trust_forwarded_for": "TRUST_FORWARDED_FOR",
            "rate_limit": "RATE_LIMIT",
            "rate_burst": "RATE_BURST",
            "fresh_rate_limit": "FRESH_RATE_LIMIT",
            "fresh_burst": "FRESH_BURST",
            "max_streams_per_principal": "MAX_STREAMS_PER_PRINCIPAL",
            "max_streams": "MAX_STREAMS",
            "allow_arg_patterns": "ALLOW_ARG_PATTERNS",
            "allow_argsrepr": "ALLOW_ARGSREPR",
            "metrics_public": "METRICS_PUBLIC",
            "cors_origins": "CORS_ORIGINS",
            "docs_public": "DOCS_PUBLIC",
            "http_max_connections": "HTTP_MAX_CONNECTIONS",
            "http_max_connections_per_client": "HTTP_MAX_CONNECTIONS_PER_CLIENT",
            "http_header_timeout": "HTTP_HEADER_TIMEOUT",
            "http_keepalive_timeout": "HTTP_KEEPALIVE_TIMEOUT",
            "grpc_max_connections": "GRPC_MAX_CONNECTIONS",
            "grpc_handshake_timeout": "GRPC_HANDSHAKE_TIMEOUT",
            "fd_reserve": "FD_RESERVE",
        }
        kinds = {f.name: f.type for f in fields(cls)}
        for attr, suffix in env_names.items():
            raw = env.get(ENV_PREFIX + suffix)
            if raw is None:
                continue
            values[attr] = _convert(ENV_PREFIX + suffix, kinds[attr], raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name in ("queues", "allow_arg_patterns", "cors_origins"):
            if name in values and isinstance(values[name], list):
                values[name] = tuple(values[name])
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _convert(name: str, kind: Any, raw: str) -> Any:
    kind = str(kind)
    if kind == "bool":
        return parse_bool(name, raw)
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name}: expected a whole number, got {raw!r}") from None
    if kind == "float":
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
    if kind.startswith("tuple"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind == "str | None":
        return raw or None
    return raw
