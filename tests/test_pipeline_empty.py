"""A stage that leaves no rows stops `curate run` there, naming it and its top reasons (issue 24 item 13, issue 28):
before, every later stage ran on nothing and publish failed with a message about itself. Real stages, the demo's
files and its recorded teacher (the replay server), through the CLI."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.pipeline_support import config_text, copy_demo


def _manifest(run_dir):
    return json.loads((run_dir / "manifest.json").read_text())


def test_an_empty_source_file_stops_the_run_at_sources(tmp_path):
    files = copy_demo(tmp_path / "src")
    files["medqa"].write_text("")
    run_dir = tmp_path / "run"
    (tmp_path / "c.toml").write_text(config_text({"medqa": files["medqa"]}, run_dir))
    proc = run_cli("run", tmp_path / "c.toml")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "stage sources kept no rows (of 0 read): nothing is left for generate" in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr
    stages = _manifest(run_dir)["stages"]
    assert stages["sources"]["status"] == "done" and "generate" not in stages or stages["generate"]["status"] != "done"
    assert not (run_dir / "publish").exists()


def test_a_filter_that_keeps_nothing_stops_the_run_there_with_its_reasons_and_the_report_shows_it(tmp_path):
    files = copy_demo(tmp_path / "src")
    run_dir = tmp_path / "run"
    config = config_text({"medqa": files["medqa"]}, run_dir, limits={"medqa": 6},
                         filter_options="min_reasoning_words = 100000")
    (tmp_path / "c.toml").write_text(config)
    proc = run_cli("run", tmp_path / "c.toml")
    said = " ".join(proc.stderr.split())
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "stage filter kept no rows (of 12 read: short_reasoning" in said, said[-2000:]
    assert "nothing is left for dedupe, scrub, publish, so the run stops here" in said
    stages = _manifest(run_dir)["stages"]
    assert stages["filter"]["status"] == "done" and stages["filter"]["counts"]["rows_out"] == 0
    assert all(stages.get(name, {}).get("status") != "done" for name in ("dedupe", "scrub", "publish"))
    # a second run stops at the same place, reusing what finished
    again = run_cli("run", tmp_path / "c.toml")
    assert again.returncode == 1 and "stage filter kept no rows" in " ".join(again.stderr.split())
    assert "filter: finished earlier, reused" in again.stdout + again.stderr
    report = run_cli("report", run_dir)
    assert report.returncode == 0, report.stderr[-2000:]
    assert (run_dir / "report.html").exists()
