"""Server settings: one typed model, read from flags, ``CELERY_STATUS_*`` variables, a TOML file and defaults.

Every setting is one field of :class:`Settings`: its type and bounds, its default, its help text
(the field's description) and its command-line spelling (a :class:`Flag` in the field's metadata).
The environment variable is ``CELERY_STATUS_`` + the field name in capitals. The command-line flags,
the settings reference in docs/settings.md and the error messages are all derived from here.

To add a setting: add a field below with a bounded type (``Seconds``, ``Count``, ... or your own
``Annotated[...]``), ``Field(default, description=...)`` (the help text), and a ``Flag(...)`` only when
the flag is not ``--field-name``, needs a metavar, or also belongs to ``celery-status bridge``. Then
regenerate the reference: ``python -m celerystatus_server.flags > docs/settings.md``. The tests in
tests/core/test_settings.py cover a new numeric field (nan, inf, negatives, zero, garbage) by themselves.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from .urls import check_broker_url, mask_url

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ENV_PREFIX = "CELERY_STATUS_"
#: Names the TOML settings file when ``--config`` is not given.
CONFIG_ENV = ENV_PREFIX + "CONFIG"

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
DEFAULT_GRPC_ADDRESS = "127.0.0.1:50051"
DEFAULT_HTTP_ADDRESS = "127.0.0.1:8080"

#: Upper bound of every duration: longer is a typo, and it must fit a protobuf Duration and a timer.
ONE_DAY = 86_400.0


def default_data_dir(environ: Mapping[str, str] | None = None) -> str:
    """Per-user data directory: ``$XDG_DATA_HOME/celery-status``, else ``~/.local/share/celery-status``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "celery-status")


class SettingsError(ValueError):
    """A setting has a value the server cannot use; the message is one line naming it."""


# -- values shared with the rest of the server ---------------------------------


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


# -- how a setting appears on the command line -------------------------------


@dataclass(frozen=True)
class Flag:
    """Command-line spelling of a setting, kept in the field's metadata.

    ``name`` defaults to ``--field-name``. A boolean also gets ``off`` (default ``--no-<name>``), which
    sets it to false so a flag can override a variable or file. A tuple field's flag is repeatable.
    """

    name: str = ""
    metavar: str | None = None
    off: str = ""
    #: Also a flag of ``celery-status bridge`` (which serves HTTP only).
    bridge: bool = False
    group: str = "collector"


GROUPS = {
    "collector": "collector and listeners",
    "security": "security (see docs/security.md)",
    "grpc": "gRPC client certificates and redaction",
    "history": "history (samples of the cluster over time, see docs/history.md)",
    "alerts": "alerts (see docs/alerts.md)",
    "replicas": "replicas (see docs/replicas.md)",
    "connections": "connection limits (see docs/security.md, \"Connections and descriptors\")",
}


# -- value types: what a variable, a flag or a file may say ---------------------


def _number(value: Any) -> Any:
    """Refuse what a number type would let through: true/false, nan and infinities (which compare false)."""
    # int(True) == 1: a boolean where a number belongs is a mistake, not a 1.
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    if isinstance(value, str):
        value = value.strip()
        try:
            number = float(value)
        except ValueError:
            return value  # the type's own message says it is not a number
    else:
        number = value
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError("must be a finite number")
    return value


def _empty_is_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _empty_is_false(value: Any) -> Any:
    # CELERY_STATUS_SHOW_ARGS= (set but empty) has always meant false.
    if isinstance(value, str):
        value = value.strip().lower()
        return False if value == "" else value
    return value


def _comma_list(value: Any) -> Any:
    """``a,b`` (a variable) splits on commas; a list (repeated flags, TOML) is taken as is."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list):
        return tuple(value)
    return value


Seconds = Annotated[float, BeforeValidator(_number), Field(gt=0, le=ONE_DAY, allow_inf_nan=False)]
#: A duration where 0 means "off" or "no floor".
SecondsOrOff = Annotated[float, BeforeValidator(_number), Field(ge=0, le=ONE_DAY, allow_inf_nan=False)]
#: A rate or a burst, where 0 means "no limit".
PerSecond = Annotated[float, BeforeValidator(_number), Field(ge=0, allow_inf_nan=False)]
Count = Annotated[int, BeforeValidator(_number), Field(ge=1, le=1_000_000)]
Switch = Annotated[bool, BeforeValidator(_empty_is_false)]
Text = Annotated[str | None, BeforeValidator(_empty_is_none)]
Names = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_list)]
#: How long stored history is kept: up to ten years.
Retention = Annotated[float, BeforeValidator(_number), Field(gt=0, le=3650 * ONE_DAY, allow_inf_nan=False)]

_APP = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*)?$")
#: Coordination keys and replica names end up in Redis keys, PostgreSQL channel names and logs.
_NAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,48}$")
MIN_LEASE_TTL = 0.5
COORDINATION_SCHEMES = ("redis", "rediss", "postgresql", "postgres", "postgresql+psycopg")


class Settings(BaseSettings):
    """Everything the collector and the servers need; immutable once built.

    ``Settings(**values)`` validates *values* over the defaults and nothing else (no environment),
    so code and tests get exactly what they ask for. :meth:`load` is the process's view:
    flags over ``CELERY_STATUS_*`` variables over a TOML file over defaults.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", validate_default=True, case_sensitive=False
    )

    broker_url: Annotated[str, Flag("--broker", "URL")] = Field(
        DEFAULT_BROKER_URL,
        description="broker URL: redis://, rediss://, redis+socket://, sentinel://, amqp://, amqps://, pyamqp:// "
        "(several separated by ';' for failover); its password is masked everywhere",
    )
    app: Annotated[Text, Flag(metavar="MODULE:ATTR")] = Field(
        None,
        description="your Celery app, to learn its queues, key prefix and transport options "
        "(the broker URL given here still wins)",
    )
    grpc_address: Annotated[str, Flag(metavar="HOST:PORT")] = Field(
        DEFAULT_GRPC_ADDRESS, description="gRPC listen address (port 0: any free port)"
    )
    http_address: Annotated[Text, Flag(metavar="HOST:PORT", bridge=True)] = Field(
        None,
        description="serve the JSON bridge here too (the standalone bridge defaults to " + DEFAULT_HTTP_ADDRESS + ")",
    )
    refresh_interval: Annotated[Seconds, Flag(metavar="SECONDS")] = Field(
        2.0, description="seconds between two inspection rounds"
    )
    min_refresh_interval: Annotated[SecondsOrOff, Flag(metavar="SECONDS")] = Field(
        0.5, description="floor for client-requested fresh rounds (GetStatus max_age, ?max_age=)"
    )
    inspect_timeout: Annotated[Seconds, Flag(metavar="SECONDS")] = Field(
        1.0, description="how long one round waits for worker replies (and for the broker to connect)"
    )
    round_deadline: Annotated[Seconds, Flag(metavar="SECONDS")] = Field(
        2.0, description="upper bound on a whole round, broker outage included; at least --inspect-timeout"
    )
    enabled: Annotated[Switch, Flag("--enabled", off="--disabled")] = Field(
        True, description="collect; disabled answers {\"enabled\": false, ...} and never touches a broker"
    )
    show_args: Annotated[Switch, Flag(bridge=True, group="security")] = Field(
        False,
        description="without tokens, anonymous callers see task arguments (hidden by default: they may be "
        "sensitive); with tokens only admins do",
    )
    discovery_interval: Annotated[Seconds, Flag(metavar="SECONDS")] = Field(
        30.0, description="seconds between full-timeout discovery broadcasts, to find workers that send no events"
    )
    heartbeat_misses: Annotated[
        float, BeforeValidator(_number), Field(ge=1, le=1000, allow_inf_nan=False),
        Flag(metavar="N"),
    ] = Field(3.0, description="a worker silent for this many heartbeat periods is considered gone")
    missed_rounds: Annotated[int, BeforeValidator(_number), Field(ge=1, le=100), Flag(metavar="N")] = Field(
        2,
        description="a worker that does not answer stays listed until it has missed this many rounds in a row "
        "and sent no heartbeat for 1.5 heartbeat periods",
    )
    broker_probe_interval: Annotated[SecondsOrOff, Flag(metavar="SECONDS")] = Field(
        0.5,
        description="between rounds, PING a Redis broker this often so an outage is reported before the next "
        "round (0: off)",
    )
    queues: Annotated[Names, Flag("--queue", "NAME")] = Field(
        (), description="also report the depth of this queue (besides those the workers consume)"
    )

    # -- replicas (see docs/replicas.md) --------------------------------------
    coordination_url: Annotated[Text, Flag(metavar="URL", group="replicas")] = Field(
        None,
        description="run as one of several replicas: elect a leader and share its snapshots through this "
        "Redis (redis://, rediss://) or PostgreSQL (postgresql://) store; off: one process collects alone",
    )
    coordination_ttl: Annotated[SecondsOrOff, Flag(metavar="SECONDS", group="replicas")] = Field(
        0.0,
        description="lease of the leader: a follower takes over this long after the leader stops renewing "
        "(0: 2 x --refresh-interval)",
    )
    coordination_key: Annotated[str, Flag(metavar="NAME", group="replicas")] = Field(
        "celery-status",
        description="name of the replica set in the coordination store (Redis key prefix, PostgreSQL row and "
        "channels); replicas with the same key share one collector",
    )
    replica_name: Annotated[Text, Flag(metavar="NAME", group="replicas")] = Field(
        None, description="this replica's name in statuses and logs (default: host name and process id)"
    )

    # -- security (see docs/security.md) --------------------------------------
    tokens_file: Annotated[Text, Flag(metavar="PATH", bridge=True, group="security")] = Field(
        None, description="file of '<sha256-hex> <role> [name]' lines; roles viewer, admin"
    )
    tokens: Annotated[Text, Flag(metavar="HASH:ROLE[:NAME],...", bridge=True, group="security")] = Field(
        None, description="more tokens, as sha256hex:role[:name],... (added to --tokens-file's)"
    )
    client_cert_roles: Annotated[Text, Flag(metavar="PATH", group="grpc")] = Field(
        None,
        description="file of '<common name> <role>' lines for gRPC client certificates; without it every "
        "verified certificate is a viewer",
    )
    tls_cert: Annotated[Text, Flag(metavar="PEM", bridge=True, group="security")] = Field(
        None, description="serve TLS (gRPC and HTTP) with this certificate chain"
    )
    tls_key: Annotated[Text, Flag(metavar="PEM", bridge=True, group="security")] = Field(
        None, description="private key of --tls-cert"
    )
    tls_client_ca: Annotated[Text, Flag(metavar="PEM", group="grpc")] = Field(
        None, description="require gRPC client certificates signed by this CA"
    )
    allow_unauthenticated: Annotated[Switch, Flag(bridge=True, group="security")] = Field(
        False, description="serve a non-loopback address without any credentials configured"
    )
    trust_forwarded_for: Annotated[Switch, Flag(bridge=True, group="security")] = Field(
        False, description="rate-limit anonymous HTTP callers by X-Forwarded-For (only behind your own proxy)"
    )
    rate_limit: Annotated[PerSecond, Flag(metavar="PER_SECOND", bridge=True, group="security")] = Field(
        20.0, description="requests per second per caller (0: no limit)"
    )
    rate_burst: Annotated[PerSecond, Flag(metavar="N", bridge=True, group="security")] = Field(
        40.0, description="requests a caller may make at once (at least 1 unless --rate-limit is 0)"
    )
    fresh_rate_limit: Annotated[PerSecond, Flag(metavar="PER_SECOND", bridge=True, group="security")] = Field(
        1.0, description="forced-fresh (max_age) requests per second per caller (0: no limit)"
    )
    fresh_burst: Annotated[PerSecond, Flag(metavar="N", bridge=True, group="security")] = Field(
        2.0, description="forced-fresh requests a caller may make at once (at least 1 unless the rate is 0)"
    )
    max_streams_per_principal: Annotated[
        Count, Flag("--max-streams-per-caller", "N", bridge=True, group="security")
    ] = Field(8, description="open streams/WebSockets per caller")
    max_streams: Annotated[Count, Flag(metavar="N", bridge=True, group="security")] = Field(
        256, description="open streams/WebSockets in total"
    )
    allow_arg_patterns: Annotated[Names, Flag("--allow-arg", "PATTERN", group="grpc")] = Field(
        (), description="argument values matching this fnmatch pattern stay visible to viewers, e.g. 'eval-*'"
    )
    allow_argsrepr: Annotated[Switch, Flag(group="grpc")] = Field(
        False, description="viewers see Celery's argsrepr/kwargsrepr text (producers may mask it)"
    )
    metrics_public: Annotated[Switch, Flag(bridge=True, group="security")] = Field(
        False, description="/metrics without credentials even when tokens are configured"
    )
    cors_origins: Annotated[Names, Flag("--cors-origin", "ORIGIN", bridge=True, group="security")] = Field(
        (), description="exact browser origin allowed to read the API, e.g. https://ops.example"
    )
    docs_public: Annotated[Switch, Flag(bridge=True, group="security")] = Field(
        False, description="/docs and /openapi.json without credentials even when tokens are configured"
    )

    # -- connection limits (docs/security.md, "Connections and descriptors") -----------
    http_max_connections: Annotated[Count, Flag(metavar="N", bridge=True, group="connections")] = Field(
        1000, description="open HTTP connections in total; never more than half the descriptors left after --fd-reserve"
    )
    http_max_connections_per_client: Annotated[Count, Flag(metavar="N", bridge=True, group="connections")] = Field(
        64, description="open HTTP connections per client address (behind a proxy: the proxy's connections)"
    )
    http_header_timeout: Annotated[Seconds, Flag(metavar="SECONDS", bridge=True, group="connections")] = Field(
        10.0, description="seconds a client has to send a complete request head, from connecting or the last answer"
    )
    http_keepalive_timeout: Annotated[Seconds, Flag(metavar="SECONDS", bridge=True, group="connections")] = Field(
        5.0, description="seconds an idle keep-alive HTTP connection is kept open"
    )
    grpc_max_connections: Annotated[Count, Flag(metavar="N", group="connections")] = Field(
        1000, description="open gRPC connections in total (same ceiling from the descriptor limit as HTTP)"
    )
    grpc_handshake_timeout: Annotated[Seconds, Flag(metavar="SECONDS", group="connections")] = Field(
        10.0, description="seconds a new gRPC connection has to finish its TLS/HTTP/2 handshake"
    )
    fd_reserve: Annotated[
        int, BeforeValidator(_number), Field(ge=0, le=1_000_000), Flag(metavar="N", bridge=True, group="connections")
    ] = Field(256, description="descriptors kept free for the collector's broker connections and the process")

    # -- history (docs/history.md) ----------------------------------------------------
    history_url: Annotated[Text, Flag(metavar="URL", group="history")] = Field(
        None,
        description="history store: sqlite:///PATH or postgresql+psycopg://USER@HOST/DB; 'none' turns history "
        "off; default: a SQLite file in --data-dir",
    )
    data_dir: Annotated[Text, Flag(metavar="DIR", group="history")] = Field(
        None,
        description="the service's own files (the default SQLite history, the alert state); default "
        "$XDG_DATA_HOME/celery-status or ~/.local/share/celery-status",
    )
    history_interval: Annotated[
        # Samples are keyed by whole-second buckets.
        float, BeforeValidator(_number), Field(ge=1, le=ONE_DAY, allow_inf_nan=False),
        Flag(metavar="SECONDS", group="history"),
    ] = Field(10.0, description="seconds between recorded samples (at least 1)")
    history_retention_raw: Annotated[Retention, Flag(metavar="SECONDS", group="history")] = Field(
        24 * 3600.0, description="keep raw samples this long (24 h)"
    )
    history_retention_minute: Annotated[Retention, Flag(metavar="SECONDS", group="history")] = Field(
        30 * ONE_DAY, description="keep 1-minute roll-ups this long (30 days)"
    )
    history_retention_hour: Annotated[Retention, Flag(metavar="SECONDS", group="history")] = Field(
        365 * ONE_DAY, description="keep 1-hour roll-ups this long (1 year)"
    )
    history_retention_runs: Annotated[Retention, Flag(metavar="SECONDS", group="history")] = Field(
        7 * ONE_DAY, description="keep task runs this long (7 days)"
    )
    history_buffer: Annotated[Count, Flag(metavar="N", group="history")] = Field(
        1000, description="samples and runs waiting for the database before the oldest are dropped"
    )

    # -- alerts (docs/alerts.md) --------------------------------------------------------
    alerts_file: Annotated[Text, Flag(metavar="PATH", group="alerts")] = Field(
        None, description="YAML rules file: rule overrides, threshold rules, receivers; default: the built-in rules"
    )
    alerts_state_file: Annotated[Text, Flag(metavar="PATH", group="alerts")] = Field(
        None, description="alert state kept across restarts; default <data-dir>/alerts-state.json; 'none': memory only"
    )

    # -- construction -----------------------------------------------------------

    def __init__(self, _origins: Mapping[str, str] | None = None, **values: Any) -> None:
        # _origins: where each value came from (load() passes it), for the error message.
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(describe(exc, _origins)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The constructor sees only its arguments; load() layers the environment and the file.
        return (init_settings,)

    @classmethod
    def load(cls, flags: Mapping[str, Any] | None = None, *, config_file: str | None = None) -> Settings:
        """Flags (None means "not given") over ``CELERY_STATUS_*`` variables over *config_file* over defaults.

        Raises :class:`SettingsError` with one line naming the setting, its flag and variable and
        where the bad value came from.
        """
        origins: dict[str, str] = {}
        values: dict[str, Any] = {}
        layers: list[tuple[str, Mapping[str, Any]]] = []
        if config_file:
            layers.append((f"config file {config_file}", read_config_file(config_file)))
        layers.append(("the environment", EnvSettingsSource(cls)()))
        layers.append(("the command line", {k: v for k, v in (flags or {}).items() if v is not None}))
        for origin, layer in layers:
            for name, value in layer.items():
                values[name] = value
                origins[name] = origin
        return cls(_origins=origins, **values)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Compatibility: :meth:`load` without a file; *environ* is not supported other than ``os.environ``."""
        if environ is not None:
            raise TypeError("Settings.from_env reads os.environ only; use Settings.load")
        return cls.load(overrides)

    def resolved_data_dir(self) -> str:
        return self.data_dir or default_data_dir()

    def alerts_state_path(self) -> str | None:
        if self.alerts_state_file and self.alerts_state_file.lower() == "none":
            return None
        return self.alerts_state_file or os.path.join(self.resolved_data_dir(), "alerts-state.json")

    @property
    def lease_ttl(self) -> float:
        """The leader's lease in seconds: ``coordination_ttl``, or two refresh intervals."""
        return self.coordination_ttl or 2 * self.refresh_interval

    def with_(self, **changes: Any) -> Settings:
        return type(self)(**{**self.model_dump(), **changes})

    # -- single-field rules --------------------------------------------------------

    @field_validator("grpc_address")
    @classmethod
    def _grpc_address(cls, value: str) -> str:
        _address(value)
        return value

    @field_validator("http_address")
    @classmethod
    def _http_address(cls, value: str | None) -> str | None:
        if value is not None:
            _address(value)
        return value

    @field_validator("app")
    @classmethod
    def _app(cls, value: str | None) -> str | None:
        if value is not None and not _APP.match(value):
            raise ValueError("expected MODULE or MODULE:ATTR, e.g. proj.celery:app")
        return value

    @field_validator("coordination_key", "replica_name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError("expected 1 to 48 letters, digits or _ . : @ -")
        return value

    @field_validator("coordination_url")
    @classmethod
    def _coordination_url(cls, value: str | None) -> str | None:
        if value is not None:
            scheme = value.partition("://")[0].lower() if "://" in value else ""
            if scheme not in COORDINATION_SCHEMES:
                raise ValueError("expected a redis://, rediss:// or postgresql:// URL")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            check_origin(origin)
        return value

    # -- rules across fields --------------------------------------------------------

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.enabled:
            if not self.broker_url:
                raise ValueError(f"{option('broker_url')} is required unless Celery status is disabled (--disabled)")
            try:
                check_broker_url(self.broker_url)
            except ValueError as exc:
                raise ValueError(f"{option('broker_url')}: {exc}") from None
        if self.round_deadline < self.inspect_timeout:
            raise ValueError(
                f"round_deadline must be >= inspect_timeout: {option('round_deadline')} is "
                f"{self.round_deadline:g}, {option('inspect_timeout')} is {self.inspect_timeout:g}"
            )
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key must be given together (--tls-cert and --tls-key)")
        if self.client_cert_roles and not self.tls_client_ca:
            raise ValueError(
                "client_cert_roles needs tls_client_ca: no client certificate is asked for without "
                "--tls-client-ca (CELERY_STATUS_TLS_CLIENT_CA)"
            )
        if self.tls_client_ca and not self.tls_cert:
            raise ValueError("tls_client_ca needs tls_cert and tls_key: client certificates need TLS (--tls-cert)")
        if 0 < self.coordination_ttl < MIN_LEASE_TTL:
            # The lease is renewed three times per TTL; shorter means renewing faster than a store answers.
            raise ValueError(f"{option('coordination_ttl')} must be 0 (automatic) or at least {MIN_LEASE_TTL:g} s")
        for rate, burst in (("rate_limit", "rate_burst"), ("fresh_rate_limit", "fresh_burst")):
            if getattr(self, rate) > 0 and getattr(self, burst) < 1:
                raise ValueError(f"{option(burst)} must be >= 1 while {option(rate)} is not 0")
        return self


def _address(value: str) -> None:
    try:
        parse_address("address", value)
    except SettingsError as exc:
        raise ValueError(str(exc).removeprefix("address: ")) from None


# -- names and messages -----------------------------------------------------------


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def flag_of(field: str) -> Flag:
    """The field's :class:`Flag` with its defaults filled in."""
    info = Settings.model_fields[field]
    found = next((m for m in info.metadata if isinstance(m, Flag)), Flag())
    name = found.name or "--" + field.replace("_", "-")
    off = found.off or ("--no-" + name[2:] if is_switch(info) else "")
    return Flag(name, found.metavar, off, found.bridge, found.group)


def is_switch(info: FieldInfo) -> bool:
    return info.annotation is bool


def is_list(info: FieldInfo) -> bool:
    return info.annotation == tuple[str, ...]


def option(field: str) -> str:
    """``--flag (CELERY_STATUS_VAR)``: how messages name a setting."""
    return f"{flag_of(field).name} ({env_name(field)})"


_SECRET_FIELDS = {"tokens"}


def _shown(field: str, value: Any) -> str:
    if field in _SECRET_FIELDS:
        return "(value hidden)"
    if isinstance(value, str):
        text = mask_url(value) if field in ("broker_url", "coordination_url") else value
        return repr(text if len(text) <= 80 else text[:77] + "...")
    return repr(value)


def describe(exc: ValidationError, origins: Mapping[str, str] | None = None) -> str:
    """One line for all of *exc*'s errors, each naming the setting's flag and variable."""
    parts: list[str] = []
    for error in exc.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Input should be ")
        if message and not message.startswith(("must ", "expected ")) and error["type"] != "value_error":
            message = "must be " + message
        loc = error.get("loc") or ()
        field = str(loc[0]) if loc else ""
        where = f" (from {origins[field]})" if origins and field in origins else ""
        if error["type"] == "extra_forbidden":
            parts.append(f"unknown setting {field!r}{where}")
        elif field in Settings.model_fields:
            got = "" if "got " in message else f", got {_shown(field, error.get('input'))}"
            parts.append(f"{option(field)}: {message}{got}{where}")
        else:
            parts.append(message)
    return "; ".join(parts)


# -- the settings file ---------------------------------------------------------------


def read_config_file(path: str) -> dict[str, Any]:
    """Top-level ``field_name = value`` pairs of a TOML file (``--config``)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"--config ({CONFIG_ENV}): cannot read {path!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"--config ({CONFIG_ENV}): {path!r} is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"--config ({CONFIG_ENV}): {path!r} is not valid TOML: {exc}") from None
    for key, value in data.items():
        if isinstance(value, dict):
            raise SettingsError(
                f"--config ({CONFIG_ENV}): {path!r}: [{key}] tables are not settings; write top-level "
                "field = value pairs (see docs/settings.md)"
            )
    return data


__all__ = [
    "CONFIG_ENV",
    "DEFAULT_BROKER_URL",
    "DEFAULT_GRPC_ADDRESS",
    "DEFAULT_HTTP_ADDRESS",
    "ENV_PREFIX",
    "GROUPS",
    "Flag",
    "Settings",
    "SettingsError",
    "check_origin",
    "default_data_dir",
    "describe",
    "env_name",
    "flag_of",
    "is_list",
    "is_loopback",
    "is_switch",
    "option",
    "parse_address",
    "read_config_file",
]
