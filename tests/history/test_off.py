"""`--history-url none`: no store, the status says so, the history API answers 404 / FAILED_PRECONDITION."""

from __future__ import annotations

import grpc
import httpx
import pytest

from celerystatus import CeleryStatusClient, CeleryStatusError, HistoryState
from celerystatus_server.config import Settings
from celerystatus_server.history import resolve_url
from tests.support.server import running_server


def test_history_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_STATUS_HISTORY_URL", "none")
    settings = Settings.load(
        {
            "broker_url": "redis://127.0.0.1:1/0",  # nothing listens: the collector reports an outage, fine here
            "grpc_address": "127.0.0.1:0",
            "http_address": "127.0.0.1:0",
        }
    )
    assert resolve_url(settings.history_url, settings.data_dir) is None
    with running_server(settings) as server, CeleryStatusClient(server.grpc_target, timeout=10) as client:
        assert server.history is None
        assert client.get_status().history.state is HistoryState.OFF
        with pytest.raises(CeleryStatusError) as raised:
            client.get_history("1h")
        assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert "history is off" in str(raised.value)
        with httpx.Client(timeout=10) as http:
            answer = http.get(f"http://127.0.0.1:{server.http_port}/api/celery-status/trends")
            assert answer.status_code == 404 and "history is off" in answer.json()["error"]


def test_default_store_lives_in_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_url(None, "/srv/cs") == "sqlite:////srv/cs/history.sqlite3"
    assert resolve_url("postgresql://u@h/db", None) == "postgresql+psycopg://u@h/db"
    monkeypatch.setenv("CELERY_STATUS_DATA_DIR", "/var/lib/cs")
    monkeypatch.setenv("CELERY_STATUS_HISTORY_INTERVAL", "30")
    settings = Settings.load()
    assert (settings.data_dir, settings.history_interval) == ("/var/lib/cs", 30.0)
