"""The migrations ship in the wheel: an installed package upgrades a database without the source tree."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.support.workers import REPO_ROOT

pytestmark = pytest.mark.slow


def test_wheel_migrates_without_the_source_tree(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(REPO_ROOT),
         "-w", str(tmp_path / "dist")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("celery_status-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "celerystatus_server/history/migrations/env.py" in names
    assert "celerystatus_server/history/migrations/versions/0003_summary_payload.py" in names
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(wheel).extractall(unpacked)
    # -S: no site processing, so the editable install of the source tree is invisible;
    # the dependencies come from site-packages, the project from the unpacked wheel only.
    code = (
        "import celerystatus_server.history.migrate as m, sys;"
        f"assert m.__file__.startswith({str(unpacked)!r}), m.__file__;"
        "from celerystatus_server.cli import main;"
        f"sys.exit(main(['history', 'upgrade', '--data-dir', {str(tmp_path / 'data')!r}]))"
    )
    env = {"PYTHONPATH": f"{unpacked}:{sysconfig.get_paths()['purelib']}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "upgraded from empty to schema revision 0003" in result.stdout
