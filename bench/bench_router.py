"""QueueRouter cost: route() vs a raw send_task on a healthy broker, and fallback latency.

Healthy: a private redis-server is the broker; the same number of jobs is sent
with a stock Celery app's ``send_task`` and with ``QueueRouter.route`` (breaker
closed, metrics on), in alternating rounds, and per-job times are compared.
No worker consumes, so only the publish path is measured.

Outages: the broker is stopped (connection refused), then frozen (SIGSTOP);
for each, the first route() after the outage began (breaker still closed:
bounded by the send deadline) and the following fallbacks once the breaker is
open (legacy push to Redis) are timed.  Usage:

    python bench/bench_router.py [--jobs 3000] [--rounds 5] [--legacy redis://127.0.0.1:6379/15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from celery import Celery  # noqa: E402

from celerystatus.models import CeleryStatus  # noqa: E402
from celerystatus_router import BreakerConfig, BreakerState, QueueRouter, RedisLegacyQueue  # noqa: E402
from celerystatus_server.local_redis import RedisProcess  # noqa: E402

HEALTHY = CeleryStatus(enabled=True, connected=True, workers=2)
TASK = "tasks.evaluate_code"


def per_job_us(fn: object, jobs: int) -> float:
    began = time.perf_counter()
    for i in range(jobs):
        fn(i)  # type: ignore[operator]
    return (time.perf_counter() - began) / jobs * 1e6


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def healthy(broker_url: str, legacy: RedisLegacyQueue, jobs: int, rounds: int) -> None:
    raw_app = Celery("bench-raw", broker=broker_url, set_as_current=False)
    raw_app.conf.update(task_serializer="json", accept_content=["json"], result_backend=None)
    router = QueueRouter(broker_url, legacy=legacy, breaker=BreakerConfig(close_after=1, silence_timeout=None))
    router.observe(HEALTHY)
    router.route(TASK, ("warm",))
    assert router.breaker.state is BreakerState.CLOSED
    raw_app.send_task(TASK, args=("warm",))
    client = redis.Redis.from_url(broker_url)
    raw_times, route_times, ratios = [], [], []
    for r in range(rounds):
        # Paired rounds, alternating which goes first: the machine's load drifts between rounds.
        first, second = ("raw", "route") if r % 2 == 0 else ("route", "raw")
        timing = {}
        for which in (first, second):
            if which == "raw":
                timing[which] = per_job_us(lambda i: raw_app.send_task(TASK, args=(f"e{i}", "x = 1")), jobs)
            else:
                timing[which] = per_job_us(lambda i: router.route(TASK, (f"e{i}", "x = 1")), jobs)
            client.flushdb()
        raw_times.append(timing["raw"])
        route_times.append(timing["route"])
        ratios.append(timing["route"] / timing["raw"])
    raw, routed = statistics.median(raw_times), statistics.median(route_times)
    print(f"healthy, {jobs} jobs x {rounds} paired rounds:")
    for label, median, best in (("raw send_task", raw, min(raw_times)), ("route()", routed, min(route_times))):
        print(f"  {label:14} median {median:5.0f} us/job ({1e6 / median:5.0f} jobs/s), best {best:5.0f} us/job")
    print(
        f"  overhead: median of paired rounds {100 * (statistics.median(ratios) - 1):+.1f}%, "
        f"best vs best {100 * (min(route_times) / min(raw_times) - 1):+.1f}%"
    )
    router.close()
    raw_app.close()
    client.close()


def raw_send_task(kind: str, broker: RedisProcess, cap: float) -> None:
    """What a stock app's send_task does in the same outage (capped at ``cap`` seconds)."""
    import threading

    app = Celery("bench-raw-outage", broker=broker.url(0), set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], result_backend=None)
    app.send_task(TASK, args=("warm",))
    outcome: list[str] = []

    def send() -> None:
        try:
            app.send_task(TASK, args=("x",))
            outcome.append("returned")
        except Exception as exc:
            outcome.append(type(exc).__name__)

    broker.stop() if kind == "refused" else broker.freeze()
    began = time.perf_counter()
    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    thread.join(cap)
    took = time.perf_counter() - began
    result = outcome[0] if outcome else f"still blocked after {cap:g} s"
    if kind == "refused":
        broker.restart()
    else:
        broker.thaw()
        thread.join(30)
    print(f"stock send_task, broker {kind}: {took * 1e3:.0f} ms ({result})")


def outage(kind: str, broker: RedisProcess, legacy: RedisLegacyQueue, send_timeout: float, jobs: int) -> None:
    router = QueueRouter(
        broker.url(0),
        legacy=legacy,
        send_timeout=send_timeout,
        breaker=BreakerConfig(close_after=1, open_after_failures=3, silence_timeout=None),
    )
    router.observe(HEALTHY)
    router.route(TASK, ("warm",))
    assert router.breaker.state is BreakerState.CLOSED
    broker.stop() if kind == "refused" else broker.freeze()
    try:
        first = [router.route(TASK, (f"f{i}",)) for i in range(3)]
        assert router.breaker.state is BreakerState.OPEN, router.breaker.reason
        fallbacks = [router.route(TASK, (f"o{i}",)).seconds * 1e3 for i in range(jobs)]
    finally:
        if kind == "refused":
            broker.restart()
        else:
            broker.thaw()
    print(f"broker {kind} (send deadline {send_timeout * 1e3:.0f} ms):")
    print(
        "  sends while the breaker was closed: "
        + ", ".join(f"{r.seconds * 1e3:.1f} ms ({r.reason.value})" for r in first)
    )
    print(
        f"  fallback once open ({jobs} jobs): p50 {percentile(fallbacks, 0.5):.3f} ms, "
        f"p99 {percentile(fallbacks, 0.99):.3f} ms, max {max(fallbacks):.3f} ms"
    )
    router.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--send-timeout", type=float, default=0.25)
    parser.add_argument("--legacy", default="redis://127.0.0.1:6379/15", help="Redis DB for the legacy queue (flushed)")
    args = parser.parse_args()
    legacy = RedisLegacyQueue.from_url(args.legacy, "bench-legacy")
    legacy.client.flushdb()
    with RedisProcess() as broker:
        healthy(broker.url(0), legacy, args.jobs, args.rounds)
        outage("refused", broker, legacy, args.send_timeout, 1000)
        outage("frozen", broker, legacy, args.send_timeout, 1000)
        raw_send_task("refused", broker, 30.0)
        raw_send_task("frozen", broker, 5.0)
    legacy.client.flushdb()
    legacy.close()


if __name__ == "__main__":
    main()
