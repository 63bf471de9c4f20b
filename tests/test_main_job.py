"""The main job, the way the README's first command runs it: `curate run examples/demo.toml`, then `curate report`
(what scripts/quickstart.sh runs after its setup), through the CLI in a subprocess, every stage real. The demo ships
its own data (examples/demo/: real benchmark questions and recorded real teacher completions), so this runs on a
fresh machine without ../shared, a network or a GPU; the test proves it by hiding ../shared from the run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.io import read_rows
from tests.conftest import REPO_ROOT, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[Path, str]:
    run_dir = tmp_path_factory.mktemp("main-job") / "run"
    env = {"CURATE_SHARED_DATA": str(run_dir.parent / "no-shared-data"), "HF_HUB_OFFLINE": "1",
           "CURATE_TEACHER": "", "CURATE_REPLAY": "examples/demo/recording.jsonl.gz"}
    proc = run_cli("run", "examples/demo.toml", "--run-dir", run_dir, env=env, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = run_cli("report", run_dir, env=env, timeout=900)
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    return run_dir, proc.stdout + proc.stderr


def test_every_stage_finishes_and_nothing_comes_from_outside_the_repository(demo_run):
    run_dir, _ = demo_run
    manifest = json.loads((run_dir / "manifest.json").read_text())
    statuses = {name: stage["status"] for name, stage in manifest["stages"].items()}
    assert statuses["sources"] == statuses["generate"] == statuses["filter"] == statuses["scrub"] == "done"
    assert statuses["publish"] == "done"
    assert not [name for name, status in statuses.items() if status not in ("done", "skipped")]
    text = json.dumps(manifest)
    assert "shared/data" not in text  # every input is the repository's own (examples/demo)


def test_the_published_dataset_loads_and_every_answer_is_gold(demo_run):
    import datasets

    run_dir, _ = demo_run
    publish = run_dir / "publish"
    rows = datasets.load_dataset(str(publish), split="train")
    assert len(rows) >= 20
    assert all(row["answer"] == row["gold"] for row in rows)
    assert all(row["messages"][-1]["role"] == "assistant" and row["messages"][-1]["content"] for row in rows)
    pc = datasets.load_dataset(str(publish), "prompt_completion", split="train")
    assert len(pc) == len(rows) and all(row["prompt"] and row["completion"] for row in pc)
    card = (publish / "README.md").read_text()
    assert "evaluation items" in card and "not training data" in card
    # the published rows are the scrubbed ones, and the gate's PHI rescan found nothing in them
    scrubbed = {r["trace_id"] for r in read_rows(run_dir / "scrubbed.parquet")}
    assert {row["trace_id"] for row in rows} <= scrubbed


def test_the_report_is_written(demo_run):
    run_dir, _ = demo_run
    html = (run_dir / "report.html").read_text()
    assert "filter" in html and "scrub" in html and len(html) > 10_000


def test_a_second_run_reuses_every_stage(demo_run):
    run_dir, _ = demo_run
    before = json.loads((run_dir / "manifest.json").read_text())
    proc = run_cli("run", "examples/demo.toml", "--run-dir", run_dir, env={"CURATE_TEACHER": "",
                   "CURATE_REPLAY": "examples/demo/recording.jsonl.gz"}, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = json.loads((run_dir / "manifest.json").read_text())
    assert {s["status"] for s in after["stages"].values()} <= {"done", "skipped"}
    for name in ("generate", "publish"):  # the same outputs, not written again
        assert before["stages"][name]["finished"] == after["stages"][name]["finished"]
        assert before["stages"][name].get("output") == after["stages"][name].get("output")
    assert "generate: finished earlier, reused" in proc.stdout + proc.stderr


def test_the_readme_names_this_job():
    readme = (REPO_ROOT / "README.md").read_text()
    assert "bash scripts/quickstart.sh" in readme
    quickstart = (REPO_ROOT / "scripts" / "quickstart.sh").read_text()
    assert "examples/demo.toml" in quickstart and "curate run" in quickstart and "curate report" in quickstart
