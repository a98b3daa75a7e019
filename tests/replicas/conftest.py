"""Coordination stores for the replica tests: a flushed Redis DB, or a unique row of the shared PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from celerystatus_server.coordination import CoordinationStore, open_store


def unique_key() -> str:
    return "t-" + uuid.uuid4().hex[:12]


@pytest.fixture(params=["redis", "postgresql"])
def coordination_url(request: pytest.FixtureRequest) -> str:
    """A coordination store URL of each kind; use with ``unique_key()``."""
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        return url
    dsn: str = request.getfixturevalue("postgres_dsn")
    return dsn


@pytest.fixture
def store_factory(coordination_url: str) -> Iterator[Callable[[str], CoordinationStore]]:
    """Stores of one replica set (same key), one per simulated replica."""
    key = unique_key()
    opened: list[CoordinationStore] = []

    def make(_: str = "") -> CoordinationStore:
        store = open_store(coordination_url, key, timeout=1.0)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
