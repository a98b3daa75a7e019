"""Starts real test workers and cleans every one of them up."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from celery import Celery

from celerystatus_server.demo.workers import WorkerProcess

__all__ = ["REPO_ROOT", "WorkerFactory", "control_app"]

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_APP = "tests.support.worker_app"
EXTENSION = "celerystatus_server.worker_extension"


def control_app(broker_url: str) -> Celery:
    """A client-side app for sending tasks and remote-control commands to test workers."""
    app = Celery("celery_status_test_client", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        broker_connection_retry_on_startup=True,
    )
    return app


class WorkerFactory:
    """``factory(...)`` starts a worker and returns once it answers ``ping``."""

    def __init__(self, broker_url: str, log_dir: Path) -> None:
        self.broker_url = broker_url
        self.log_dir = log_dir
        self.workers: list[WorkerProcess] = []
        self._apps: dict[str, Celery] = {}

    def control(self, broker_url: str | None = None) -> Celery:
        url = broker_url or self.broker_url
        if url not in self._apps:
            self._apps[url] = control_app(url)
        return self._apps[url]

    def __call__(
        self,
        name: str | None = None,
        *,
        concurrency: int = 2,
        queues: Sequence[str] = (),
        extension: bool = False,
        extra_args: Sequence[str] = (),
        broker_url: str | None = None,
        pool: str = "prefork",
        env: dict[str, str] | None = None,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> WorkerProcess:
        name = name or f"w{len(self.workers) + 1}"
        url = broker_url or self.broker_url
        worker_env = dict(os.environ)
        worker_env.update(env or {})
        worker_env["CELERY_STATUS_TEST_BROKER"] = url
        worker_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), worker_env.get("PYTHONPATH", "")) if p
        )
        worker_env["PYTHONUNBUFFERED"] = "1"
        worker = WorkerProcess(
            TEST_APP,
            name,
            broker_url=url,
            concurrency=concurrency,
            pool=pool,
            queues=queues,
            include=(EXTENSION,) if extension else (),
            extra_args=extra_args,
            env=worker_env,
            cwd=REPO_ROOT,
            log_path=self.log_dir / f"{name}.log",
        )
        self.workers.append(worker.start())
        if wait:
            worker.wait_ready(self.control(url), timeout=timeout)
        return worker

    def send(
        self, task_name: str, *args: Any, broker_url: str | None = None, **options: Any
    ) -> Any:
        """``send_task`` through the control app; options as for ``apply_async``."""
        return self.control(broker_url).send_task(task_name, args=args, **options)

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()
        for app in self._apps.values():
            app.close()
        self._apps.clear()
