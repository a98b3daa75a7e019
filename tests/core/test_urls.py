"""Broker URLs: the ones the collector can use are accepted, the rest refused at the edge; secrets masked."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from celerystatus_server.collector import Collector
from celerystatus_server.config import Settings, SettingsError
from celerystatus_server.snapshot import SnapshotStore
from celerystatus_server.urls import check_broker_url, mask_text, mask_url
from tests.support.services import ci
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "redis://:pw@redis/15",
        "redis://redis",
        "rediss://:pw@redis:6380/0?ssl_cert_reqs=required",
        "redis+socket:///run/redis/redis.sock",
        "redis+socket:///tmp/r.sock?virtual_host=2",
        "sentinel://s1:26379;sentinel://s2:26379",
        "amqp://guest:guest@rabbit:5672//",
        "amqps://u:p@rabbit:5671/vhost",
        "pyamqp://rabbit",
        "redis://[::1]:6379/0",
        "redis://a:1/0;redis://b:1/0",
    ],
)
def test_usable_broker_urls_are_accepted(url: str) -> None:
    check_broker_url(url)
    assert Settings(broker_url=url).broker_url == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("foo://x", "unsupported broker scheme 'foo'"),
        ("sqs://key:secret@", "unsupported broker scheme 'sqs'"),
        ("memory://", "unsupported broker scheme 'memory'"),
        ("not a url", "not a broker URL"),
        ("redis:/x", "not a broker URL"),
        ("redis://", "has no host"),
        ("amqp://guest:guest@/", "has no host"),
        ("redis://:pw@127.0.0.1:abc/0", "Port could not be cast"),
        ("redis://127.0.0.1:70000/0", "out of range"),
        ("redis://127.0.0.1:0/0", "port 0"),
        ("redis://127.0.0.1/abc", "database number"),
        ("redis+socket://host/tmp/x", "socket's path"),
        ("redis+socket://", "socket's path"),
        ("redis://a:1/0;", "not a broker URL"),
    ],
)
def test_broker_urls_that_can_never_work_are_refused(url: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings(broker_url=url)
    text = str(caught.value)
    assert message in text and "--broker (CELERY_STATUS_BROKER_URL)" in text and "\n" not in text
    assert ":pw@" not in text


def test_a_disabled_server_does_not_judge_the_broker_url() -> None:
    assert not Settings(broker_url="foo://x", enabled=False).enabled


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://h:6379/0?password=s3cret", "redis://h:6379/0?password=***"),
        ("redis+socket:///tmp/x?password=s3cret&virtual_host=1", "redis+socket:///tmp/x?password=***&virtual_host=1"),
        ("redis://:s3cret@h/0?sentinel_password=s3cret&ssl_cert_reqs=required",
         "redis://:***@h/0?sentinel_password=***&ssl_cert_reqs=required"),
        ("amqp://u@h//?auth_token=s3cret", "amqp://u@h//?auth_token=***"),
        ("redis://h/0?Password=s3cret;redis://h2/0?api_key=s3cret", "redis://h/0?Password=***;redis://h2/0?api_key=***"),
        ("redis://h/0?db=1", "redis://h/0?db=1"),
    ],
)
def test_secret_query_parameters_are_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert "s3cret" not in mask_text(f"Error connecting to {url}: refused")


def test_masking_leaves_ordinary_text_alone() -> None:
    text = "GET /api/celery-status?task_name=evaluate_code&eval_id=123 200"
    assert mask_text(text) == text
    assert mask_text("see /x?token=abc&b=1") == "see /x?token=***&b=1"


@pytest.fixture
def redis_on_a_socket(tmp_path: Path) -> Iterator[Path]:
    binary = shutil.which("redis-server")
    if binary is None:
        if ci():
            pytest.fail("redis-server is required")
        pytest.skip("redis-server not installed")
    path = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", str(path), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for(path.exists, timeout=15, message="redis socket")
        yield path
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.mark.slow
def test_collector_works_over_redis_socket(redis_on_a_socket: Path, worker_factory: WorkerFactory) -> None:
    url = f"redis+socket://{redis_on_a_socket}?password=s3cret-unused"
    plain = f"redis+socket://{redis_on_a_socket}"
    worker_factory("sock", broker_url=plain)
    collector = Collector(Settings(broker_url=plain, refresh_interval=0.5, queues=("sockq",)), SnapshotStore())
    collector.start()
    try:
        status = wait_for(
            lambda: (s := collector.store.latest().status).connected and s.workers == 1 and s, timeout=30,
            message="worker seen over the unix socket",
        )
    finally:
        collector.stop()
    assert status and [q.name for q in status.queues if q.name == "sockq"] == ["sockq"]
    assert mask_url(url).endswith("?password=***")
