"""The Dockerfile: hadolint-clean and shaped as documented.

.ci/build-image builds it with podman and checks the image itself (user,
compilers, HEALTHCHECK against a running server); these checks need no engine.
"""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import REPO_ROOT, run, tool

DOCKERFILE = REPO_ROOT / "Dockerfile"


def stages() -> list[list[str]]:
    """Instructions of each stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    found: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            found.append([])
        if found:
            found[-1].append(line)
    return found


def test_hadolint_passes() -> None:
    result = run([tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_problem(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get update && apt-get install -y gcc\n")
    assert run([tool("hadolint"), str(bad)]).returncode != 0


def test_runtime_stage_installs_the_wheel_and_runs_unprivileged() -> None:
    build, runtime = stages()
    assert " AS build" in build[0]
    assert any("pip wheel" in line for line in build)
    # Only the wheels come over from the build stage: no sources, no build tools.
    copies = [line for line in runtime if line.startswith("COPY")]
    assert copies == ["COPY --from=build /wheels /tmp/wheels"]
    assert any("pip install --no-index" in line for line in runtime)
    (user,) = [line for line in runtime if line.startswith("USER")]
    assert user == "USER 10001:10001"
    (healthcheck,) = [line for line in runtime if line.startswith("HEALTHCHECK")]
    assert "/livez" in healthcheck
    assert runtime[-2:] == ['ENTRYPOINT ["celery-status"]', 'CMD ["serve"]']


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", ".ci/.cache"} <= set(ignored)
