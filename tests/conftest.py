"""Shared test fixtures: the real data folder (skipped cleanly when absent), offline hubs, running the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from curate.testing.shared_data import find_shared_data

# No test reaches a hub: set before datasets/transformers/huggingface_hub are imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# tldextract (presidio's URL/email recognizers) must use its bundled suffix list, not download one.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real benchmark files and teacher traces; the test is skipped (with the reason) when they are absent."""
    path = find_shared_data()
    if path is None:
        pytest.skip("../shared/data is absent (real benchmark files are not shipped with curate)")
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600,
            check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run `python -m curate ARGS` in a subprocess, as a user would run `curate ARGS`."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                "COLUMNS": "200", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "curate", *map(str, args)], cwd=cwd or REPO_ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"curate {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def cli():
    """`cli("sources", "list")` runs the real CLI in a subprocess and returns the CompletedProcess."""
    return run_cli


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """One finished run directory over the demo, every stage real (scrub and a clinicians' review included), shared by
    the report, card and publish tests (`tests/pipeline_support.py`). Read it, never change it."""
    from tests.pipeline_support import FINISHED_LIMITS, build_run

    return build_run(tmp_path_factory.mktemp("finished"), limits=FINISHED_LIMITS)
