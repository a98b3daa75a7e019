"""``celery-status``: run the service, the bridge or the demo, or query a running service."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from .config import DEFAULT_HTTP_ADDRESS, Settings, SettingsError


def _env_default(name: str) -> str | None:
    return os.environ.get(f"CELERY_STATUS_{name}")


def _add_logging(p: argparse.ArgumentParser, *, sub: bool = False) -> None:
    """``--log-level``/``--log-format`` before the command, or after ``serve``/``bridge`` too."""
    level = argparse.SUPPRESS if sub else os.environ.get("CELERY_STATUS_LOG_LEVEL", "WARNING")
    fmt = argparse.SUPPRESS if sub else os.environ.get("CELERY_STATUS_LOG_FORMAT", "text")
    p.add_argument("--log-level", default=level,
                   help="debug, info, warning, error (env CELERY_STATUS_LOG_LEVEL; default warning)")
    p.add_argument("--log-format", default=fmt,
                   help="text, or json: one JSON object per line with time, level, logger, message, fields "
                        "(env CELERY_STATUS_LOG_FORMAT; default text)")


def _add_http_security(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``serve`` and ``bridge``: credentials, limits, HTTP exposure."""
    g = p.add_argument_group("security (see docs/security.md)")
    g.add_argument("--tokens-file", metavar="PATH",
                   help="'<sha256-hex> <role> [name]' lines; roles viewer, admin (env CELERY_STATUS_TOKENS_FILE; "
                        "env CELERY_STATUS_TOKENS=hash:role[:name],... adds more)")
    g.add_argument("--tls-cert", metavar="PEM", help="serve TLS with this certificate (env CELERY_STATUS_TLS_CERT)")
    g.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert (env CELERY_STATUS_TLS_KEY)")
    g.add_argument("--allow-unauthenticated", action="store_const", const=True, default=None,
                   help="serve a non-loopback address without any credentials configured")
    g.add_argument("--trust-forwarded-for", action="store_const", const=True, default=None,
                   help="rate-limit anonymous HTTP callers by X-Forwarded-For (only behind your own proxy)")
    g.add_argument("--metrics-public", action="store_const", const=True, default=None,
                   help="/metrics without credentials even when tokens are configured")
    g.add_argument("--cors-origin", dest="cors_origins", action="append", metavar="ORIGIN",
                   help="exact browser origin allowed to read the API, e.g. https://ops.example (repeatable)")
    g.add_argument("--rate-limit", type=float, metavar="PER_SECOND",
                   help="requests per second per caller (default 20, burst --rate-burst 40; 0: off)")
    g.add_argument("--rate-burst", type=float, metavar="N")
    g.add_argument("--fresh-rate-limit", type=float, metavar="PER_SECOND",
                   help="forced-fresh (max_age) requests per second per caller (default 1, burst 2)")
    g.add_argument("--fresh-burst", type=float, metavar="N")
    g.add_argument("--max-streams", type=int, metavar="N", help="open streams/WebSockets in total (default 256)")
    g.add_argument("--max-streams-per-caller", dest="max_streams_per_principal", type=int, metavar="N",
                   help="open streams/WebSockets per caller (default 8)")
    g.add_argument("--docs-public", action="store_const", const=True, default=None,
                   help="/docs and /openapi.json without credentials even when tokens are configured "
                        "(env CELERY_STATUS_DOCS_PUBLIC)")
    c = p.add_argument_group("connection limits (see docs/security.md)")
    c.add_argument("--http-max-connections", type=int, metavar="N",
                   help="open HTTP connections in total (default 1000, and at most half the descriptors left "
                        "after --fd-reserve; env CELERY_STATUS_HTTP_MAX_CONNECTIONS)")
    c.add_argument("--http-max-connections-per-client", type=int, metavar="N",
                   help="open HTTP connections per client address (default 64; "
                        "env CELERY_STATUS_HTTP_MAX_CONNECTIONS_PER_CLIENT)")
    c.add_argument("--http-header-timeout", type=float, metavar="SECONDS",
                   help="time to send a complete request head (default 10; env CELERY_STATUS_HTTP_HEADER_TIMEOUT)")
    c.add_argument("--http-keepalive-timeout", type=float, metavar="SECONDS",
                   help="idle keep-alive connections are closed after this (default 5; "
                        "env CELERY_STATUS_HTTP_KEEPALIVE_TIMEOUT)")
    c.add_argument("--fd-reserve", type=int, metavar="N",
                   help="descriptors kept free for broker connections and the process (default 256; "
                        "env CELERY_STATUS_FD_RESERVE)")
    g.add_argument("--show-args", action="store_const", const=True, default=None,
                   help="without tokens, anonymous callers see task arguments (hidden by default; "
                        "env CELERY_STATUS_SHOW_ARGS); with tokens only admins do")


def _security_overrides(args: argparse.Namespace) -> dict[str, object]:
    names = (
        "tokens_file", "tls_cert", "tls_key", "allow_unauthenticated", "trust_forwarded_for", "metrics_public",
        "cors_origins", "rate_limit", "rate_burst", "fresh_rate_limit", "fresh_burst", "max_streams",
        "max_streams_per_principal", "show_args", "docs_public", "http_max_connections",
        "http_max_connections_per_client", "http_header_timeout", "http_keepalive_timeout", "fd_reserve",
    )
    return {name: getattr(args, name, None) for name in names}


def _add_serve(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the collector and the gRPC service (and the JSON bridge with --http-address)",
        description="Flags override CELERY_STATUS_* environment variables.",
    )
    p.add_argument("--broker", dest="broker_url", metavar="URL",
                   help="broker URL (env CELERY_STATUS_BROKER_URL; default redis://127.0.0.1:6379/0)")
    p.add_argument("--app", metavar="MODULE:ATTR",
                   help="your Celery app, to learn its queues and transport options (env CELERY_STATUS_APP)")
    p.add_argument("--grpc-address", metavar="HOST:PORT",
                   help="gRPC listen address (env CELERY_STATUS_GRPC_ADDRESS; default 127.0.0.1:50051)")
    p.add_argument("--http-address", metavar="HOST:PORT",
                   help="also serve the JSON bridge here (env CELERY_STATUS_HTTP_ADDRESS)")
    p.add_argument("--refresh-interval", type=float, metavar="SECONDS",
                   help="seconds between inspection rounds (env CELERY_STATUS_REFRESH_INTERVAL; default 2)")
    p.add_argument("--queue", dest="queues", action="append", metavar="NAME",
                   help="also report the depth of this queue (repeatable; env CELERY_STATUS_QUEUES=a,b)")
    p.add_argument("--disabled", dest="enabled", action="store_const", const=False, default=None,
                   help="report Celery as disabled without touching a broker (env CELERY_STATUS_ENABLED=false)")
    _add_http_security(p)
    _add_logging(p, sub=True)
    g = p.add_argument_group("gRPC client certificates and redaction")
    g.add_argument("--tls-client-ca", metavar="PEM",
                   help="require gRPC client certificates signed by this CA (env CELERY_STATUS_TLS_CLIENT_CA)")
    g.add_argument("--client-cert-roles", metavar="PATH",
                   help="'<common name> <role>' lines; without it every verified certificate is a viewer")
    g.add_argument("--allow-arg", dest="allow_arg_patterns", action="append", metavar="PATTERN",
                   help="argument values matching this fnmatch pattern stay visible to viewers, e.g. 'eval-*' "
                        "(repeatable; env CELERY_STATUS_ALLOW_ARG_PATTERNS=a,b)")
    g.add_argument("--allow-argsrepr", action="store_const", const=True, default=None,
                   help="viewers see Celery's argsrepr/kwargsrepr text (producers may mask it)")
    g.add_argument("--grpc-max-connections", type=int, metavar="N",
                   help="open gRPC connections in total (default 1000, same descriptor ceiling as HTTP; "
                        "env CELERY_STATUS_GRPC_MAX_CONNECTIONS)")
    g.add_argument("--grpc-handshake-timeout", type=float, metavar="SECONDS",
                   help="time a new gRPC connection has to finish its handshake (default 10; "
                        "env CELERY_STATUS_GRPC_HANDSHAKE_TIMEOUT)")
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from .descriptors import raise_nofile_limit
    from .security.exposure import check_exposure
    from .security.tokens import TokenError
    from .server import StatusServer

    raise_nofile_limit()
    try:
        settings = Settings.from_env(
            broker_url=args.broker_url,
            app=args.app,
            grpc_address=args.grpc_address,
            http_address=args.http_address,
            refresh_interval=args.refresh_interval,
            queues=args.queues,
            enabled=args.enabled,
            tls_client_ca=args.tls_client_ca,
            client_cert_roles=args.client_cert_roles,
            allow_arg_patterns=args.allow_arg_patterns,
            allow_argsrepr=args.allow_argsrepr,
            grpc_max_connections=args.grpc_max_connections,
            grpc_handshake_timeout=args.grpc_handshake_timeout,
            **_security_overrides(args),
        )
        server = StatusServer(settings)
        check_exposure(
            grpc_address=settings.grpc_address,
            http_address=settings.http_address,
            has_tokens=bool(server.policy.tokens),
            client_certs=server.policy.client_certs,
            allow_unauthenticated=settings.allow_unauthenticated,
        )
    except (SettingsError, TokenError) as exc:
        print(f"celery-status: {exc}", file=sys.stderr)
        return 2

    async def run() -> None:
        await server.serve_forever()

    print(f"celery-status: gRPC on {settings.grpc_address}"
          + (f", HTTP on {settings.http_address}" if settings.http_address else ""), file=sys.stderr)
    asyncio.run(run())
    return 0


def _add_bridge(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("bridge", help="serve the JSON API in front of a remote gRPC service")
    p.add_argument("--target", default=_env_default("TARGET") or "127.0.0.1:50051", metavar="HOST:PORT",
                   help="the gRPC service (env CELERY_STATUS_TARGET; default 127.0.0.1:50051)")
    p.add_argument("--http-address", default=_env_default("HTTP_ADDRESS") or DEFAULT_HTTP_ADDRESS,
                   metavar="HOST:PORT", help="listen address (default 127.0.0.1:8080)")
    _add_http_security(p)
    _add_logging(p, sub=True)
    g = p.add_argument_group("the bridge's own connection to the gRPC service")
    g.add_argument("--token", default=None,
                   help="bearer token for the service (env CELERY_STATUS_TOKEN; prefer the env, argv is visible)")
    g.add_argument("--tls", dest="target_tls", action="store_true", help="connect to the service over TLS")
    g.add_argument("--tls-ca", metavar="PEM", help="CA of the service's certificate (implies --tls)")
    g.add_argument("--tls-client-cert", metavar="PEM", help="client certificate for mTLS (implies --tls)")
    g.add_argument("--tls-client-key", metavar="PEM", help="its private key")
    g.add_argument("--tls-server-name", metavar="NAME", help="name to verify in the service's certificate")
    p.set_defaults(func=_bridge)


def _bridge(args: argparse.Namespace) -> int:
    from celerystatus._base import TLSConfig

    from .bridge import BridgeSecurity, run_bridge
    from .descriptors import raise_nofile_limit
    from .security.exposure import check_exposure
    from .security.policy import policy_from_settings
    from .security.tokens import TokenError
    from .server import http_limits

    raise_nofile_limit()
    try:
        settings = Settings.from_env(http_address=args.http_address, **_security_overrides(args))
        policy = policy_from_settings(settings)
        check_exposure(
            grpc_address=None,
            http_address=settings.http_address,
            has_tokens=bool(policy.tokens),
            client_certs=False,
            allow_unauthenticated=settings.allow_unauthenticated,
        )
        credentials = None
        options: tuple[tuple[str, object], ...] = ()
        if args.target_tls or args.tls_ca or args.tls_client_cert:
            tls = TLSConfig(args.tls_ca, args.tls_client_cert, args.tls_client_key, args.tls_server_name)
            credentials = tls.channel_credentials()
            if args.tls_server_name:
                options = (("grpc.ssl_target_name_override", args.tls_server_name),)
    except (SettingsError, TokenError, ValueError) as exc:
        print(f"celery-status bridge: {exc}", file=sys.stderr)
        return 2
    security = BridgeSecurity(
        policy=policy,
        trust_forwarded_for=settings.trust_forwarded_for,
        metrics_public=settings.metrics_public,
        docs_public=settings.docs_public,
        cors_origins=settings.cors_origins,
        backend_token=args.token or _env_default("TOKEN") or None,
    )
    return int(
        run_bridge(
            args.target,
            args.http_address,
            security=security,
            tls_cert=settings.tls_cert,
            tls_key=settings.tls_key,
            backend_credentials=credentials,
            backend_channel_options=options,
            limits=http_limits(settings),
        )
    )


def _add_hash_token(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "hash-token",
        help="read a token on stdin and print its SHA-256, for a tokens file",
        description="Example: head -c 32 /dev/urandom | base64 | tee token.txt | celery-status hash-token",
    )
    p.add_argument("--role", choices=("viewer", "admin"), help="print a complete tokens-file line with this role")
    p.add_argument("--name", help="name for the tokens-file line")
    p.set_defaults(func=_hash_token)


def _hash_token(args: argparse.Namespace) -> int:
    from .security.tokens import hash_token

    token = sys.stdin.readline().strip()
    if not token:
        print("celery-status hash-token: no token on stdin", file=sys.stderr)
        return 2
    digest = hash_token(token)
    parts = [digest] + ([args.role] if args.role else []) + ([args.name] if args.role and args.name else [])
    print(" ".join(parts))
    return 0


def _add_demo(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from . import demo

    p = subparsers.add_parser(
        "demo", help="start Redis (if needed), two demo workers, a job stream, the service and the bridge"
    )
    demo.add_arguments(p)
    p.set_defaults(func=demo.main)


def _add_router(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "router",
        help="legacy-queue consumers and drain-back for the QueueRouter (celery-status router --help)",
        add_help=False,
    )
    p.add_argument("router_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_router)


def _router(args: argparse.Namespace) -> int:
    # Imported late: the router's PostgreSQL driver is only in the `router` extra.
    from celerystatus_router.cli import main as router_main

    return int(router_main(args.router_args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="celery-status", description="Health and live status of a Celery cluster."
    )
    _add_logging(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    _add_serve(subparsers)
    _add_bridge(subparsers)
    _add_hash_token(subparsers)
    _add_router(subparsers)
    try:
        _add_demo(subparsers)
    except (ImportError, AttributeError):  # demo extras missing from a trimmed install
        pass
    try:
        from celerystatus import _cli
    except ImportError:  # the SDK commands are optional in a server-only install
        pass
    else:
        _cli.add_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["router"]:
        # argparse cannot hand a leading "--help" to a nested CLI; pass the rest through as is.
        return _router(argparse.Namespace(router_args=argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    from . import logconfig

    try:
        logconfig.configure(args.log_level, args.log_format.strip().lower())
    except ValueError as exc:
        print(f"celery-status: --log-level/--log-format: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
