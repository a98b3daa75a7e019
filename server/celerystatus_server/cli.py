"""``celery-status``: run the service, the bridge or the demo, or query a running service."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from .config import DEFAULT_HTTP_ADDRESS, Settings, SettingsError


def _env_default(name: str) -> str | None:
    return os.environ.get(f"CELERY_STATUS_{name}")


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
    p.add_argument("--show-args", action="store_const", const=True, default=None,
                   help="show task arguments to callers (hidden by default; env CELERY_STATUS_SHOW_ARGS)")
    p.add_argument("--disabled", dest="enabled", action="store_const", const=False, default=None,
                   help="report Celery as disabled without touching a broker (env CELERY_STATUS_ENABLED=false)")
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from .server import StatusServer

    try:
        settings = Settings.from_env(
            broker_url=args.broker_url,
            app=args.app,
            grpc_address=args.grpc_address,
            http_address=args.http_address,
            refresh_interval=args.refresh_interval,
            queues=args.queues,
            show_args=args.show_args,
            enabled=args.enabled,
        )
    except SettingsError as exc:
        print(f"celery-status: {exc}", file=sys.stderr)
        return 2
    server = StatusServer(settings)

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
    p.set_defaults(func=_bridge)


def _bridge(args: argparse.Namespace) -> int:
    from .bridge import run_bridge

    return int(run_bridge(args.target, args.http_address))


def _add_demo(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from . import demo

    p = subparsers.add_parser(
        "demo", help="start Redis (if needed), two demo workers, a job stream, the service and the bridge"
    )
    demo.add_arguments(p)
    p.set_defaults(func=demo.main)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="celery-status", description="Health and live status of a Celery cluster."
    )
    parser.add_argument("--log-level", default=os.environ.get("CELERY_STATUS_LOG_LEVEL", "WARNING"),
                        help="logging level (default WARNING)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    _add_serve(subparsers)
    _add_bridge(subparsers)
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
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
