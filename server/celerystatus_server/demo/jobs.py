"""A background stream of demo jobs, so the status endpoint has something to show."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

from .tasks import QUEUE

__all__ = ["STUCK_EVAL_ID", "Job", "JobStream", "plan"]

# Submitted first and left running for minutes: the "why is my evaluation
# stuck?" case, findable with find-task / SearchTasks.
STUCK_EVAL_ID = "eval-123"
STUCK_SECONDS = 300.0

_SNIPPETS = (
    "print('hello')",
    "def add(a, b):\n    return a + b",
    "import math\nprint(math.pi)",
    "for i in range(3):\n    print(i)",
)


@dataclass(frozen=True)
class Job:
    name: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    countdown: float | None = None


def plan(n: int, rng: random.Random) -> list[Job]:
    """The jobs sent at step ``n`` (0-based) of the stream."""
    eval_id = f"eval-{123 + n}"
    if n == 0:
        return [Job("tasks.evaluate_code", (eval_id, _SNIPPETS[0]), (("duration", STUCK_SECONDS),))]
    jobs = []
    duration = (("duration", round(rng.uniform(1.0, 4.0), 2)),)
    # Every fourth evaluation waits for a countdown, so workers hold scheduled tasks.
    countdown = rng.uniform(15.0, 45.0) if n % 4 == 0 else None
    jobs.append(Job("tasks.evaluate_code", (eval_id, rng.choice(_SNIPPETS)), duration, countdown))
    if n % 10 == 0:
        jobs.append(Job("tasks.cleanup_old_evaluations", (), (("max_age_days", 30),)))
    if n % 15 == 0:
        jobs.append(Job("tasks.monitor_dead_letter_queue"))
    return jobs


class JobStream:
    """Sends ``plan(n)`` to the demo's queue every ``interval`` seconds from a daemon thread until stopped."""

    def __init__(self, app: Any, interval: float = 1.0, seed: int | None = None, queue: str = QUEUE) -> None:
        self.app = app
        self.queue = queue
        self.interval = interval
        self.sent = 0
        self.errors = 0
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-job-stream", daemon=True)

    def start(self) -> JobStream:
        self._thread.start()
        return self

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            for job in plan(n, self._rng):
                try:
                    self.app.send_task(
                        job.name, args=job.args, kwargs=dict(job.kwargs), countdown=job.countdown,
                        queue=self.queue,
                    )  # fmt: skip
                    self.sent += 1
                except Exception:  # a broker hiccup must not end the demo; it is what it shows
                    self.errors += 1
            n += 1
            self._stop.wait(self.interval)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()
