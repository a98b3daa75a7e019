"""The Celery app the test workers run (``celery -A tests.support.worker_app``).

Task names match the production ones the status endpoint reports on.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from tests.support.holds import block_until_released

BROKER_URL = os.environ.get("CELERY_STATUS_TEST_BROKER", "redis://127.0.0.1:6379/1")
# Holds need a Redis; when the broker is not one (RabbitMQ tests), point this elsewhere.
HOLD_REDIS_URL = os.environ.get("CELERY_STATUS_TEST_HOLD_REDIS", BROKER_URL)

app = Celery("celery_status_tests", broker=BROKER_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_backend=None,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
# Router chaos tests: a SIGKILLed worker's unacknowledged messages come back after this many seconds.
_VISIBILITY = os.environ.get("CELERY_STATUS_TEST_VISIBILITY_TIMEOUT")
if _VISIBILITY:
    app.conf.broker_transport_options = {
        "visibility_timeout": float(_VISIBILITY),
        "unacked_restore_interval": 1.0,
        "unacked_restore_throttle": 1,
        # A worker killed during a restore sweep must not block the others' sweeps for long.
        "unacked_mutex_expire": 10,
    }


@app.task(name="tasks.evaluate_code")
def evaluate_code(
    eval_id: str, code: str = "", hold: str | None = None, hold_timeout: float = 60.0
) -> dict[str, Any]:
    released = block_until_released(HOLD_REDIS_URL, hold, hold_timeout) if hold else True
    return {"eval_id": eval_id, "code_length": len(code), "released": released}


@app.task(name="tasks.cleanup_old_evaluations")
def cleanup_old_evaluations() -> int:
    return 0


@app.task(name="tasks.monitor_dead_letter_queue")
def monitor_dead_letter_queue() -> int:
    return 0


@app.task(name="tests.hold")
def hold(token: str, timeout: float = 60.0) -> bool:
    return block_until_released(HOLD_REDIS_URL, token, timeout)


@app.task(name="tests.record_job", bind=True, acks_late=True, reject_on_worker_lost=True)
def record_job(self: Any, *args: Any, **kwargs: Any) -> bool:
    """Router tests: records one execution per job id through the dedupe store."""
    from tests.support.router_jobs import record

    return record(self.request.id, via="celery")
