"""Expected conditions are not errors: they must not flood anyone's log, the workers' included."""

from __future__ import annotations

import logging
import os
import threading
import uuid

import pytest

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus_server.collector import Collector
from celerystatus_server.config import Settings
from celerystatus_server.descriptors import stop_libuuid_descriptor_leak
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


def _clock_descriptors() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += "libuuid" in os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    return count


def test_threads_making_uuid1_do_not_leak_descriptors() -> None:
    """Found by bench/soak.py: one descriptor more every 15 s or so, for ever.

    Each inspection round runs in its own thread; when a round waits on empty
    polls, kombu's Redis transport takes a redis-py lock whose token is a
    ``uuid1()``, and libuuid keeps a descriptor on its clock file open for
    every thread that ever made one. The collector switches uuid1 to Python's
    own implementation when it starts.
    """
    stop_libuuid_descriptor_leak()
    before = _clock_descriptors()
    for _ in range(20):
        thread = threading.Thread(target=uuid.uuid1)
        thread.start()
        thread.join()
    assert _clock_descriptors() <= before
    assert uuid.uuid1().version == 1
