"""The broker password never leaves the process; exposed listeners need credentials to start."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from celerystatus_server.security import logs

from .conftest import BROKER_PASSWORD, TOKENS_ENV, free_port, seen_with_broker

CLI = str(Path(sys.executable).parent / "celery-status")


async def test_password_is_masked_in_grpc_json_metrics_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://celery:{BROKER_PASSWORD}@127.0.0.1:{free_port()}/10"
    caplog.set_level(logging.DEBUG)
    status, answer, metrics = await seen_with_broker(url)
    body = answer.text
    assert not status.connected and status.error
    assert status.broker_url == "redis://celery:***@127.0.0.1:" + url.rsplit(":", 1)[1]
    for where, text in (("gRPC", str(status)), ("JSON", body), ("metrics", metrics), ("logs", caplog.text)):
        assert BROKER_PASSWORD not in text, where
    assert "celery:***@" in caplog.text


def test_masking_covers_arguments_and_tracebacks() -> None:
    logs.install()
    record = logging.getLogger("t").makeRecord(
        "t", logging.ERROR, __file__, 1, "url=%s", ("amqp://u:pw-123@h//",), None
    )
    assert record.getMessage() == "url=amqp://u:***@h//"
    try:
        raise ConnectionError("amqp://u:pw-456@h// refused")
    except ConnectionError:
        text = logging.Formatter().format(
            logging.getLogger("t").makeRecord("t", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
        )
    assert "pw-456" not in text and "u:***@h" in text


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_STATUS_")}
    environ.update(env or {})
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, env=environ, check=False)


@pytest.mark.parametrize(
    ("args", "env", "what"),
    [
        (["serve", "--disabled", "--grpc-address", "0.0.0.0:0"], {}, "gRPC address 0.0.0.0:0"),
        (["serve", "--disabled", "--http-address", "0.0.0.0:0"], {}, "HTTP address 0.0.0.0:0"),
        (["bridge", "--http-address", "0.0.0.0:0"], {}, "HTTP address 0.0.0.0:0"),
        (["serve", "--disabled"], {"CELERY_STATUS_GRPC_ADDRESS": "[::]:0"}, "gRPC address [::]:0"),
    ],
)
def test_exposed_listener_without_credentials_refuses_to_start(args: list[str], env: dict[str, str], what: str) -> None:
    done = _run(*args, env=env)
    assert done.returncode == 2
    assert f"refusing to serve {what}" in done.stderr and "--allow-unauthenticated" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--disabled", "--tokens-file", "/nonexistent/tokens"], "cannot read the tokens file"),
        (["serve", "--disabled", "--tls-cert", "/x.pem"], "tls_cert and tls_key must be given together"),
        (["serve", "--disabled", "--cors-origin", "*"], "CORS origin must be an exact"),
        (["serve", "--disabled", "--allow-arg", "*"], "matches everything"),
        (["serve", "--disabled", "--client-cert-roles", "/dev/null"], "needs tls_client_ca"),
    ],
)
def test_bad_security_configuration_is_a_clear_startup_error(args: list[str], message: str) -> None:
    done = _run(*args)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_exposed_listener_starts_with_tokens_or_explicit_consent() -> None:
    for args, env in (
        (["serve", "--disabled", "--grpc-address", "0.0.0.0:0"], {"CELERY_STATUS_TOKENS": TOKENS_ENV}),
        (["serve", "--disabled", "--grpc-address", "0.0.0.0:0", "--allow-unauthenticated"], {}),
    ):
        environ = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_STATUS_")} | env
        proc = subprocess.Popen([CLI, *args], stderr=subprocess.PIPE, text=True, env=environ)
        try:
            assert proc.stderr is not None
            assert "gRPC on 0.0.0.0:0" in proc.stderr.readline()
            assert proc.poll() is None
        finally:
            proc.terminate()
            proc.wait(timeout=30)
