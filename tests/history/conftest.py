"""History stores on both engines: a SQLite file per test, a PostgreSQL schema per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from celerystatus_server.history.store import HistoryStore, Retention


def pg_url(dsn: str, schema: str) -> str:
    """A SQLAlchemy URL for ``dsn`` whose tables land in ``schema``."""
    base = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def pg_schema_url(postgres_dsn: str) -> Iterator[Callable[[], str]]:
    """Each call: a fresh schema on the shared PostgreSQL, dropped after the test."""
    created: list[str] = []

    def make() -> str:
        schema = f"cs_history_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        created.append(schema)
        return pg_url(postgres_dsn, schema)

    yield make
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        for schema in created:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def history_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite3'}"
    make: Callable[[], str] = request.getfixturevalue("pg_schema_url")
    return make()


class Clock:
    """An injectable wall clock for roll-ups and retention."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store_factory(history_url: str, clock: Clock) -> Iterator[Callable[..., HistoryStore]]:
    stores: list[HistoryStore] = []

    def make(**kwargs: object) -> HistoryStore:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("retention", Retention())
        store = HistoryStore(history_url, **kwargs)  # type: ignore[arg-type]
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def store(store_factory: Callable[..., HistoryStore]) -> HistoryStore:
    store = store_factory()
    store.upgrade()
    return store
