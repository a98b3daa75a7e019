"""The KEDA-side client, compiled from the proto once per run."""

from __future__ import annotations

import pytest

from tests.support.keda_client import KedaContract


@pytest.fixture(scope="session")
def keda_contract(tmp_path_factory: pytest.TempPathFactory) -> KedaContract:
    return KedaContract.compile(tmp_path_factory.mktemp("keda-proto"))
