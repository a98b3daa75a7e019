"""``celery-status``: run the service, the bridge or the demo, or query a running service."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .config import DEFAULT_HTTP_ADDRESS, Settings, SettingsError
from .flags import add_setting_flags, settings_from_args

if TYPE_CHECKING:
    from .server import StatusServer


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


def _add_serve(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the collector and the gRPC service (and the JSON bridge with --http-address)",
        description="Flags override CELERY_STATUS_* environment variables, which override --config. "
        "Every setting: docs/settings.md.",
    )
    add_setting_flags(p, "serve")
    _add_logging(p, sub=True)
    p.set_defaults(func=_serve)


def _banner(server: StatusServer) -> None:
    http = f", HTTP on {server.settings.http_address} (port {server.http_port})" if server.http_port else ""
    print(f"celery-status: gRPC on {server.settings.grpc_address} (port {server.grpc_port}){http}",
          file=sys.stderr, flush=True)


def _serve(args: argparse.Namespace) -> int:
    from .alerts import RulesFileError
    from .descriptors import raise_nofile_limit
    from .security.exposure import check_exposure
    from .security.tokens import TokenError
    from .server import StatusServer, server_credentials
    from .startup import ListenError

    raise_nofile_limit()
    try:
        settings = settings_from_args(args, "serve")
        server = StatusServer(settings)
        check_exposure(
            grpc_address=settings.grpc_address,
            http_address=settings.http_address,
            has_tokens=bool(server.policy.tokens),
            client_certs=server.policy.client_certs,
            allow_unauthenticated=settings.allow_unauthenticated,
        )
        server_credentials(settings)  # TLS files are checked before anything binds
    except (SettingsError, TokenError, RulesFileError) as exc:
        print(f"celery-status: {exc}", file=sys.stderr)
        return 2

    from .history import SchemaTooNew

    try:
        # The banner is printed once both ports are bound, so a script may wait for it.
        asyncio.run(server.serve_forever(ready=_banner))
    except (SettingsError, ListenError, SchemaTooNew) as exc:
        print(f"celery-status: {exc}", file=sys.stderr)
        return 2
    return 0


def _add_bridge(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("bridge", help="serve the JSON API in front of a remote gRPC service")
    p.add_argument("--target", default=_env_default("TARGET") or "127.0.0.1:50051", metavar="HOST:PORT",
                   help="the gRPC service (env CELERY_STATUS_TARGET; default 127.0.0.1:50051)")
    add_setting_flags(p, "bridge")
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
    from celerystatus import TLSConfig, parse_target

    from .bridge import BridgeSecurity, run_bridge
    from .descriptors import raise_nofile_limit
    from .security.exposure import check_exposure
    from .security.policy import policy_from_settings
    from .security.tokens import TokenError
    from .server import http_limits
    from .startup import load_server_tls

    raise_nofile_limit()
    try:
        settings = settings_from_args(args, "bridge")
        http_address = settings.http_address or DEFAULT_HTTP_ADDRESS
        policy = policy_from_settings(settings)
        load_server_tls(settings.tls_cert, settings.tls_key)
        check_exposure(
            grpc_address=None,
            http_address=http_address,
            has_tokens=bool(policy.tokens),
            client_certs=False,
            allow_unauthenticated=settings.allow_unauthenticated,
        )
        parse_target(args.target)
        tls = None
        if args.target_tls or args.tls_ca or args.tls_client_cert:
            tls = TLSConfig(args.tls_ca, args.tls_client_cert, args.tls_client_key, args.tls_server_name)
            tls.channel_credentials()  # unreadable PEM files are a usage error, reported now
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
            http_address,
            security=security,
            tls_cert=settings.tls_cert,
            tls_key=settings.tls_key,
            backend_tls=tls,
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


def _history_upgrade(argv: Sequence[str]) -> int:
    """``celery-status history upgrade``: apply the history store's migrations and exit."""
    p = argparse.ArgumentParser(
        prog="celery-status history upgrade",
        description="Apply pending schema migrations to the history store (the service also does this on start).",
    )
    p.add_argument("--history-url", metavar="URL", help="as for serve (env CELERY_STATUS_HISTORY_URL)")
    p.add_argument("--data-dir", metavar="DIR", help="as for serve (env CELERY_STATUS_DATA_DIR)")
    args = p.parse_args(argv)
    from .history import HistoryError, HistoryStore, SchemaTooNew, resolve_url
    from .history.store import describe_url

    try:
        settings = Settings.load({"history_url": args.history_url, "data_dir": args.data_dir})
        url = resolve_url(settings.history_url, settings.data_dir)
        if url is None:
            print("celery-status history upgrade: history is off (history_url none); nothing to do", file=sys.stderr)
            return 2
        store = HistoryStore(url)
    except (SettingsError, HistoryError) as exc:
        print(f"celery-status history upgrade: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # SQLAlchemy refuses the URL
        print(f"celery-status history upgrade: history_url: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    try:
        before, after = store.upgrade()
    except SchemaTooNew as exc:
        print(f"celery-status history upgrade: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the database did not answer
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"celery-status history upgrade: {describe_url(url)}: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1
    finally:
        store.close()
    where = describe_url(url)
    if before == after:
        print(f"{where}: already at schema revision {after}")
    else:
        print(f"{where}: upgraded from {before or 'empty'} to schema revision {after}")
    return 0


def version_text() -> str:
    """``celery-status 0.1.0 (grpcio …, protobuf …, Python …)``: what a bug report needs."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    python = ".".join(str(part) for part in sys.version_info[:3])
    return (
        f"celery-status {installed('celery-status')} "
        f"(grpcio {installed('grpcio')}, protobuf {installed('protobuf')}, Python {python})"
    )


class _VersionAction(argparse.Action):
    # Looked up only when asked: package metadata is slow to read on every start.
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help=str(kwargs.get("help", "")))

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(version_text())
        parser.exit()


def _add_alert_actions(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = actions.add_parser(
        "check", help="validate a rules file (exit 2 with one line per problem)",
        description="Exit 0 when FILE is a valid rules file, 2 otherwise.",
    )
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=_alerts_check)
    export = actions.add_parser(
        "export-prometheus",
        help="print an equivalent Prometheus rule group on the service's own metrics",
    )
    export.add_argument("--alerts-file", default=_env_default("ALERTS_FILE"), metavar="PATH",
                        help="rules file whose overrides to apply (env CELERY_STATUS_ALERTS_FILE; default: built-ins)")
    export.add_argument("--refresh-interval", type=float, default=None, metavar="SECONDS",
                        help="the service's refresh interval, for StatusStale (default 2)")
    export.set_defaults(func=_alerts_export)


def _alerts_check(args: argparse.Namespace) -> int:
    from .alerts import RulesFileError, load_alert_config

    try:
        config = load_alert_config(args.file)
    except RulesFileError as exc:
        for problem in exc.problems:
            print(f"celery-status alerts check: {problem}", file=sys.stderr)
        return 2
    rules = config.active_rules()
    print(f"{args.file}: OK, {len(rules)} rules enabled ({', '.join(r.name for r in rules)}), "
          f"{len(config.receivers)} receivers")
    return 0


def _alerts_export(args: argparse.Namespace) -> int:
    from .alerts import RulesFileError, load_alert_config
    from .alerts.prometheus import render_rule_file

    try:
        # The flag, else CELERY_STATUS_REFRESH_INTERVAL, checked like serve's.
        interval = Settings.load({"refresh_interval": args.refresh_interval}).refresh_interval
    except SettingsError as exc:
        print(f"celery-status: {exc}", file=sys.stderr)
        return 2
    try:
        config = load_alert_config(args.alerts_file)
    except RulesFileError as exc:
        for problem in exc.problems:
            print(f"celery-status: {problem}", file=sys.stderr)
        return 2
    sys.stdout.write(render_rule_file(config, refresh_interval=interval))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="celery-status", description="Health and live status of a Celery cluster."
    )
    parser.add_argument("--version", action=_VersionAction, help="print versions and exit")
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
        from celerystatus import cli as sdk_cli
    except ImportError:  # the SDK commands are optional in a server-only install
        pass
    else:
        commands = sdk_cli.add_commands(subparsers)
        _add_alert_actions(commands["alerts"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["history", "upgrade"]:
        return _history_upgrade(argv[2:])
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
