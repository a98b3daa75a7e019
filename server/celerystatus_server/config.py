"""Server settings: one frozen object built from flags, environment and defaults."""

from __future__ import annotations

import os
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
    #: Show task arguments to callers. Off by default: they may be sensitive.
    show_args: bool = False
    #: Full-timeout discovery broadcast, to find workers that send no events.
    discovery_interval: float = 30.0
    #: A worker silent for this many heartbeat periods is considered gone.
    heartbeat_misses: float = 3.0
    #: Extra queue names whose depth is reported besides those workers consume.
    queues: tuple[str, ...] = field(default_factory=tuple)

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
        }
        kinds = {f.name: f.type for f in fields(cls)}
        for attr, suffix in env_names.items():
            raw = env.get(ENV_PREFIX + suffix)
            if raw is None:
                continue
            values[attr] = _convert(ENV_PREFIX + suffix, kinds[attr], raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "queues" in values and isinstance(values["queues"], list):
            values["queues"] = tuple(values["queues"])
        return cls(**values)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _convert(name: str, kind: Any, raw: str) -> Any:
    kind = str(kind)
    if kind == "bool":
        return parse_bool(name, raw)
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
