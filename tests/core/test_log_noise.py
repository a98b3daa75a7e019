"""Expected conditions are not errors: they must not flood anyone's log, the workers' included."""

from __future__ import annotations

import logging

import pytest

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus_server.collector import Collector
from celerystatus_server.config import Settings
from celerystatus_server.snapshot import SnapshotStore
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory

pytestmark = pytest.mark.slow


def test_stock_workers_are_never_sent_the_extension_command(
    redis_url: str, worker_factory: WorkerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stock = [worker_factory("stock1"), worker_factory("stock2")]
    extended = worker_factory("extended", extension=True)
    collector = Collector(Settings(broker_url=redis_url, refresh_interval=0.3), SnapshotStore())
    collector.start()
    try:
        status = wait_for(
            lambda: (s := collector.store.latest().status).workers == 3
            and s.inspection.method == pb.INSPECTION_METHOD_MIXED
            and collector.rounds >= 6
            and s,
            timeout=30,
        )
    finally:
        collector.stop()
    assert status.worker_stats[extended.hostname].extension
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    for worker in stock:
        # Before: "pidbox command error: KeyError('celery_status_snapshot')" with a traceback.
        log = worker.log_path.read_text(errors="replace")
        assert "celery_status_snapshot" not in log and "Traceback" not in log, log[-2000:]
