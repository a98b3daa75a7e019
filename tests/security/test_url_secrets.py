"""A broker password given as a URL query parameter is masked in gRPC, JSON, metrics and logs."""

from __future__ import annotations

import logging

import pytest

from .conftest import BROKER_PASSWORD, free_port, seen_with_broker


@pytest.mark.parametrize("query", ["password={}", "db=10&password={}", "sentinel_password={}&password={}"])
async def test_query_password_is_masked_everywhere(query: str, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nothing listens: every round fails and quotes the URL
    url = f"redis://127.0.0.1:{port}/10?" + query.format(BROKER_PASSWORD, BROKER_PASSWORD)
    caplog.set_level(logging.DEBUG)
    status, answer, metrics = await seen_with_broker(url)
    body = answer.json()
    assert not status.connected
    assert status.broker_url == body["broker_url"]
    assert "password=***" in body["broker_url"] and f"127.0.0.1:{port}/10" in body["broker_url"]
    for where, text in (("gRPC", str(status)), ("JSON", str(body)), ("metrics", metrics), ("logs", caplog.text)):
        assert BROKER_PASSWORD not in text, where
