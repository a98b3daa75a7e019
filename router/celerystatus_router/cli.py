"""``python -m celerystatus_router``: run a legacy consumer, drain the legacy queue, show counts.

``main(argv)`` is the whole CLI, so another entry point can mount it as a
sub-command (``celery-status router ...``) by passing the remaining arguments.

Exit codes: 0 done; 1 a job could not be moved (drain) or routed; 2 bad input
(usage, an invalid queue name) or, for drain, Celery never became healthy;
3 the legacy queue (Redis or PostgreSQL) cannot be reached. Failures are one
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import redis

from .breaker import BreakerConfig, BreakerState
from .errors import LegacyQueueError, RoutingError
from .jobs import Job
from .legacy import LegacyConsumer, LegacyQueue, PostgresLegacyQueue, RedisLegacyQueue
from .policy import HealthPolicy
from .producer import CeleryProducer
from .router import QueueRouter

__all__ = ["EXIT_UNREACHABLE", "build_parser", "main"]

REDIS_DEFAULT_QUEUE = "legacy-jobs"
POSTGRES_DEFAULT_TABLE = "legacy_jobs"
#: The legacy queue's Redis or PostgreSQL cannot be reached.
EXIT_UNREACHABLE = 3


def _handler(spec: str) -> Callable[[Job], object]:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise argparse.ArgumentTypeError(f"expected module:function, got {spec!r}")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise argparse.ArgumentTypeError(f"cannot load {spec!r}: {exc}") from exc
    if not callable(target):
        raise argparse.ArgumentTypeError(f"{spec!r} is not callable")
    handler: Callable[[Job], object] = target
    return handler


def _queue_args(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--redis", metavar="URL", help="Redis legacy queue, e.g. redis://127.0.0.1:6379/2")
    where.add_argument("--postgres", metavar="DSN", help="PostgreSQL legacy queue, e.g. postgresql://host/db")
    parser.add_argument("--queue", help=f"key prefix (Redis; default {REDIS_DEFAULT_QUEUE}) "
                                        f"or table name (PostgreSQL; default {POSTGRES_DEFAULT_TABLE})")
    parser.add_argument("--lease", type=float, default=30.0, help="seconds a claim lasts before recovery")
    parser.add_argument("--max-attempts", type=int, default=5, help="claims before a job is dead-lettered")


class Unreachable(Exception):
    """The legacy queue's server cannot be reached (exit 3)."""


def _open_queue(args: argparse.Namespace) -> LegacyQueue:
    """The queue, checked to be reachable; ValueError for bad settings, :class:`Unreachable` otherwise."""
    if args.redis:
        name = args.queue or REDIS_DEFAULT_QUEUE
        redis_queue = RedisLegacyQueue.from_url(args.redis, name, lease=args.lease, max_attempts=args.max_attempts)
        try:
            redis_queue.client.ping()
        except redis.RedisError as exc:
            redis_queue.close()
            raise Unreachable(f"cannot reach the legacy queue's Redis: {exc}") from None
        return redis_queue
    table = args.queue or POSTGRES_DEFAULT_TABLE
    try:
        return PostgresLegacyQueue(args.postgres, table, lease=args.lease, max_attempts=args.max_attempts)
    except LegacyQueueError as exc:
        raise Unreachable(str(exc)) from None


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m celerystatus_router", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    consume = commands.add_parser("consume", help="work off the legacy queue with a handler")
    _queue_args(consume)
    consume.add_argument("--handler", required=True, type=_handler, help="module:function called with each Job")
    consume.add_argument("--claim-timeout", type=float, default=1.0)
    consume.add_argument("--recover-interval", type=float, default=5.0)
    consume.add_argument("--max-jobs", type=int)
    consume.add_argument("--exit-when-idle", action="store_true", help="stop once the queue is empty")

    drain = commands.add_parser("drain", help="move waiting legacy jobs to Celery once it is healthy")
    _queue_args(drain)
    drain.add_argument("--broker", required=True, help="Celery broker URL")
    drain.add_argument("--status", metavar="HOST:PORT", help="status service; without it Celery is assumed healthy")
    drain.add_argument("--min-workers", type=int, default=1)
    drain.add_argument("--wait", type=float, default=30.0, help="seconds to wait for a healthy cluster")
    drain.add_argument("--send-timeout", type=float, default=2.0)
    drain.add_argument("--max-jobs", type=int)

    stats = commands.add_parser("stats", help="print the queue's counts as JSON")
    _queue_args(stats)
    return parser


def _consume(args: argparse.Namespace) -> int:
    queue = _open_queue(args)
    consumer = LegacyConsumer(
        queue, args.handler, claim_timeout=args.claim_timeout, recover_interval=args.recover_interval
    )
    signal.signal(signal.SIGTERM, lambda *_: consumer.stop())
    try:
        handled = consumer.run(max_jobs=args.max_jobs, exit_when_idle=args.exit_when_idle)
    except KeyboardInterrupt:
        handled = consumer.processed + consumer.failed
    finally:
        queue.close()
    print(json.dumps({"handled": handled, "processed": consumer.processed, "failed": consumer.failed}))
    return 0


def _drain(args: argparse.Namespace) -> int:
    queue = _open_queue(args)
    producer = CeleryProducer(args.broker, send_timeout=args.send_timeout)
    router = QueueRouter(
        producer=producer,
        legacy=queue,
        status=args.status,
        policy=HealthPolicy(min_workers=args.min_workers),
        breaker=BreakerConfig(close_after=1, min_open_time=0.0),
    )
    try:
        router.start()
        if args.status is None:
            router.breaker.observe(None)
        # Half-open is enough here: the drain's own publishes are the probes that matter.
        if not router.wait_for_state(BreakerState.HALF_OPEN, BreakerState.CLOSED, timeout=args.wait):
            print(f"Celery not healthy after {args.wait:g}s: {router.breaker.reason}", file=sys.stderr)
            return 2
        if router.breaker.state is BreakerState.HALF_OPEN:
            router.breaker.record_send(True, router.breaker.acquire())
        started = time.monotonic()
        report = router.drain(args.max_jobs)
    finally:
        router.close()
        producer.close()
        queue.close()
    print(json.dumps({"moved": report.moved, "stopped": report.stopped, "seconds": time.monotonic() - started}))
    return 0 if not report.stopped else 1


def _stats(args: argparse.Namespace) -> int:
    queue = _open_queue(args)
    try:
        ids = queue.job_ids() if hasattr(queue, "job_ids") else {}
        print(json.dumps({where: len(found) for where, found in ids.items()}))
    finally:
        queue.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        if args.command == "consume":
            return _consume(args)
        if args.command == "drain":
            return _drain(args)
        return _stats(args)
    except ValueError as exc:
        _fail(exc)
        return 2
    except (Unreachable, redis.RedisError, psycopg.Error) as exc:
        _fail(exc)
        return EXIT_UNREACHABLE
    except RoutingError as exc:
        _fail(exc)
        return 1


def _fail(exc: BaseException) -> None:
    # Driver messages span lines (psycopg adds a hint); the CLI's answer is one line.
    print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
