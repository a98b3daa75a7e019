"""Token configuration, constant-time verification, and the hash-token helper."""

from __future__ import annotations

import hmac
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from celerystatus_server.security import tokens as tokens_module
from celerystatus_server.security.tokens import TokenError, TokenStore, bearer_token, hash_token


def test_file_and_env_sources_add_up(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# ops team\n{hash_token('a')} admin ops  # trailing comment\n\n{hash_token('b')} viewer\n")
    store = TokenStore.load(path, f"{hash_token('c')}:viewer:grafana")
    assert len(store) == 3
    assert store.verify("a") == ("ops", "admin")
    assert store.verify("b") == (f"token-{hash_token('b')[:8]}", "viewer")
    assert store.verify("c") == ("grafana", "viewer")
    assert store.verify("d") is None and store.verify("") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc admin", "SHA-256"),
        (f"{hash_token('a')} root", "unknown role"),
        (f"{hash_token('a')}", "expected"),
        (f"{hash_token('a')} admin x y", "expected"),
        (f"{hash_token('a')} admin same\n{hash_token('b')} viewer same", "unique"),
    ],
)
def test_bad_token_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tokens"
    path.write_text(text)
    with pytest.raises(TokenError, match=message):
        TokenStore.load(path)


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="cannot read"):
        TokenStore.load(tmp_path / "missing")


def test_every_entry_is_compared_with_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    store = TokenStore.load(env_value=",".join(f"{hash_token(t)}:viewer:{t}" for t in "abcde"))
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tokens_module.hmac, "compare_digest", spy)
    assert store.verify("a") == ("a", "viewer")  # the first entry matches...
    assert len(calls) == 5  # ...and every other entry is still compared
    calls.clear()
    assert store.verify("zzz") is None and len(calls) == 5
    # No ordinary comparison of secrets anywhere in verify().
    source = inspect.getsource(TokenStore.verify)
    assert "==" not in source and "compare_digest" in source


def test_oversized_token_is_rejected_without_hashing() -> None:
    store = TokenStore.load(env_value=f"{hash_token('a')}:viewer")
    assert store.verify("a" * 10_000) is None


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer abc", "abc"), ("Basic abc", None), ("Bearer", None), ("", None), (None, None)],
)
def test_bearer_header_parsing(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_hash_token_command() -> None:
    script = Path(sys.executable).parent / "celery-status"
    done = subprocess.run(
        [str(script), "hash-token", "--role", "viewer", "--name", "grafana"],
        input="s3cret-token\n", capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [hash_token("s3cret-token"), "viewer", "grafana"]
