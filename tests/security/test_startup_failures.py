"""Start-up failures are one line naming the flag and the cause, exit code 2; the banner means both ports are bound."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .certs import CertificateAuthority

CLI = str(Path(sys.executable).parent / "celery-status")


def _environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_STATUS_")}
    return environ | (extra or {})


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, env=_environ(env), check=False)


def _assert_one_line(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    err = done.stderr
    assert done.returncode == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err and "Failed to bind" not in err, err
    assert "gRPC on" not in err  # no banner
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("tls")
    ca = CertificateAuthority(directory)
    good = ca.issue("localhost", server=True, stem="server")
    other = ca.issue("localhost", server=True, stem="other")
    garbage = directory / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    return {"cert": good.cert, "key": good.key, "other_key": other.key, "garbage": garbage, "ca": ca.cert}


def _tls(cert: Path, key: Path, *extra: str) -> list[str]:
    return ["serve", "--disabled", "--grpc-address", "127.0.0.1:0", "--tls-cert", str(cert), "--tls-key", str(key),
            *extra]


def test_key_not_matching_the_certificate(tls_files: dict[str, Path]) -> None:
    _assert_one_line(_run(*_tls(tls_files["cert"], tls_files["other_key"])), "--tls-key", "is not the key of",
                     "--tls-cert")


def test_garbage_certificate(tls_files: dict[str, Path]) -> None:
    _assert_one_line(_run(*_tls(tls_files["garbage"], tls_files["key"])), "--tls-cert", "holds no PEM certificate")


def test_garbage_key(tls_files: dict[str, Path]) -> None:
    _assert_one_line(_run(*_tls(tls_files["cert"], tls_files["garbage"])), "--tls-key", "no usable PEM private key")


def test_garbage_client_ca(tls_files: dict[str, Path]) -> None:
    done = _run(*_tls(tls_files["cert"], tls_files["key"], "--tls-client-ca", str(tls_files["garbage"])))
    _assert_one_line(done, "--tls-client-ca", "holds no PEM certificate")


def test_missing_tls_file(tls_files: dict[str, Path]) -> None:
    _assert_one_line(_run(*_tls(tls_files["cert"], Path("/nonexistent/key.pem"))), "--tls-key",
                     "No such file or directory")


def test_bridge_checks_tls_files_too(tls_files: dict[str, Path]) -> None:
    done = _run("bridge", "--http-address", "127.0.0.1:0", "--tls-cert", str(tls_files["cert"]),
                "--tls-key", str(tls_files["other_key"]))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "is not the key of" in done.stderr, done.stderr


def test_grpc_port_in_use(busy_port: int) -> None:
    done = _run("serve", "--disabled", "--grpc-address", f"127.0.0.1:{busy_port}")
    _assert_one_line(done, "--grpc-address", f"127.0.0.1:{busy_port}", "Address already in use")


def test_http_port_in_use(busy_port: int) -> None:
    done = _run("serve", "--disabled", "--grpc-address", "127.0.0.1:0", "--http-address", f"127.0.0.1:{busy_port}")
    _assert_one_line(done, "--http-address", "Address already in use")


def test_http_port_in_use_with_tls(busy_port: int, tls_files: dict[str, Path]) -> None:
    done = _run(*_tls(tls_files["cert"], tls_files["key"], "--http-address", f"127.0.0.1:{busy_port}"))
    _assert_one_line(done, "--http-address", "Address already in use")


def test_standalone_bridge_port_in_use(busy_port: int) -> None:
    done = _run("bridge", "--http-address", f"127.0.0.1:{busy_port}")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "--http-address" in done.stderr and "Address already in use" in done.stderr


def test_app_that_cannot_be_imported() -> None:
    done = _run("serve", "--grpc-address", "127.0.0.1:0", "--app", "nosuchmodule:app")
    _assert_one_line(done, "--app (CELERY_STATUS_APP)", "No module named 'nosuchmodule'")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("foo://x", "unsupported broker scheme 'foo'"),
        ("not a url", "not a broker URL"),
        ("redis://", "has no host"),
        ("redis://:pw-secret@127.0.0.1:abc/0", "Port could not be cast"),
        ("redis://127.0.0.1:99999/0", "out of range"),
    ],
)
def test_broker_url_that_can_never_work(url: str, fragment: str) -> None:
    done = _run("serve", "--grpc-address", "127.0.0.1:0", env={"CELERY_STATUS_BROKER_URL": url})
    _assert_one_line(done, "--broker (CELERY_STATUS_BROKER_URL)", fragment)
    assert "pw-secret" not in done.stderr


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([CLI, *args], stderr=subprocess.PIPE, text=True, env=_environ())


def test_banner_comes_once_both_ports_are_bound_and_a_broker_down_is_data() -> None:
    # Port 1 on loopback: nothing listens, so the broker is down; that is reported, not refused.
    proc = _start("serve", "--broker", "redis://127.0.0.1:1/0", "--grpc-address", "127.0.0.1:0",
                  "--http-address", "127.0.0.1:0")
    try:
        assert proc.stderr is not None
        banner = proc.stderr.readline()
        assert banner.startswith("celery-status: gRPC on 127.0.0.1:0 (port "), banner
        grpc_port = int(banner.split("(port ", 1)[1].split(")", 1)[0])
        http_port = int(banner.rsplit("(port ", 1)[1].split(")", 1)[0])
        for port in (grpc_port, http_port):
            # Both accept connections the moment the banner is out.
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        import httpx

        body = httpx.get(f"http://127.0.0.1:{http_port}/api/celery-status?max_age=0", timeout=30).json()
        assert body["connected"] is False and body["enabled"] is True
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["--refresh-interval", "nan"], {}, "--refresh-interval (CELERY_STATUS_REFRESH_INTERVAL): must be a finite"),
        ([], {"CELERY_STATUS_RATE_BURST": "nan"}, "--rate-burst (CELERY_STATUS_RATE_BURST): must be a finite"),
        (["--refresh-interval", "inf"], {}, "must be a finite number"),
        ([], {"CELERY_STATUS_MAX_STREAMS": "0"}, "--max-streams (CELERY_STATUS_MAX_STREAMS)"),
    ],
)
def test_bad_numbers_through_the_installed_command(args: list[str], env: dict[str, str], fragment: str) -> None:
    # The same rule the in-process tests check for every numeric setting, through the console script.
    _assert_one_line(_run("serve", "--disabled", *args, env=env), fragment)
