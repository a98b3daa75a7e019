"""Schema migrations: applied on start, an older database upgraded in place, a newer one refused."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from celerystatus_server.config import Settings
from celerystatus_server.history import codec, migrate, schema
from celerystatus_server.history.migrate import SchemaTooNew
from celerystatus_server.history.store import HistoryStore, Sample, TaskRunRecord
from celerystatus_server.server import StatusServer
from tests.support.workers import REPO_ROOT

from .conftest import Clock


def _at_revision(store: HistoryStore, revision: str) -> None:
    with store.engine.begin() as connection:
        command.upgrade(migrate._config(connection), revision)


def _old_sample(store: HistoryStore, ts: int, values: dict[str, float]) -> None:
    """A sample as revisions 0001 and 0002 wrote it: every series in one payload, no summary."""
    names = tuple(sorted(values))
    with store.engine.begin() as connection:
        layout = store._layout_id(connection, names)
        connection.execute(
            schema.samples.insert().values(
                resolution=schema.RAW, ts=ts, layout_id=layout,
                payload=codec.encode_raw([values[n] for n in names]),
            )
        )


@pytest.mark.parametrize("previous", ["0001", "0002"])
def test_previous_revision_is_upgraded_in_place(
    store_factory: Callable[..., HistoryStore], clock: Clock, previous: str
) -> None:
    store = store_factory()
    _at_revision(store, previous)
    columns = {c["name"] for c in inspect(store.engine).get_columns("history_samples")}
    assert "summary" not in columns
    now = int(clock())
    _old_sample(store, now - 20, {"workers": 3.0, "worker:w@h:total": 7.0, "queue:celery": 4.0})
    before, after = store.upgrade()
    assert (before, after) == (previous, migrate.head())
    # Old rows still read, next to rows written the new way.
    store.write([Sample(now - 10, {"workers": 2.0, "worker:w@h:total": 9.0, "queue:celery": 1.0})])
    cluster = store.points(now - 30, now, 1, ["workers", "queue:celery"])
    assert [(p.ts, p.values["workers"][0], p.values["queue:celery"][0]) for p in cluster] == [
        (now - 20, 3.0, 4.0), (now - 10, 2.0, 1.0)
    ]
    per_worker = store.points(now - 30, now, 1, ["worker:w@h:total"])
    assert [p.values["worker:w@h:total"][0] for p in per_worker] == [7.0, 9.0]
    store.write(runs=[TaskRunRecord("t1", "tasks.add", "w@h", now - 5, now)])
    assert [r.id for r in store.runs(now - 60, now + 1)[0]] == ["t1"]
    assert store.upgrade() == (migrate.head(), migrate.head())


def test_newer_database_is_refused(store_factory: Callable[..., HistoryStore]) -> None:
    store = store_factory()
    store.upgrade()
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaTooNew, match="revision '9999', newer than this celery-status"):
        store.upgrade()


def test_server_refuses_to_start_on_a_newer_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.sqlite3'}"
    store = HistoryStore(url)
    store.upgrade()
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    store.close()
    server = StatusServer(Settings(broker_url="redis://127.0.0.1:1/0", history_url=url, grpc_address="127.0.0.1:0"))
    with pytest.raises(SchemaTooNew):
        asyncio.run(server.start())


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "celerystatus_server.cli", *args],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60,
    )


def test_upgrade_command(tmp_path: Path) -> None:
    first = _cli("history", "upgrade", "--data-dir", str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert f"upgraded from empty to schema revision {migrate.head()}" in first.stdout
    assert (tmp_path / "history.sqlite3").exists()
    again = _cli("history", "upgrade", "--data-dir", str(tmp_path))
    assert again.returncode == 0 and "already at schema revision" in again.stdout
    store = HistoryStore(f"sqlite:///{tmp_path / 'history.sqlite3'}")
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    store.close()
    newer = _cli("history", "upgrade", "--data-dir", str(tmp_path))
    assert newer.returncode == 2
    assert newer.stderr.count("\n") == 1 and "newer than this celery-status" in newer.stderr
    bad = _cli("history", "upgrade", "--history-url", "mysql://nowhere/db")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "unsupported database" in bad.stderr


def test_migrations_ship_inside_the_package() -> None:
    # Resolved from the installed package, not the source tree, so a wheel migrates too.
    assert migrate.MIGRATIONS.joinpath("env.py").is_file()
    assert {"0001", "0002", "0003"} <= migrate.known_revisions()
