"""The demo's Celery app: the three task names the status endpoint was built around.

Run by the demo's workers (``celery -A celerystatus_server.demo.tasks -b URL worker``);
the broker comes from ``-b`` (Celery exports it as CELERY_BROKER_URL).
"""

from __future__ import annotations

import random
import time
from typing import Any

from celery import Celery

from celerystatus_server.celery_api import task

#: The demo's own queue: its jobs never land in (or come from) an app's "celery" queue.
QUEUE = "celery-status-demo"

app = Celery("celery_status_demo", broker="redis://127.0.0.1:6379/15")
app.conf.update(
    task_default_queue=QUEUE,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_backend=None,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    # Prefetch one at a time, so waiting jobs stay in the queue rather than
    # piling up as "reserved" on whichever worker asked first.
    worker_prefetch_multiplier=1,
)


@task(app, "tasks.evaluate_code")
def evaluate_code(eval_id: str, code: str = "", duration: float | None = None) -> dict[str, Any]:
    """Pretends to grade a submission: sleeps for a while, like a sandboxed run would."""
    seconds = duration if duration is not None else random.uniform(1.0, 4.0)
    time.sleep(seconds)
    return {"eval_id": eval_id, "lines": code.count("\n") + 1, "seconds": round(seconds, 2)}


@task(app, "tasks.cleanup_old_evaluations")
def cleanup_old_evaluations(max_age_days: int = 30) -> int:
    time.sleep(0.5)
    return random.randint(0, 20)


@task(app, "tasks.monitor_dead_letter_queue")
def monitor_dead_letter_queue() -> int:
    time.sleep(0.2)
    return 0
