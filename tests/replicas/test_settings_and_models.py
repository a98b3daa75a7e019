"""Replica settings (bad values: one line, exit 2) and the ReplicaInfo conversions."""

from __future__ import annotations

import json

import pytest

from celerystatus import CeleryStatus, ReplicaInfo, ReplicaRole
from celerystatus.schema import STATUS_JSON_SCHEMA
from celerystatus.v1 import celery_status_pb2 as pb
from celerystatus_server import cli
from celerystatus_server.config import Settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("CELERY_STATUS_"):
            monkeypatch.delenv(name)


def test_coordination_is_off_by_default_and_the_lease_follows_the_interval() -> None:
    settings = Settings()
    assert settings.coordination_url is None
    assert Settings(refresh_interval=3).lease_ttl == 6
    assert Settings(refresh_interval=3, coordination_ttl=1.5).lease_ttl == 1.5


@pytest.mark.parametrize(
    "url",
    ["redis://h:6379/0", "rediss://:pw@h/1", "postgresql://u@h/db", "postgres://h/db", "postgresql+psycopg://h/db"],
)
def test_coordination_urls_accepted(url: str) -> None:
    assert Settings(coordination_url=url).coordination_url == url


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--coordination-url", "amqp://guest@h//"], "--coordination-url (CELERY_STATUS_COORDINATION_URL)"),
        (["--coordination-url", "h:6379"], "--coordination-url"),
        (["--coordination-ttl", "0.1"], "--coordination-ttl (CELERY_STATUS_COORDINATION_TTL)"),
        (["--coordination-ttl", "nan"], "--coordination-ttl"),
        (["--coordination-key", "a b"], "--coordination-key (CELERY_STATUS_COORDINATION_KEY)"),
        (["--coordination-key", "x" * 49], "--coordination-key"),
        (["--replica-name", "pod/1"], "--replica-name (CELERY_STATUS_REPLICA_NAME)"),
    ],
)
def test_bad_replica_settings_exit_2_with_one_line(
    args: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and named in err and "Traceback" not in err


def test_a_bad_coordination_url_is_masked_in_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--coordination-url", "amqp://user:s3cret@h//"]) == 2
    err = capsys.readouterr().err
    assert "s3cret" not in err and "***" in err


def test_replica_settings_from_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_STATUS_COORDINATION_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("CELERY_STATUS_COORDINATION_TTL", "3")
    monkeypatch.setenv("CELERY_STATUS_REPLICA_NAME", "pod-1")
    settings = Settings.load({})
    assert (settings.coordination_url, settings.lease_ttl, settings.replica_name) == (
        "redis://127.0.0.1:6379/3",
        3.0,
        "pod-1",
    )


def _replicated() -> pb.CeleryStatus:
    status = pb.CeleryStatus(enabled=True, connected=True, workers=2)
    status.observed_at.FromNanoseconds(1_700_000_000_500_000_000)
    status.replica.observed_by = "pod-a"
    status.replica.term = 7
    status.replica.served_by = "pod-b"
    status.replica.role = pb.REPLICA_ROLE_FOLLOWER
    status.replica.published_at.FromNanoseconds(1_700_000_000_750_000_000)
    return status


def test_replica_info_round_trips_through_proto_and_json() -> None:
    model = CeleryStatus.from_proto(_replicated())
    assert model.replica == ReplicaInfo("pod-a", 7, "pod-b", ReplicaRole.FOLLOWER, False, 1_700_000_000.75)
    assert model.to_proto() == _replicated()
    document = json.loads(json.dumps(model.to_dict()))
    assert document["replica"]["role"] == "follower" and document["replica"]["observed_by"] == "pod-a"
    assert CeleryStatus.from_dict(document) == model


def test_a_server_running_alone_has_replica_null_and_both_satisfy_the_schema() -> None:
    import jsonschema

    alone = CeleryStatus.from_proto(pb.CeleryStatus(enabled=True)).to_dict()
    assert alone["replica"] is None
    jsonschema.validate(alone, STATUS_JSON_SCHEMA)
    jsonschema.validate(CeleryStatus.from_proto(_replicated()).to_dict(), STATUS_JSON_SCHEMA)
