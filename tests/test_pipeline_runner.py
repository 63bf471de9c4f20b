"""`curate run`: config validation, the stage table, resume, --until/--from, invalidation, crashes, the manifest.

The sources stage and publish are the real ones. generate, filter, dedupe, decontaminate, scrub and review land on
other branches: here their entries in the stage table are replaced by the deterministic stand-ins of
`tests/pipeline_fakes.py`, which have the brief's file-level signatures (so the table's argument mapping is checked
against them). The end-to-end test against the replay teacher server comes when generate and filter merge.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.pipeline import STAGE_NAMES, STAGES, ConfigError, PipelineError, load_config, parse_config, run_pipeline
from curate.pipeline.config import tomllib
from curate.pipeline.rundir import RunDir, sha256_path
from tests import pipeline_fakes
from tests.pipeline_fakes import CALLS, config_text, fake_stages, write_source_files

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def files(tmp_path):
    return write_source_files(tmp_path / "src")


def make_config(files, run_dir, **kw):
    return parse_config(tomllib.loads(config_text(files, run_dir, **kw)))


def run(config, **kw):
    CALLS.clear()
    return run_pipeline(config, stages=kw.pop("stages", fake_stages()), echo=lambda _: None, **kw)


# ---------------------------------------------------------------- config


def test_example_config_parses():
    config = load_config(REPO / "examples" / "pipeline.toml")
    assert [s.name for s in config.sources] == ["medqa", "medmcqa", "pubmedqa"]
    assert config.generate.resolved_backend() == "transformers"  # embedded default: no server configured
    assert config.run.dir is not None


def test_unknown_key_and_section_named(tmp_path, files):
    text = config_text(files, tmp_path / "run").replace("samples = 2", "samples = 2\ntemprature = 0.3")
    with pytest.raises(ConfigError, match=r"\[generate\] key 'temprature': unknown key"):
        parse_config(tomllib.loads(text), "x.toml")
    with pytest.raises(ConfigError, match=r"unknown section \[genrate\]"):
        parse_config(tomllib.loads(text.replace("[generate]", "[genrate]")), "x.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('teacher = "replay-teacher"', ""))
    with pytest.raises(ConfigError, match=r"bad.toml: \[generate\] key 'teacher': required but missing"):
        load_config(bad)
    bad.write_text("[run\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(bad)


def test_env_expansion(tmp_path, files, monkeypatch):
    text = config_text(files, tmp_path / "run").replace(str(files["medqa"]), "${MY_DATA:-/nowhere}/test.jsonl")
    assert parse_config(tomllib.loads(text)).sources[0].path == "/nowhere/test.jsonl"
    monkeypatch.setenv("MY_DATA", "/data/medqa")
    assert parse_config(tomllib.loads(text)).sources[0].path == "/data/medqa/test.jsonl"
    with pytest.raises(ConfigError, match="NOPE is not set"):
        parse_config(tomllib.loads(text.replace("${MY_DATA:-/nowhere}", "${NOPE}")))


def test_stage_table_order():
    assert STAGE_NAMES == ("sources", "generate", "filter", "dedupe", "decontaminate", "scrub", "review", "publish")
    outputs = [s.output for s in STAGES]
    assert len(set(outputs)) == len(outputs)


# ---------------------------------------------------------------- a whole run


def test_full_run_writes_one_file_per_stage_and_a_manifest(tmp_path, files):
    run_dir = tmp_path / "run"
    manifest = run(make_config(files, run_dir))
    assert CALLS == ["generate", "filter", "dedupe", "decontaminate", "scrub", "review"]
    on_disk = json.loads((run_dir / "manifest.json").read_text())
    assert on_disk["stages"] == manifest["stages"]
    assert on_disk["versions"]["curate"] and on_disk["versions"]["python"]
    assert on_disk["config"]["generate"]["teacher"] == "replay-teacher"
    for name in STAGE_NAMES:
        entry = on_disk["stages"][name]
        assert entry["status"] == "done", name
        out = run_dir / entry["output"]["path"]
        assert out.exists() and sha256_path(out) == entry["output"]["sha256"]
        assert entry["wall_s"] >= 0 and entry["started"] and entry["finished"]
        assert (run_dir / f"{name}.report.json").exists()
    # inputs are recorded by hash, and chain: each stage's input is the previous stage's output
    assert on_disk["stages"]["filter"]["inputs"] == {"traces.parquet": on_disk["stages"]["generate"]["output"]["sha256"],
                                                     "questions.parquet": on_disk["stages"]["sources"]["output"]["sha256"]}
    assert on_disk["stages"]["publish"]["inputs"] == {"reviewed.parquet": on_disk["stages"]["review"]["output"]["sha256"]}
    # counts come from the stage reports and agree with the files
    for name in ("sources", "filter", "dedupe", "decontaminate", "scrub", "review"):
        entry = on_disk["stages"][name]
        assert entry["counts"]["rows_out"] == entry["output"]["rows"], name
        assert entry["counts"]["rows_in"] == entry["counts"]["rows_out"] + entry["counts"]["rejected"], name
    assert on_disk["stages"]["sources"]["counts"]["rows_out"] == 12 + 9 + 6
    assert on_disk["stages"]["generate"]["counts"]["rows_out"] == 2 * 27
    assert sum(on_disk["stages"]["filter"]["counts"]["reasons"].values()) >= on_disk["stages"]["filter"]["counts"]["rejected"] > 0


def test_second_run_reuses_every_stage(tmp_path, files):
    config = make_config(files, tmp_path / "run")
    first = run(config)
    second = run(config)
    assert CALLS == []
    for name in STAGE_NAMES:
        assert second["stages"][name]["finished"] == first["stages"][name]["finished"]


def test_config_change_reruns_that_stage_and_later(tmp_path, files):
    run(make_config(files, tmp_path / "run"))
    run(make_config(files, tmp_path / "run", filter_options="min_words = 60"))
    assert CALLS == ["filter", "dedupe", "decontaminate", "scrub", "review"]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert "too_short" in manifest["stages"]["filter"]["counts"]["reasons"]
    assert manifest["stages"]["filter"]["arguments"]["min_words"] == 60


def test_volatile_settings_do_not_rerun(tmp_path, files):
    """Concurrency and endpoints do not change what the teacher writes: changing them re-runs nothing."""
    run(make_config(files, tmp_path / "run"))
    run(make_config(files, tmp_path / "run", concurrency=256))
    assert CALLS == []


def test_changed_input_file_reruns_everything_after(tmp_path, files):
    config = make_config(files, tmp_path / "run")
    run(config)
    with open(files["medqa"], "a") as fh:
        fh.write(json.dumps({"question": "An extra question about the appendix?", "options": {"A": "x", "B": "y"},
                             "answer": "y", "answer_idx": "B", "meta_info": "step1"}) + "\n")
    manifest = run(config)
    assert CALLS == ["generate", "filter", "dedupe", "decontaminate", "scrub", "review"]
    assert manifest["stages"]["sources"]["counts"]["rows_out"] == 28


def test_deleted_or_edited_output_reruns(tmp_path, files):
    config = make_config(files, tmp_path / "run")
    run(config)
    (tmp_path / "run" / "deduped.parquet").unlink()
    run(config)
    assert CALLS == ["dedupe"]  # deterministic stages: the same bytes again, so later stages stay finished
    (tmp_path / "run" / "scrubbed.parquet").write_bytes(b"not what scrub wrote")
    run(config)
    assert CALLS == ["scrub"]


def test_until_and_from(tmp_path, files):
    config = make_config(files, tmp_path / "run")
    manifest = run(config, until="filter")
    assert CALLS == ["generate", "filter"]
    assert "dedupe" not in manifest["stages"] and not (tmp_path / "run" / "deduped.parquet").exists()
    run(config, until="scrub")
    assert CALLS == ["dedupe", "decontaminate", "scrub"]
    run(config, start="decontaminate", until="scrub")
    assert CALLS == ["decontaminate", "scrub"]  # forced again, though finished
    run(config)
    assert CALLS == ["review"]
    with pytest.raises(ConfigError, match="--until nosuch: not a stage"):
        run(config, until="nosuch")
    with pytest.raises(ConfigError, match="--from publish comes after --until filter"):
        run(config, start="publish", until="filter")


def test_from_needs_earlier_stages(tmp_path, files):
    with pytest.raises(ConfigError, match="stage sources has not finished"):
        run(make_config(files, tmp_path / "run"), start="filter")


def test_crash_mid_stage_then_resume(tmp_path, files, monkeypatch):
    config = make_config(files, tmp_path / "run")
    monkeypatch.setenv("CURATE_FAKE_FAIL", "dedupe")
    with pytest.raises(PipelineError, match="stage dedupe failed: RuntimeError: simulated crash in dedupe"):
        run(config)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert [manifest["stages"][s]["status"] for s in ("sources", "generate", "filter", "dedupe")] == \
        ["done", "done", "done", "failed"]
    assert "simulated crash" in manifest["stages"]["dedupe"]["error"]
    assert not (tmp_path / "run" / "deduped.parquet").exists()
    monkeypatch.delenv("CURATE_FAKE_FAIL")
    manifest = run(config)
    assert CALLS == ["dedupe", "decontaminate", "scrub", "review"]
    assert manifest["stages"]["dedupe"]["status"] == "done" and manifest["stages"]["dedupe"]["error"] is None


def test_unknown_stage_option_refused_before_anything_runs(tmp_path, files):
    config = make_config(files, tmp_path / "run", extra="[scrub.nonsense]\nx = 1\n")
    fakes = fake_stages(scrub=lambda input, output, *, policy, entities, rejected, report, allow_no_ner: None)
    with pytest.raises(ConfigError, match=r"\[scrub\]: .*unexpected keyword argument 'nonsense'.*accepts: input, output"):
        run(config, stages=fakes)
    assert CALLS == []
    assert not (tmp_path / "run" / "questions.parquet").exists()


def test_missing_stage_module_is_a_clear_error(tmp_path, files):
    from dataclasses import replace

    stages = tuple(replace(s, entry="curate.no_such_stage:run") if s.name == "generate" else s for s in fake_stages())
    with pytest.raises(ConfigError, match="stage generate: cannot import curate.no_such_stage"):
        run(make_config(files, tmp_path / "run"), stages=stages)


def test_disabled_stage_is_skipped_and_bridged(tmp_path, files):
    manifest = run(make_config(files, tmp_path / "run", review=False))
    assert manifest["stages"]["review"] == {"status": "skipped", "reason": "disabled in the config"}
    assert manifest["stages"]["publish"]["inputs"] == {"scrubbed.parquet": manifest["stages"]["scrub"]["output"]["sha256"]}


def test_skipped_decontamination_blocks_publish_unless_forced(tmp_path, files):
    config = make_config(files, tmp_path / "run", decontaminate=False)
    with pytest.raises(PipelineError, match="stage publish failed: .*benchmark decontamination did not run.*--force"):
        run(config)
    assert RunDir.open(tmp_path / "run").status("scrub") == "done"
    config.publish.force = True
    manifest = run(config)
    assert CALLS == []  # only publish (the real one, not logged) ran again: its `force` argument changed
    assert manifest["stages"]["publish"]["status"] == "done"
    card = (tmp_path / "run" / "publish" / "README.md").read_text()
    assert "published with `--force`" in card and "benchmark decontamination was skipped" in card


def test_manifest_is_written_after_each_stage(tmp_path, files):
    seen = {}

    def spying_dedupe(input, output, **kw):
        seen.update(json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"])
        return pipeline_fakes.fake_dedupe(input, output, **kw)

    run(make_config(files, tmp_path / "run"), stages=fake_stages(dedupe=spying_dedupe))
    assert {k: v["status"] for k, v in seen.items() if k != "review"} == \
        {"sources": "done", "generate": "done", "filter": "done", "dedupe": "running"}


def test_manifest_write_is_atomic(tmp_path, files, monkeypatch):
    """A failure while the manifest is being replaced leaves the previous manifest whole and no temp file."""
    config = make_config(files, tmp_path / "run")
    run(config, until="generate")
    before = (tmp_path / "run" / "manifest.json").read_bytes()
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith("manifest.json"):
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        run(config)
    assert (tmp_path / "run" / "manifest.json").read_bytes() == before
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]


def test_sigkill_mid_stage_then_resume(tmp_path, files):
    """A real `kill -9` of a running pipeline: finished stages stay finished, the killed one runs again."""
    run_dir, mark, log = tmp_path / "run", tmp_path / "started", tmp_path / "calls.log"
    (tmp_path / "config.toml").write_text(config_text(files, run_dir))
    script = ("import sys; sys.path.insert(0, sys.argv[1]);"
              "from tests.pipeline_fakes import fake_stages;"
              "from curate.pipeline import load_config, run_pipeline;"
              "run_pipeline(load_config(sys.argv[2]), stages=fake_stages())")
    env = {**os.environ, "CURATE_FAKE_SLOW_STAGE": "filter", "CURATE_FAKE_MARK": str(mark), "CURATE_FAKE_LOG": str(log)}
    proc = subprocess.Popen([sys.executable, "-c", script, str(REPO), str(tmp_path / "config.toml")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mark.exists(), proc.stderr.read().decode() if proc.poll() is not None else "filter never started"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert {k: v["status"] for k, v in manifest["stages"].items()} == \
        {"sources": "done", "generate": "done", "filter": "running"}
    assert not (run_dir / "filtered.parquet").exists()
    resumed = run(load_config(tmp_path / "config.toml"))
    assert CALLS == ["filter", "dedupe", "decontaminate", "scrub", "review"]  # sources and generate reused
    assert all(resumed["stages"][s]["status"] == "done" for s in STAGE_NAMES)


def test_one_run_per_run_dir(tmp_path, files):
    import fcntl

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with open(run_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(ConfigError, match="another `curate run` is using this run directory"):
            run(make_config(files, run_dir))


def test_real_sources_stage_on_shared_data(tmp_path, shared_data):
    """The sources stage on the real benchmark files, through the example config's [[sources]] shape."""
    text = f"""
[run]
dir = "{tmp_path / 'run'}"
[[sources]]
name = "medqa"
path = "{shared_data}/benchmarks/medqa/test.4_options.jsonl"
limit = 20
[[sources]]
name = "medmcqa"
path = "{shared_data}/benchmarks/medmcqa/dev.jsonl"
limit = 20
[[sources]]
name = "pubmedqa"
path = "{shared_data}/benchmarks/pubmedqa/ori_pqal.json"
split = "test"
limit = 20
[generate]
teacher = "t"
"""
    manifest = run(parse_config(tomllib.loads(text)), until="sources")
    assert manifest["stages"]["sources"]["counts"]["rows_out"] == 60
    ids = {q["id"].split(":")[0] for q in RunDir.open(tmp_path / "run").rows("sources")}
    assert ids == {"medqa", "medmcqa", "pubmedqa"}


# ---------------------------------------------------------------- the CLI


def test_cli_run_until_sources_and_summary(cli, tmp_path, files):
    (tmp_path / "c.toml").write_text(config_text(files, tmp_path / "run"))
    proc = cli("run", tmp_path / "c.toml", "--until", "sources", check=True)
    assert "✓ sources: 27 rows" in proc.stderr and "not run" in proc.stderr
    proc = cli("run", tmp_path / "c.toml", "--until", "sources", "--run-dir", tmp_path / "other", check=True)
    assert (tmp_path / "other" / "questions.parquet").exists()
    proc = cli("run", tmp_path / "c.toml", "--until", "sources", check=True)
    assert "sources: finished earlier, reused" in proc.stderr


def test_cli_bad_config_and_failing_stage(cli, tmp_path, files):
    (tmp_path / "bad.toml").write_text(config_text(files, tmp_path / "run").replace("[filter]", "[filter]\n[filtre]"))
    proc = cli("run", tmp_path / "bad.toml")
    assert proc.returncode == 2 and "unknown section [filtre]" in proc.stderr and "Traceback" not in proc.stderr
    with open(files["medqa"], "a") as fh:
        fh.write("{not json\n")
    (tmp_path / "c.toml").write_text(config_text(files, tmp_path / "run"))
    proc = cli("run", tmp_path / "c.toml", "--until", "sources")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "stage sources failed" in proc.stderr and "test.jsonl:13: invalid JSON" in proc.stderr
    assert "run the same command again" in proc.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"]["sources"]["status"] == "failed"
    assert not (tmp_path / "run" / "questions.parquet").exists()


def test_review_waiting_for_clinicians_stops_then_resumes(tmp_path, files):
    from curate.pipeline.steps import StagePending

    def pending_review(input, output, **kw):
        CALLS.append("review-pending")
        raise StagePending("pushed the sample; no verdicts yet")

    config = make_config(files, tmp_path / "run")
    with pytest.raises(StagePending):
        run(config, stages=fake_stages(review=pending_review))
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"]["review"]["status"] == "waiting" and manifest["stages"]["scrub"]["status"] == "done"
    assert "publish" not in manifest["stages"]
    manifest = run(config)
    assert CALLS == ["review"] and manifest["stages"]["publish"]["status"] == "done"


def test_entry_point_that_only_writes_its_report(tmp_path, files):
    """Counts come from the report file when an entry point returns nothing."""
    def quiet_dedupe(input, output, *, rejected=None, report=None, **kw):
        pipeline_fakes.fake_dedupe(input, output, rejected=rejected, report=report, **kw)

    manifest = run(make_config(files, tmp_path / "run"), stages=fake_stages(dedupe=quiet_dedupe), until="dedupe")
    counts = manifest["stages"]["dedupe"]["counts"]
    assert counts["rows_out"] == manifest["stages"]["dedupe"]["output"]["rows"] and counts["rows_in"] > 0


def test_example_config_sources_on_shared_data(cli, tmp_path, shared_data):
    """The shipped example config, sources stage only, on the real benchmark files (CURATE_DATA points at them)."""
    proc = cli("run", "examples/pipeline.toml", "--until", "sources", "--run-dir", tmp_path / "run",
               env={"CURATE_DATA": str(shared_data)}, check=True)
    assert "✓ sources: 30 rows" in proc.stderr
    questions = RunDir.open(tmp_path / "run").rows("sources")
    assert {q["id"].rsplit(":", 1)[0] for q in questions} == {"medqa:test", "medmcqa:dev", "pubmedqa:train"}


def test_external_files_recorded_apart_and_later_stages_marked_stale(tmp_path, files):
    config = make_config(files, tmp_path / "run")
    run(config)
    manifest = run(config, start="filter", until="filter", stages=fake_stages(
        filter=lambda *a, **kw: pipeline_fakes.fake_filter(*a, **{**kw, "min_words": 60})))
    entry = manifest["stages"]["sources"]
    assert set(entry["external"]) == {str(p) for p in files.values()} and set(entry["inputs"]) == set()
    assert manifest["stages"]["sources"]["status"] == "done"  # its external files are not run-dir inputs
    assert manifest["stages"]["dedupe"]["status"] == "stale"  # filter's output changed under it
    assert "filtered.parquet changed" in manifest["stages"]["dedupe"]["error"]


def test_overlapping_source_entries_keep_ids_unique(tmp_path, files):
    """The same file listed twice is refused by the config; a copy of it under another name yields the same ids,
    which the sources stage rejects as `duplicate_id` instead of letting them through twice."""
    import shutil

    copy = tmp_path / "copy" / "test.jsonl"
    copy.parent.mkdir()
    shutil.copy(files["medqa"], copy)
    text = config_text(files, tmp_path / "run").replace(
        '[[sources]]\nname = "medmcqa"', f'[[sources]]\nname = "medqa"\npath = "{copy}"\nlimit = 5\n\n'
        '[[sources]]\nname = "medmcqa"')
    manifest = run(parse_config(tomllib.loads(text)), until="sources")
    counts = manifest["stages"]["sources"]["counts"]
    assert counts["rows_out"] == 27 and counts["reasons"] == {"duplicate_id": 5}
    rejected = RunDir.open(tmp_path / "run").rows("sources", "rejected")
    assert [r["reasons"] for r in rejected] == [["duplicate_id"]] * 5
    with pytest.raises(ConfigError, match="source 'medqa' .* is listed twice"):
        parse_config(tomllib.loads(text.replace(str(copy), str(files["medqa"]))))
