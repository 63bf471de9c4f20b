"""A run directory after a failed run with another teacher: the stages after the failed one are `stale`, not `done`,
in the manifest, the run summary and the report, and the published folder is not presented as this run's. Through
the real CLI, the replay teacher over loopback, then a teacher URL where nothing answers."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.pipeline_support import config_text, copy_demo


def demo_like(text: str) -> str:
    """The teacher and the recording as examples/demo.toml names them: CURATE_TEACHER and CURATE_REPLAY= change them."""
    return text.replace('teacher = "demo-recording"', 'teacher = "${CURATE_TEACHER:-demo-recording}"').replace(
        'replay = "', 'replay = "${CURATE_REPLAY-').replace('recording.jsonl.gz"', 'recording.jsonl.gz}"', 1)


def test_stages_after_a_failed_generate_are_stale_until_a_run_brings_them_back(tmp_path):
    files = copy_demo(tmp_path / "demo")
    run_dir = tmp_path / "run"
    config = tmp_path / "run.toml"
    config.write_text(demo_like(config_text(files, run_dir)))
    first = run_cli("run", config, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["publish"]["status"] == "done"

    # your own teacher, at a URL where nothing listens: generate fails before a request is answered
    own = {"CURATE_TEACHER": "my-teacher", "CURATE_REPLAY": "", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    failed = run_cli("run", config, env=own, timeout=600)
    assert failed.returncode == 3, failed.stdout + failed.stderr  # the teacher could not be reached: generate's code
    manifest = json.loads((run_dir / "manifest.json").read_text())
    statuses = {name: entry["status"] for name, entry in manifest["stages"].items()}
    assert statuses["sources"] == "done" and statuses["generate"] == "failed"
    assert statuses["filter"] == statuses["dedupe"] == statuses["publish"] == "stale", statuses
    assert "stage generate before it is failed" in manifest["stages"]["filter"]["error"]
    assert manifest["config"]["generate"]["teacher"] == "my-teacher"

    report = run_cli("report", run_dir, timeout=600)
    assert report.returncode == 0, report.stdout + report.stderr
    html = (run_dir / "report.html").read_text()
    assert "publish: stale" in html and "filter: stale" in html and "publish: done" not in html
    assert "published to" not in html  # the folder there is an earlier run's
    assert "its counts and files are from an earlier run" in html

    # back to the recording: generate answers from its cache with the same bytes, and the stale stages are reused
    again = run_cli("run", config, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    out = again.stdout + again.stderr
    assert "- filter: finished earlier, reused" in out and "- publish: finished earlier, reused" in out
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert {e["status"] for e in manifest["stages"].values()} <= {"done", "skipped"}


def test_changing_a_stage_config_without_running_it_makes_it_and_later_stages_stale(tmp_path):
    """`--until` stops before a stage whose section changed: that stage and every one after it are stale."""
    files = copy_demo(tmp_path / "demo")
    run_dir = tmp_path / "run"
    config = tmp_path / "run.toml"
    config.write_text(config_text(files, run_dir, scrub=False, publish=False))
    run_cli("run", config, check=True, timeout=600)
    config.write_text(config_text(files, run_dir, scrub=False, publish=False, filter_options="min_reasoning_words = 5"))
    run_cli("run", config, "--until", "generate", check=True, timeout=600)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["generate"]["status"] == "done"
    assert manifest["stages"]["filter"]["status"] == "stale"
    assert "config section" in manifest["stages"]["filter"]["error"]
    assert manifest["stages"]["dedupe"]["status"] == "stale"


def _quickstart_tree(tmp_path):
    """scripts/quickstart.sh as it is, in a folder of its own whose .venv is this interpreter's environment and
    whose setup step does nothing (setting up is scripts/setup.sh's business, not what these tests check)."""
    import os
    import shutil
    import sys
    from pathlib import Path

    from tests.conftest import REPO_ROOT

    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "scripts" / "quickstart.sh", root / "scripts" / "quickstart.sh")
    (root / "scripts" / "setup.sh").write_text("#!/usr/bin/env bash\nexit 0\n")  # the stub: set up already
    (root / ".venv").symlink_to(Path(sys.executable).parent.parent)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "COLUMNS": "200"}
    return root, env


def test_quickstart_writes_the_report_when_a_stage_fails_and_exits_non_zero(tmp_path):
    import subprocess

    root, env = _quickstart_tree(tmp_path)
    if not (root / ".venv" / "bin" / "curate").exists():
        import pytest

        pytest.skip("this environment has no `curate` console script")
    files = copy_demo(tmp_path / "demo")
    run_dir = tmp_path / "run"
    config = tmp_path / "run.toml"
    config.write_text(demo_like(config_text(files, run_dir, scrub=False, publish=False)))
    env.update(CURATE_TEACHER="my-teacher", OPENAI_BASE_URL="http://127.0.0.1:9/v1")  # nothing listens there
    proc = subprocess.run(["bash", str(root / "scripts" / "quickstart.sh"), str(config)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out  # the run's own code: the teacher could not be reached
    assert "stage generate failed" in out and "cannot reach the teacher" in out
    html = (run_dir / "report.html").read_text()
    assert "generate: failed" in html and "cannot reach the teacher" in html
    assert "the run failed (exit 3)" in out and "published folder" not in out
