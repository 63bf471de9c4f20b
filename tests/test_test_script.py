"""scripts/test.sh, the README's test command and what CI runs: ruff runs even when a test failed, and the exit code
is non-zero if either failed (issue 21: it stopped at the first failure and never linted).

The script runs for real (real pytest, real ruff) in a copy of the layout it expects; only `scripts/setup.sh` is a
no-op there, since installing is not what is tested and the venv is this one (linked as `.venv`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def _project(tmp_path: Path, test_body: str, code: str) -> Path:
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "scripts" / "test.sh", root / "scripts" / "test.sh")
    (root / "scripts" / "setup.sh").write_text("#!/usr/bin/env bash\nexit 0\n")
    venv_bin = root / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").symlink_to(sys.executable)
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    (venv_bin / "ruff").symlink_to(ruff)
    (root / ".venv" / ".curate-setup").write_text("installed\n")
    (root / "pyproject.toml").write_text('[tool.ruff.lint]\nselect = ["E", "F"]\n'
                                         '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    (root / "tests").mkdir()
    (root / "tests" / "test_one.py").write_text(f"def test_one():\n    x = 1\n    assert {test_body}\n")
    (root / "code.py").write_text(code)
    return root


def _run(root: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    return subprocess.run(["bash", "scripts/test.sh", "-q", "-p", "no:cacheprovider"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("test_body, code, tests_exit, ruff_exit", [
    ("x == 2", "x = 1\n", 1, 0),          # a failing test: ruff still runs, the script fails
    ("x == 1", "import os\n", 0, 1),      # clean tests, a lint error: the script fails
    ("x == 1", "x = 1\n", 0, 0),          # both clean: it passes
])
def test_test_sh_runs_ruff_after_the_tests_whatever_they_gave_and_fails_if_either_failed(
        tmp_path, test_body, code, tests_exit, ruff_exit):
    proc = _run(_project(tmp_path, test_body, code))
    out = proc.stdout + proc.stderr
    assert f"tests exit {tests_exit}, ruff exit {ruff_exit}" in out, out[-3000:]
    assert ("F401" in out) == bool(ruff_exit)  # ruff ran and reported
    assert "setup took" in out
    assert (proc.returncode == 0) == (tests_exit == 0 and ruff_exit == 0)
