"""Command-line subcommands built on the SDK: status, watch, check, find-task.

The ``celery-status`` program registers them with :func:`add_commands`; each
subparser sets ``func(args) -> exit code``.  ``python -m celerystatus.cli``
runs them without the server package installed.

Exit codes of ``check`` follow the monitoring-plugin convention: 0 OK,
1 WARNING, 2 CRITICAL, 3 UNKNOWN.  UNKNOWN means the check could not get an
answer (status service unreachable, bad arguments): the status service is the
probe, and its failure says nothing certain about Celery itself.  Celery
disabled, the broker not reached, or no live worker is CRITICAL; fewer
workers than ``--min-workers``, too many active or scheduled tasks, or a
stale/old snapshot is WARNING.

The other commands exit 0 on success, 1 when ``find-task`` finds nothing, and
2 when the status service could not be queried.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import grpc

from celerystatus._base import DEFAULT_TARGET, DEFAULT_TIMEOUT, TLSConfig
from celerystatus._client import CeleryStatusClient
from celerystatus.alerts import Alert, AlertList, AlertState
from celerystatus.exceptions import CeleryStatusError, InternalError
from celerystatus.history import History, Trends
from celerystatus.models import CeleryStatus, StatusView

__all__ = ["add_commands", "evaluate_check", "main", "render_alerts", "render_status"]

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
_STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
EXIT_NOT_FOUND = 1
EXIT_ERROR = 2

_CLEAR_SCREEN = "\x1b[H\x1b[2J"


def _connection_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument(
        "--target",
        default=os.environ.get("CELERY_STATUS_TARGET", DEFAULT_TARGET),
        help="gRPC address of the status service, HOST:PORT "
        "(env CELERY_STATUS_TARGET; default %(default)s)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds to wait for an answer (default %(default)s)",
    )
    group.add_argument(
        "--token",
        default=os.environ.get("CELERY_STATUS_TOKEN") or None,
        help="bearer token (env CELERY_STATUS_TOKEN)",
    )
    group.add_argument("--tls", action="store_true", help="use TLS with the system CA roots")
    group.add_argument("--ca-cert", help="PEM file of the CA that signed the server (implies TLS)")
    group.add_argument("--client-cert", help="PEM client certificate for mutual TLS")
    group.add_argument("--client-key", help="PEM private key of --client-cert")
    return parent


def add_commands(subparsers: Any) -> dict[str, Any]:
    """Register the SDK's subcommands on an ``argparse`` subparsers object.

    Returns the ``alerts`` command's own subparsers, where the server package
    adds the actions that need it (``check FILE``, ``export-prometheus``).
    """
    parent = _connection_options()

    status = subparsers.add_parser(
        "status", parents=[parent], help="show the cluster status as a table"
    )
    status.add_argument(
        "--json", action="store_true", help="print the JSON document of /api/celery-status"
    )
    status.add_argument(
        "--max-age", type=float, help="ask for a snapshot at most this many seconds old"
    )
    status.set_defaults(func=cmd_status)

    watch = subparsers.add_parser(
        "watch", parents=[parent], help="live view of the cluster status (Ctrl-C to stop)"
    )
    watch.add_argument("--count", type=int, help="stop after this many updates")
    watch.add_argument("--interval", type=float, help="at most one update per this many seconds")
    watch.add_argument("--json", action="store_true", help="one JSON document per line")
    watch.set_defaults(func=cmd_watch)

    check = subparsers.add_parser(
        "check",
        parents=[parent],
        help="monitoring-plugin check (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)",
    )
    check.add_argument(
        "--min-workers", type=int, default=1, help="WARNING below this many (default 1)"
    )
    check.add_argument("--max-active", type=int, help="WARNING above this many active tasks")
    check.add_argument("--max-scheduled", type=int, help="WARNING above this many scheduled tasks")
    check.add_argument("--max-age", type=float, help="WARNING when the snapshot is older (seconds)")
    check.add_argument(
        "--ignore-alerts",
        action="store_true",
        help="do not turn the service's firing alerts into WARNING/CRITICAL (by their severity)",
    )
    check.set_defaults(func=cmd_check)

    alerts = subparsers.add_parser(
        "alerts", parents=[parent], help="firing, pending and recently resolved alerts as a table"
    )
    alerts.add_argument("--json", action="store_true", help="print the JSON of GET /api/alerts")
    alerts.add_argument(
        "--state",
        dest="states",
        action="append",
        choices=[s.value for s in AlertState],
        help="only alerts in this state (repeatable)",
    )
    alerts.set_defaults(func=cmd_alerts)
    actions = alerts.add_subparsers(dest="alerts_action", metavar="ACTION")
    actions.required = False

    find = subparsers.add_parser(
        "find-task", parents=[parent], help="where an evaluation's task is, and for how long"
    )
    find.add_argument("eval_id", metavar="EVAL_ID")
    find.add_argument("--json", action="store_true", help="print the task as JSON")
    find.set_defaults(func=cmd_find_task)

    history = subparsers.add_parser(
        "history",
        parents=[parent],
        help="recorded samples over a range: one line per series with a sparkline",
        description="Recorded samples of the cluster. `celery-status history upgrade` (server side) "
        "applies the history store's schema migrations instead.",
    )
    history.add_argument("--since", default="1h", help="1h (ago), ISO 8601 or epoch seconds (default 1h)")
    history.add_argument("--until", default=None, help="as --since (default now)")
    history.add_argument("--step", default=None, help="30s, 1m, 1h (default: about 60 points)")
    history.add_argument(
        "--series",
        action="append",
        help="series names, comma-separated or repeated: workers, queue:celery, worker:<host>:active, "
        "task:<name>, queue:* (default: the cluster series)",
    )
    history.add_argument("--rows", action="store_true", help="also print one row per timestamp")
    history.add_argument("--runs", action="store_true", help="also list the task runs that ended in the range")
    output = history.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the JSON of /api/celery-status/history")
    output.add_argument("--csv", action="store_true", help="print CSV")
    history.set_defaults(func=cmd_history)

    trends = subparsers.add_parser(
        "trends", parents=[parent], help="throughput, queue growth, saturation, runtimes, worker trouble"
    )
    trends.add_argument("--window", default="15m", help="how far back to look (default 15m)")
    trends.add_argument("--long-running-floor", default=None, help="never flag tasks younger than this (default 60s)")
    trends.add_argument("--json", action="store_true", help="print the JSON of /api/celery-status/trends")
    trends.set_defaults(func=cmd_trends)
    return {"alerts": actions}


def _client(args: argparse.Namespace) -> CeleryStatusClient:
    tls: TLSConfig | None = None
    if args.tls or args.ca_cert or args.client_cert or args.client_key:
        tls = TLSConfig(
            ca_cert=args.ca_cert, client_cert=args.client_cert, client_key=args.client_key
        )
    return CeleryStatusClient(args.target, timeout=args.timeout, token=args.token, tls=tls)


def _run(
    args: argparse.Namespace,
    body: Callable[[CeleryStatusClient], int],
    *,
    error_code: int = EXIT_ERROR,
    error_line: Callable[[str], str] = lambda text: f"error: {text}",
) -> int:
    """Run ``body`` with a client; report failures in one line on stderr."""
    try:
        client = _client(args)
    except ValueError as exc:
        print(error_line(str(exc)), file=sys.stderr)
        return error_code
    try:
        with client:
            return body(client)
    except CeleryStatusError as exc:
        print(error_line(f"{args.target}: {exc}"), file=sys.stderr)
        return error_code
    except KeyboardInterrupt:
        return OK


# --- status ----------------------------------------------------------------------


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return _duration(seconds) + " ago"


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=False)]
    return [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (headers, *rows)
    ]


def render_status(status: CeleryStatus) -> str:
    """The status as a human-readable block of text."""
    if not status.enabled:
        return f"Celery: disabled{f' ({status.message})' if status.message else ''}"
    state = "connected" if status.connected else "NOT CONNECTED"
    if status.stale:
        state += ", STALE"
    lines = [
        f"Celery: {state}   broker: {status.broker_url or '-'}   observed: {_ago(status.age)}",
        f"workers: {status.workers}   active: {status.active_tasks}   "
        f"scheduled: {status.scheduled_tasks}   reserved: {status.reserved_tasks}",
    ]
    if status.error:
        lines.append(f"error: {status.error}")
    if status.worker_stats:
        rows = []
        for host, stats in sorted(status.worker_stats.items()):
            pool = stats.pool
            rows.append(
                [
                    host,
                    pool.implementation or "-",
                    f"{len(pool.processes)}/{pool.max_concurrency}",
                    str(stats.active_tasks),
                    str(stats.scheduled_tasks),
                    str(stats.reserved_tasks),
                    str(stats.total),
                    _duration(stats.uptime) if stats.uptime else "-",
                ]
            )
        lines.append("")
        lines += _table(
            ["WORKER", "POOL", "PROCS", "ACTIVE", "SCHED", "RESERVED", "TOTAL", "UPTIME"], rows
        )
    if status.queues:
        rows = [
            [q.name, str(q.messages), "-" if q.consumers is None else str(q.consumers)]
            for q in sorted(status.queues, key=lambda q: q.name)
        ]
        lines.append("")
        lines += _table(["QUEUE", "MESSAGES", "CONSUMERS"], rows)
    return "\n".join(lines)


def _print_json(document: Any, out: TextIO) -> None:
    out.write(json.dumps(document, sort_keys=False) + "\n")
    out.flush()


def cmd_status(args: argparse.Namespace) -> int:
    def body(client: CeleryStatusClient) -> int:
        view = StatusView.FULL if args.json else StatusView.SUMMARY
        status = client.get_status(max_age=args.max_age, view=view)
        if args.json:
            _print_json(status.to_dict(), sys.stdout)
        else:
            print(render_status(status))
        return OK

    return _run(args, body)


# --- watch -----------------------------------------------------------------------


def cmd_watch(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        print("error: --count must be at least 1", file=sys.stderr)
        return EXIT_ERROR
    live = sys.stdout.isatty() and not args.json

    def body(client: CeleryStatusClient) -> int:
        view = StatusView.FULL if args.json else StatusView.SUMMARY
        stream = client.watch_status(min_interval=args.interval, view=view)
        try:
            for seen, status in enumerate(stream, start=1):
                if args.json:
                    _print_json(status.to_dict(), sys.stdout)
                else:
                    stamp = time.strftime("%H:%M:%S")
                    text = f"{render_status(status)}\n\n[{stamp}] update {seen} from {args.target}"
                    # On a terminal, redraw in place; in a pipe, append blocks.
                    sys.stdout.write(
                        (_CLEAR_SCREEN if live else "") + text + ("\n" if live else "\n\n")
                    )
                    sys.stdout.flush()
                if args.count is not None and seen >= args.count:
                    break
        finally:
            stream.close()
        return OK

    return _run(args, body)


# --- check -----------------------------------------------------------------------


def evaluate_check(
    status: CeleryStatus,
    *,
    min_workers: int = 1,
    max_active: int | None = None,
    max_scheduled: int | None = None,
    max_age: float | None = None,
    alerts: Sequence[Alert] = (),
) -> tuple[int, str]:
    """The check's exit code and its one-line message (pure, for tests).

    Firing ``alerts`` count by severity: critical ones make the check CRITICAL,
    warning ones WARNING.
    """
    critical: list[str] = []
    warning: list[str] = []
    for alert in alerts:
        if alert.state is not AlertState.FIRING:
            continue
        text = f"alert {alert.name}" + "".join(
            f" {k}={alert.labels[k]}" for k in ("worker", "queue", "task") if k in alert.labels
        )
        if alert.severity == "critical":
            critical.append(text)
        elif alert.severity == "warning":
            warning.append(text)
    if not status.enabled:
        critical.append("Celery disabled")
    elif not status.connected:
        critical.append("broker not connected" + (f" ({status.error})" if status.error else ""))
    elif status.workers == 0:
        critical.append("no live workers")
    if status.enabled and status.connected:
        if 0 < status.workers < min_workers:
            warning.append(f"workers {status.workers} < {min_workers}")
        if max_active is not None and status.active_tasks > max_active:
            warning.append(f"active {status.active_tasks} > {max_active}")
        if max_scheduled is not None and status.scheduled_tasks > max_scheduled:
            warning.append(f"scheduled {status.scheduled_tasks} > {max_scheduled}")
        if status.stale:
            warning.append("snapshot stale" + (f" ({status.error})" if status.error else ""))
        if max_age is not None and status.age is not None and status.age > max_age:
            warning.append(f"snapshot {status.age:.1f}s old > {max_age:g}s")
    code = CRITICAL if critical else WARNING if warning else OK
    summary = (
        f"{status.workers} workers, {status.active_tasks} active, "
        f"{status.scheduled_tasks} scheduled"
    )
    perfdata = (
        f"workers={status.workers};{min_workers}:;1:;0 "
        f"active={status.active_tasks};{'' if max_active is None else max_active};;0 "
        f"scheduled={status.scheduled_tasks};{'' if max_scheduled is None else max_scheduled};;0 "
        f"reserved={status.reserved_tasks};;;0"
    )
    if status.age is not None:
        perfdata += f" age={status.age:.3f}s;{'' if max_age is None else f'{max_age:g}'};;0"
    problems = "; ".join(critical + warning)
    text = f"{problems}: {summary}" if problems else summary
    return code, f"CELERY {_STATE_NAMES[code]} - {text} | {perfdata}"


def _firing_alerts(client: CeleryStatusClient) -> tuple[Alert, ...]:
    try:
        return client.list_alerts(states=[AlertState.FIRING]).alerts
    except InternalError as exc:
        if exc.code == grpc.StatusCode.UNIMPLEMENTED:  # a server from before alerts existed
            return ()
        raise


def cmd_check(args: argparse.Namespace) -> int:
    def body(client: CeleryStatusClient) -> int:
        status = client.get_status(view=StatusView.SUMMARY)
        alerts = () if getattr(args, "ignore_alerts", False) else _firing_alerts(client)
        code, line = evaluate_check(
            status,
            min_workers=args.min_workers,
            max_active=args.max_active,
            max_scheduled=args.max_scheduled,
            max_age=args.max_age,
            alerts=alerts,
        )
        print(line)
        return code

    # The plugin protocol wants the one line on stdout, UNKNOWN included.
    try:
        client = _client(args)
    except ValueError as exc:
        print(f"CELERY UNKNOWN - {exc}")
        return UNKNOWN
    try:
        with client:
            return body(client)
    except CeleryStatusError as exc:
        print(f"CELERY UNKNOWN - status service {args.target}: {exc}")
        return UNKNOWN


# --- alerts ----------------------------------------------------------------------


def render_alerts(result: AlertList, now: float | None = None) -> str:
    """The alerts as a table, firing first."""
    if not result.alerts:
        return "no alerts"
    now = time.time() if now is None else now
    rows = []
    for alert in result.alerts:
        where = ",".join(f"{k}={alert.labels[k]}" for k in ("worker", "queue", "task") if k in alert.labels)
        since = alert.resolved_at if alert.state is AlertState.RESOLVED else alert.active_since
        rows.append(
            [
                alert.state.value.upper(),
                alert.severity,
                alert.name,
                where or "-",
                _ago(now - since if since else None),
                alert.summary,
            ]
        )
    return "\n".join(_table(["STATE", "SEVERITY", "ALERT", "WHERE", "SINCE", "SUMMARY"], rows))


def cmd_alerts(args: argparse.Namespace) -> int:
    def body(client: CeleryStatusClient) -> int:
        result = client.list_alerts(states=args.states or ())
        if args.json:
            _print_json(result.to_dict(), sys.stdout)
        else:
            print(render_alerts(result))
        return OK

    return _run(args, body)


# --- find-task -------------------------------------------------------------------


def cmd_find_task(args: argparse.Namespace) -> int:
    def body(client: CeleryStatusClient) -> int:
        location = client.find_task(args.eval_id)
        if location is None:
            if args.json:
                _print_json(None, sys.stdout)
            else:
                print(
                    f"{args.eval_id}: not held by any worker "
                    "(still queued in the broker, finished, or unknown)"
                )
            return EXIT_NOT_FOUND
        if args.json:
            document = location.task.to_dict()
            document.update(
                worker=location.worker,
                state=location.state.value,
                running_for=location.running_for,
                starts_in=location.starts_in,
            )
            _print_json(document, sys.stdout)
        else:
            print(
                f"{args.eval_id}: task {location.task.id} ({location.task.name}) "
                f"{location.describe()}"
            )
        return OK

    return _run(args, body)


# --- history and trends ---------------------------------------------------------------

_SPARKS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 60
#: Without --step, the range is cut into about this many points.
DEFAULT_POINTS = 60
_STEPS = (1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)


def sparkline(values: Sequence[float | None], width: int = SPARK_WIDTH) -> str:
    """One character per value (averaged down to ``width``); blank where nothing was recorded."""
    if len(values) > width:
        size = len(values) / width
        reduced: list[float | None] = []
        for i in range(width):
            chunk = [v for v in values[int(i * size):int((i + 1) * size)] if v is not None]
            reduced.append(sum(chunk) / len(chunk) if chunk else None)
        values = reduced
    present = [v for v in values if v is not None]
    if not present:
        return " " * len(values)
    low, high = min(present), max(present)
    span = high - low
    return "".join(
        " " if v is None else _SPARKS[0 if span == 0 else min(7, int((v - low) / span * 7.999))] for v in values
    )


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value == int(value) else f"{value:.3g}"


def render_history(history: History, *, rows: bool = False) -> str:
    lines = []
    table = []
    for name, values in history.series.items():
        present = [v for v in values if v is not None]
        table.append(
            [
                name,
                _number(min(present)) if present else "-",
                _number(sum(present) / len(present)) if present else "-",
                _number(max(present)) if present else "-",
                _number(present[-1]) if present else "-",
                sparkline(values),
            ]
        )
    if history.timestamps:
        first = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(history.timestamps[0]))
        last = time.strftime("%H:%M:%S", time.localtime(history.timestamps[-1]))
        step = _duration(history.step).replace(".0s", "s") if history.step else "-"
        lines.append(f"{first} .. {last}   step {step}   {len(history.timestamps)} points")
        lines.append("")
    lines += _table(["SERIES", "MIN", "MEAN", "MAX", "LAST", "TREND"], table)
    if rows:
        names = list(history.series)
        body = [
            [time.strftime("%H:%M:%S", time.localtime(ts))] + [_number(history.series[n][i]) for n in names]
            for i, ts in enumerate(history.timestamps)
        ]
        lines.append("")
        lines += _table(["TIME", *names], body)
    if history.runs:
        lines.append("")
        lines += _table(
            ["TASK", "NAME", "WORKER", "RUNTIME"],
            [[run.id, run.name, run.worker, _duration(run.runtime)] for run in history.runs],
        )
    return "\n".join(lines)


def _default_step(since: str, until: str | None) -> float:
    from celerystatus.timespec import parse_time

    now = time.time()
    span = parse_time(until, "until", now=now) - parse_time(since, "since", now=now)
    wanted = max(1.0, span / DEFAULT_POINTS)
    return float(next((s for s in _STEPS if s >= wanted), _STEPS[-1]))


def cmd_history(args: argparse.Namespace) -> int:
    series = [part.strip() for value in args.series or () for part in value.split(",") if part.strip()]

    def body(client: CeleryStatusClient) -> int:
        step = args.step if args.step is not None else _default_step(args.since, args.until)
        history = client.get_history(
            args.since, args.until, step=step, series=series, include_runs=args.runs
        )
        if args.json:
            _print_json(history.to_dict(), sys.stdout)
        elif args.csv:
            sys.stdout.write(history.to_csv())
        else:
            print(render_history(history, rows=args.rows))
        return OK

    try:
        return _run(args, body)
    except ValueError as exc:  # unparseable --since/--until/--step: named in the message
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def render_trends(trends: Trends) -> str:
    window = _duration(trends.window or 0).replace(".0s", "s")
    t = trends.throughput
    lines = [
        f"window {window}   samples {trends.samples}   throughput {t.per_second:.2f}/s ({t.count} tasks)",
    ]
    sat = trends.saturation
    if sat.seconds_to_full is None:
        full = ""
    elif sat.seconds_to_full <= 0:
        full = ", at capacity"
    else:
        full = f", full in {_duration(sat.seconds_to_full)}"
    lines.append(
        f"saturation {sat.current:.0%} ({sat.busy_slots}/{sat.pool_slots} slots), mean {sat.mean:.0%}, "
        f"{sat.slope_per_minute:+.1%}/min{full}"
    )
    if trends.queues:
        lines.append("")
        lines += _table(
            ["QUEUE", "DEPTH", "GROWTH/MIN", "ARRIVAL/MIN", "DRAIN"],
            [
                [
                    q.name,
                    str(q.depth),
                    f"{q.growth_per_minute:+.1f}",
                    f"{q.arrival_per_minute:.1f}",
                    "growing" if q.growing else ("-" if q.drain_seconds is None else _duration(q.drain_seconds)),
                ]
                for q in trends.queues.values()
            ],
        )
    if trends.workers:
        lines.append("")
        lines += _table(
            ["WORKER", "TASKS/S", "ACTIVE", "RESTARTS", "PROCS REPLACED", "HUNG?"],
            [
                [
                    w.hostname,
                    f"{w.per_second:.2f}",
                    str(w.active),
                    str(w.restarts),
                    str(w.processes_replaced),
                    "possibly" if w.possibly_hung else "-",
                ]
                for w in trends.workers.values()
            ],
        )
    if trends.runtimes or trends.task_throughput:
        names = sorted(set(trends.runtimes) | set(trends.task_throughput))
        rows = []
        for name in names:
            rate = trends.task_throughput.get(name)
            runtime = trends.runtimes.get(name)
            rows.append(
                [
                    name,
                    f"{rate.per_second:.2f}" if rate else "-",
                    str(runtime.count) if runtime else "-",
                    _duration(runtime.p50) if runtime else "-",
                    _duration(runtime.p95) if runtime else "-",
                    _duration(runtime.max) if runtime else "-",
                ]
            )
        lines.append("")
        lines += _table(["TASK", "TASKS/S", "RUNS", "P50", "P95", "MAX"], rows)
    for task in trends.long_running:
        lines.append(
            f"LONG-RUNNING {task.id} ({task.name}) on {task.worker}: {_duration(task.running_seconds)} "
            f"> {_duration(task.threshold_seconds)}"
        )
    return "\n".join(lines)


def cmd_trends(args: argparse.Namespace) -> int:
    def body(client: CeleryStatusClient) -> int:
        trends = client.get_trends(args.window, long_running_floor=args.long_running_floor)
        if args.json:
            _print_json(trends.to_dict(), sys.stdout)
        else:
            print(render_trends(trends))
        return OK

    try:
        return _run(args, body)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="celery-status", description="Query a celery-status service."
    )
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
