"""The recorder with a locked SQLite database: never blocks the caller, bounded buffer, drops counted, recovery."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus_server.history.recorder import HistoryRecorder
from celerystatus_server.history.store import HistoryStore
from celerystatus_server.snapshot import SnapshotStore
from tests.support.waiting import wait_for


def _status(when: float) -> pb.CeleryStatus:
    status = pb.CeleryStatus(enabled=True, connected=True, workers=1)
    status.observed_at.FromNanoseconds(int(when * 1e9))
    status.worker_stats["w@h"].total = int(when) % 1000
    return status


def test_locked_database_fills_the_buffer_then_drops_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    snapshots = SnapshotStore()
    recorder = HistoryRecorder(snapshots, HistoryStore(f"sqlite:///{path}"), interval=1.0, buffer=3)
    recorder.prepare()
    recorder.start()
    try:
        t0 = float(int(time.time()))
        snapshots.publish(_status(t0))
        wait_for(lambda: recorder.state().written == 1, timeout=10)
        locker = sqlite3.connect(path, timeout=0, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
        for i in range(1, 11):
            snap = snapshots.publish(_status(t0 + i))  # publishing never waits for the database
            wait_for(lambda snap=snap: recorder.seen_version >= snap.version, timeout=10)
        wait_for(lambda: recorder.state().degraded, timeout=20, message="never degraded")
        wait_for(lambda: recorder.state().dropped >= 10 - 3 - 1, timeout=20)
        state = recorder.state()
        assert state.buffered <= 3 and "history store" in state.error
        assert recorder.info().state == pb.HISTORY_STATE_DEGRADED
        locker.execute("ROLLBACK")
        locker.close()
        wait_for(lambda: not recorder.state().degraded and recorder.state().buffered == 0, timeout=30)
        recovered = recorder.state()
        # Every sample is either stored or counted as dropped.
        assert recovered.written + recovered.dropped == 11
        assert recorder.info().state == pb.HISTORY_STATE_OK
        stored = recorder.store.points(t0 - 1, t0 + 20, 1)
        assert len(stored) == recovered.written
    finally:
        recorder.stop()
