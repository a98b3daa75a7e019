"""Schemathesis against the bridge's OpenAPI document, served by a real server with canned data.

Bounded for CI: CELERY_STATUS_FUZZ_EXAMPLES examples per operation (default 100).
Every generated request, valid or not, must get a documented, non-5xx answer.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from celerystatus_server.config import Settings
from celerystatus_server.server import StatusServer
from tests.support.server import running_server

from .conftest import ADMIN_TOKEN, TOKENS_ENV, VIEWER_TOKEN, canned_status

EXAMPLES = int(os.environ.get("CELERY_STATUS_FUZZ_EXAMPLES", "100"))


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[StatusServer]:
    # No rate limit here: the fuzzer should reach the handlers, not the budget.
    config = Settings(
        enabled=False,
        grpc_address="127.0.0.1:0",
        http_address="127.0.0.1:0",
        tokens=TOKENS_ENV,
        allow_arg_patterns=("eval-*",),
        rate_limit=0,
        fresh_rate_limit=0,
    )
    with running_server(config) as server:
        server.store.publish(canned_status())
        yield server


def _operations(port: int) -> list[Any]:
    # With tokens configured the API description needs one too.
    schema = schemathesis.openapi.from_url(
        f"http://127.0.0.1:{port}/openapi.json", headers={"Authorization": f"Bearer {VIEWER_TOKEN}"}
    )
    return [result.ok() for result in schema.get_all_operations()]


def test_bridge_api_never_fails(fuzz_server: StatusServer) -> None:
    port = fuzz_server.http_port
    assert port is not None
    operations = _operations(port)
    assert {op.path for op in operations} >= {"/api/celery-status", "/api/celery-status/tasks", "/metrics"}
    checked: dict[tuple[str, str], int] = {}

    def fuzz(strategy: Any, label: tuple[str, str]) -> None:
        @given(case=strategy)
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def check(case: Any) -> None:
            # Each generated request as each kind of caller: anonymous, viewer, admin.
            for token in (None, VIEWER_TOKEN, ADMIN_TOKEN):
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                response = case.call(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10)
                checked[label] = checked.get(label, 0) + 1
                case.validate_response(
                    response, checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
                )

        check()

    for operation, mode in itertools.product(operations, GenerationMode):
        if mode is GenerationMode.NEGATIVE and not operation.query:
            continue  # nothing to get wrong in a request without parameters
        fuzz(operation.as_strategy(generation_mode=mode), (operation.path, mode.value))
    assert all(count >= 3 for count in checked.values()), checked
    print("requests per operation and mode:", checked)
