"""`curate run`: config validation, the step table, resume, --until/--from, invalidation, crashes, the manifest.

Every stage is the real one (the demo's real questions, the replay teacher serving their recorded completions over
loopback, `tests/pipeline_support.py`). One fault-injecting stand-in exists, for the crash and the clinicians-pending
cases: `CrashingDedupe` (the real dedupe that raises) and `pending_review`; nothing stands in for a report or schema.
Most runs here leave scrub off (building presidio's engine takes seconds): the report, card and publish tests run
it on a finished run of their own.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from curate.dedupe import DedupeStage
from curate.pipeline import STAGE_NAMES, STAGES, ConfigError, PipelineError, load_config, run_pipeline
from curate.pipeline.rundir import RunDir, sha256_path
from curate.stage import StagePending
from tests.pipeline_support import REPO, config_text, copy_demo, parse, run, write_benchmark

#: The steps a run with scrub and publish off goes through.
NO_SCRUB = ["sources", "generate", "filter", "dedupe", "decontaminate"]


@pytest.fixture
def files(tmp_path):
    return copy_demo(tmp_path / "src")


@pytest.fixture
def bench(tmp_path, files):
    return write_benchmark(tmp_path / "bench.jsonl", files["medqa"], ["medqa:test:0"])


def quick(files, run_dir, bench=None, **kw):
    """A run over the demo with scrub and publish off."""
    return parse(config_text(files, run_dir, benchmark=bench, scrub=False, publish=False, **kw))


def replace_step(name, **changes):
    return tuple(dataclasses.replace(s, **changes) if s.name == name else s for s in STAGES)


class CrashingDedupe(DedupeStage):
    """The fault: dedupe dies half way (its output is never written)."""

    def process(self, batch):
        raise RuntimeError("simulated crash in dedupe")


def pending_review(ctx, binding, progress):
    raise StagePending("pushed the sample; no verdicts yet")


# ---------------------------------------------------------------- config


@pytest.mark.parametrize("name", ["demo.toml", "medical-cot.toml"])
def test_example_configs_parse(name, monkeypatch):
    monkeypatch.setenv("CURATE_TEACHER", "Qwen/QwQ-32B")
    config = load_config(REPO / "examples" / name)
    assert [s.name for s in config.sources] == ["medqa", "medmcqa", "pubmedqa"]
    assert config.run.dir is not None and config.publish is not None


def test_unknown_key_and_section_named(tmp_path, files):
    text = config_text(files, tmp_path / "run").replace("samples = 2", "samples = 2\ntemprature = 0.3")
    with pytest.raises(ConfigError, match=r"\[generate\] key 'temprature': unknown key"):
        parse(text)
    with pytest.raises(ConfigError, match=r"unknown section \[genrate\]"):
        parse(text.replace("[generate]", "[genrate]"))
    with pytest.raises(ConfigError, match=r"\[scrub\] key 'nonsense': unknown key"):
        parse(text.replace("[scrub]", "[scrub]\nnonsense = 1"))
    with pytest.raises(ConfigError, match=r"\[filter\] key 'select': Input should be 'all' or 'k'"):
        parse(text.replace("[filter]", '[filter]\nselect = "some"'))
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('teacher = "demo-recording"', ""))
    with pytest.raises(ConfigError, match=r"bad.toml: \[generate\] key 'teacher': required but missing"):
        load_config(bad)
    bad.write_text("[run\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(bad)


def test_sections_are_the_stages_own_config_classes():
    """A stage option is declared once, in its stage's config class: the TOML section holds exactly those keys."""
    from curate.dedupe import DedupeConfig
    from curate.filter import FilterConfig
    from curate.generate.config import GenerateConfig
    from curate.pipeline.config import pipeline_model
    from curate.scrub.runner import ScrubConfig

    fields = pipeline_model().model_fields
    assert issubclass(fields["filter"].annotation, FilterConfig)
    assert issubclass(fields["generate"].annotation, GenerateConfig)
    assert set(fields["dedupe"].annotation.model_fields) == set(DedupeConfig.model_fields) | {"enabled"}
    assert set(fields["scrub"].annotation.model_fields) == set(ScrubConfig.model_fields) | {"enabled"}


def test_env_expansion(tmp_path, files, monkeypatch):
    text = config_text(files, tmp_path / "run").replace(str(files["medqa"]), "${MY_DATA:-/nowhere}/test.jsonl")
    assert parse(text).sources[0].path == "/nowhere/test.jsonl"
    monkeypatch.setenv("MY_DATA", "/data/medqa")
    assert parse(text).sources[0].path == "/data/medqa/test.jsonl"
    with pytest.raises(ConfigError, match="NOPE is not set"):
        parse(text.replace("${MY_DATA:-/nowhere}", "${NOPE}"))


def test_stage_table_order():
    assert STAGE_NAMES == ("sources", "generate", "filter", "verify", "dedupe", "decontaminate", "scrub", "review",
                           "publish")
    outputs = [s.output for s in STAGES]
    assert len(set(outputs)) == len(outputs)


# ---------------------------------------------------------------- a whole run


def test_full_run_writes_one_file_per_stage_and_a_manifest(tmp_path, files, bench):
    run_dir = tmp_path / "run"
    manifest, ran = run(quick(files, run_dir, bench))
    assert ran == NO_SCRUB
    on_disk = json.loads((run_dir / "manifest.json").read_text())
    assert on_disk["stages"] == manifest["stages"]
    assert on_disk["versions"]["curate"] and on_disk["versions"]["python"]
    assert on_disk["config"]["generate"]["teacher"] == "demo-recording"
    for name in NO_SCRUB:
        entry = on_disk["stages"][name]
        assert entry["status"] == "done", name
        out = run_dir / entry["output"]["path"]
        assert out.exists() and sha256_path(out) == entry["output"]["sha256"]
        assert entry["wall_s"] >= 0 and entry["started"] and entry["finished"]
        assert (run_dir / f"{name}.report.json").exists()
    assert {on_disk["stages"][s]["status"] for s in ("scrub", "review")} == {"skipped"}
    # inputs are recorded by hash, and chain: each stage's input is the previous stage's output
    assert on_disk["stages"]["filter"]["inputs"] == {"traces.parquet": on_disk["stages"]["generate"]["output"]["sha256"],
                                                     "questions.parquet": on_disk["stages"]["sources"]["output"]["sha256"]}
    # counts come from the stage reports and agree with the files
    for name in ("sources", "filter", "dedupe", "decontaminate"):
        entry = on_disk["stages"][name]
        assert entry["counts"]["rows_out"] == entry["output"]["rows"], name
        assert entry["counts"]["rows_in"] == entry["counts"]["rows_out"] + entry["counts"]["rejected"], name
        # a rejected row's primary reason is counted once
        assert sum(entry["counts"]["reasons"].values()) == entry["counts"]["rejected"], name
    assert on_disk["stages"]["sources"]["counts"]["rows_out"] == 12 + 8 + 8
    assert on_disk["stages"]["generate"]["counts"]["rows_out"] == 2 * 28
    assert on_disk["stages"]["filter"]["counts"]["rejected"] > 0


def test_second_run_reuses_every_stage(tmp_path, files, bench):
    config = quick(files, tmp_path / "run", bench)
    first, _ = run(config)
    second, ran = run(config)
    assert ran == []
    for name in NO_SCRUB:
        assert second["stages"][name]["finished"] == first["stages"][name]["finished"]


def test_config_change_reruns_that_stage_and_later(tmp_path, files, bench):
    run(quick(files, tmp_path / "run", bench))
    config = quick(files, tmp_path / "run", bench, filter_options="min_reasoning_words = 5000")
    # nothing is kept: the run stops at filter, naming it and its top reasons, instead of running the rest on nothing
    with pytest.raises(PipelineError, match=r"stage filter kept no rows \(of \d+ read: short_reasoning \d+.*nothing is "
                                            r"left for dedupe, decontaminate"):
        run(config)
    manifest = RunDir.open(tmp_path / "run").manifest
    assert manifest["stages"]["filter"]["status"] == "done"
    assert "short_reasoning" in manifest["stages"]["filter"]["counts"]["reasons"]
    assert manifest["stages"]["filter"]["arguments"]["config"]["min_reasoning_words"] == 5000
    assert any("kept 0 of" in w for w in manifest["stages"]["filter"]["warnings"])
    assert manifest["stages"]["dedupe"]["status"] == "stale"  # the first run's, not this config's


def test_volatile_settings_do_not_rerun(tmp_path, files, bench):
    """Concurrency and worker counts do not change what the stages write: changing them re-runs nothing."""
    run(quick(files, tmp_path / "run", bench))
    _, ran = run(quick(files, tmp_path / "run", bench, generate="timeout = 300.0\nmax_retries = 2",
                       filter_options="workers = 2"))
    assert ran == []


def test_changed_input_file_reruns_everything_after(tmp_path, files, bench):
    config = quick(files, tmp_path / "run", bench)
    run(config)
    lines = files["medqa"].read_text().splitlines()
    files["medqa"].write_text("\n".join([lines[20], *lines[1:]]) + "\n")  # the first question is another one
    manifest, ran = run(config)
    assert ran[:3] == ["sources", "generate", "filter"]
    assert manifest["stages"]["sources"]["counts"]["rows_out"] == 28
    generate = RunDir.open(tmp_path / "run").report("generate")
    assert (generate.from_cache, generate.generated) == (54, 2)  # only the new question was asked for


def test_deleted_or_edited_output_reruns(tmp_path, files, bench):
    config = quick(files, tmp_path / "run", bench)
    run(config)
    (tmp_path / "run" / "deduped.parquet").unlink()
    _, ran = run(config)
    assert ran == ["dedupe"]  # deterministic stages: the same bytes again, so later stages stay finished
    (tmp_path / "run" / "decontaminated.parquet").write_bytes(b"not what decontaminate wrote")
    _, ran = run(config)
    assert ran == ["decontaminate"]


def test_until_and_from(tmp_path, files, bench):
    config = quick(files, tmp_path / "run", bench)
    manifest, ran = run(config, until="filter")
    assert ran == ["sources", "generate", "filter"]
    assert "dedupe" not in manifest["stages"] and not (tmp_path / "run" / "deduped.parquet").exists()
    _, ran = run(config, until="dedupe")
    assert ran == ["dedupe"]
    _, ran = run(config, start="filter", until="dedupe")
    assert ran == ["filter", "dedupe"]  # forced again, though finished
    _, ran = run(config)
    assert ran == ["decontaminate"]
    with pytest.raises(ConfigError, match="--until nosuch: not a stage"):
        run(config, until="nosuch")
    with pytest.raises(ConfigError, match="--from decontaminate comes after --until filter"):
        run(config, start="decontaminate", until="filter")
    with pytest.raises(ConfigError, match="--until scrub: disabled in the config"):
        run(config, until="scrub")


def test_from_needs_earlier_stages(tmp_path, files, bench):
    with pytest.raises(ConfigError, match="stage sources has not finished"):
        run(quick(files, tmp_path / "run", bench), start="filter")


def test_crash_mid_stage_then_resume(tmp_path, files, bench):
    config = quick(files, tmp_path / "run", bench)
    crashing = replace_step("dedupe", stage="tests.test_pipeline_runner:CrashingDedupe")
    with pytest.raises(PipelineError, match="stage dedupe failed: RuntimeError: simulated crash in dedupe"):
        run(config, stages=crashing)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert [manifest["stages"][s]["status"] for s in ("sources", "generate", "filter", "dedupe")] == \
        ["done", "done", "done", "failed"]
    assert "simulated crash" in manifest["stages"]["dedupe"]["error"]
    assert not (tmp_path / "run" / "deduped.parquet").exists()
    manifest, ran = run(config)
    assert ran == ["dedupe", "decontaminate"]
    assert manifest["stages"]["dedupe"]["status"] == "done" and manifest["stages"]["dedupe"]["error"] is None


def test_external_file_missing_is_named_before_anything_runs(tmp_path, files):
    config = quick(files, tmp_path / "run", tmp_path / "no-such-benchmark.jsonl")
    with pytest.raises(ConfigError, match=r"\[decontaminate\]: .*no-such-benchmark.jsonl does not exist.*nothing was run"):
        run(config)
    assert not (tmp_path / "run" / "questions.parquet").exists()


def test_missing_stage_module_is_a_clear_error(tmp_path, files, bench):
    stages = replace_step("generate", stage="curate.no_such_stage:Stage")
    with pytest.raises(ConfigError, match="stage generate: cannot import curate.no_such_stage"):
        run(quick(files, tmp_path / "run", bench), stages=stages)
    assert not (tmp_path / "run" / "questions.parquet").exists()


def test_disabled_stage_is_skipped_and_bridged(tmp_path, files, bench):
    text = config_text(files, tmp_path / "run", benchmark=bench, scrub=False, publish=False)
    manifest, ran = run(parse(text.replace("[dedupe]", "[dedupe]\nenabled = false")))
    assert "dedupe" not in ran
    assert manifest["stages"]["dedupe"] == {"status": "skipped", "reason": "disabled in the config"}
    assert manifest["stages"]["decontaminate"]["inputs"] == {
        "filtered.parquet": manifest["stages"]["filter"]["output"]["sha256"]}


def test_benchmark_items_block_publish_unless_declared_or_forced(tmp_path, files, bench):
    """The demo's questions are MedQA/MedMCQA/PubMedQA evaluation items: the publish gate refuses them as training
    data, whatever [decontaminate] listed, until the config says what they are (or --force overrides it)."""
    from tests.test_publish import benchmark_files

    text = config_text(files, tmp_path / "run", benchmark=bench, scrub=False, evaluation_set=False,
                       limits={"medqa": 4, "medmcqa": 2, "pubmedqa": 2})
    text = text.replace('evaluation_set = false', "evaluation_set = false\nbenchmark_paths = { "
                        + ", ".join(f'"{k}" = "{v}"' for k, v in benchmark_files().items()) + " }")
    config = parse(text)
    with pytest.raises(PipelineError, match="stage publish failed: .*benchmark evaluation items.*--force"):
        run(config)
    assert RunDir.open(tmp_path / "run").status("decontaminate") == "done"
    config.publish.force = True
    manifest, ran = run(config)
    assert ran == ["publish"]  # only publish ran again: its `force` option changed
    assert manifest["stages"]["publish"]["status"] == "done"
    card = (tmp_path / "run" / "publish" / "README.md").read_text()
    assert "published with `--force`" in card and "that are benchmark evaluation items" in card


def test_manifest_write_is_atomic(tmp_path, files, bench, monkeypatch):
    """A failure while the manifest is being replaced leaves the previous manifest whole and no temp file."""
    config = quick(files, tmp_path / "run", bench)
    run(config, until="sources")
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


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_killed_or_interrupted_mid_stage_then_resume(tmp_path, files, bench, sig):
    """A real `kill -9` (or Ctrl-C) of `curate run` while generate waits on a held teacher: the manifest says sources
    is done and generate running (or failed: interrupted, and the run says how to resume); the same command then
    finishes, reusing sources, and no answered request is bought twice."""
    from curate.generate.replay import replay_server

    run_dir = tmp_path / "run"
    with replay_server(traces=REPO / "examples" / "demo" / "recording.jsonl.gz", models=["demo-recording"],
                       hold_after=3) as server:
        text = config_text(files, run_dir, benchmark=bench, scrub=False, publish=False).replace(
            f'replay = "{REPO / "examples" / "demo" / "recording.jsonl.gz"}"', f'base_urls = ["{server.url}"]')
        (tmp_path / "config.toml").write_text(text)
        proc = subprocess.Popen([sys.executable, "-m", "curate", "run", str(tmp_path / "config.toml")], cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                manifest = RunDir.open(run_dir).manifest if (run_dir / "manifest.json").exists() else {}
                if (manifest.get("stages", {}).get("generate") or {}).get("status") == "running" and \
                        sum(1 for e in server.log() if e["finished"]) >= 3:
                    break
                time.sleep(0.1)
            assert proc.poll() is None, proc.stderr.read()
        finally:
            proc.send_signal(sig)
            returncode = proc.wait(timeout=60)
            # What the client had received when it died; later answers to held requests reach nobody.
            answered = {e["key"] for e in server.log() if e["finished"]}
            cut = len(server.log())
            server.release()
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["stages"]["sources"]["status"] == "done"
        if sig == signal.SIGINT:
            stderr = proc.stderr.read()
            assert returncode == 130 and "interrupted" in stderr and "run the same command again" in stderr, stderr
            assert "Traceback" not in stderr
            assert manifest["stages"]["generate"]["status"] == "failed"
            assert "KeyboardInterrupt" in manifest["stages"]["generate"]["error"]
        else:
            assert manifest["stages"]["generate"]["status"] == "running"
        assert not (run_dir / "traces.parquet").exists()
        server.configure(hold_after=None)
        resumed, ran = run(load_config(tmp_path / "config.toml"))
        bought_again = [e["key"] for e in server.log()[cut:] if e["finished"]]
    assert ran == ["generate", "filter", "dedupe", "decontaminate"]  # sources reused
    assert all(resumed["stages"][s]["status"] == "done" for s in NO_SCRUB)
    # nothing the killed run had received was bought again; every question's request was answered
    assert answered and not answered & set(bought_again) and len(answered | set(bought_again)) == 28


def test_one_run_per_run_dir(tmp_path, files, bench):
    import fcntl

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with open(run_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(ConfigError, match="another `curate run` is using this run directory"):
            run(quick(files, run_dir, bench))


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
    manifest, _ = run(parse(text), until="sources")
    assert manifest["stages"]["sources"]["counts"]["rows_out"] == 60
    ids = {q["id"].split(":")[0] for q in RunDir.open(tmp_path / "run").rows("sources")}
    assert ids == {"medqa", "medmcqa", "pubmedqa"}


def test_progress_reaches_the_display_for_every_stage(tmp_path, files, bench):
    """`curate run` draws each stage's progress (one callback shape): every stage that works on rows reports it."""
    events: dict[str, list[tuple[str, int, int | None]]] = {}

    class Display:
        def callback(self, stage):
            return lambda phase, done, total=None, note=None: events.setdefault(stage, []).append((phase, done, total))

    run_pipeline(quick(files, tmp_path / "run", bench), display=Display(), echo=lambda _: None)
    assert {"generate", "filter", "dedupe", "decontaminate"} <= set(events)
    phase, done, total = events["generate"][-1]
    assert phase == "generate" and done == total == 56
    assert events["filter"][-1][1:] == (56, 56)


# ---------------------------------------------------------------- the CLI


def test_cli_run_until_sources_and_summary(cli, tmp_path, files, bench):
    (tmp_path / "c.toml").write_text(config_text(files, tmp_path / "run", benchmark=bench))
    proc = cli("run", tmp_path / "c.toml", "--until", "sources", check=True)
    assert "✓ sources: 28 rows" in proc.stderr and "not run" in proc.stderr
    proc = cli("run", tmp_path / "c.toml", "--until", "sources", "--run-dir", tmp_path / "other", check=True)
    assert (tmp_path / "other" / "questions.parquet").exists()
    proc = cli("run", tmp_path / "c.toml", "--until", "sources", check=True)
    assert "sources: finished earlier, reused" in proc.stderr


def test_cli_bad_config_and_failing_stage(cli, tmp_path, files, bench):
    (tmp_path / "bad.toml").write_text(config_text(files, tmp_path / "run").replace("[filter]", "[filter]\n[filtre]"))
    proc = cli("run", tmp_path / "bad.toml")
    assert proc.returncode == 2 and "unknown section [filtre]" in proc.stderr and "Traceback" not in proc.stderr
    lines = files["medqa"].read_text().splitlines()
    files["medqa"].write_text("\n".join(lines[:5] + ["{not json"] + lines[5:]) + "\n")
    (tmp_path / "c.toml").write_text(config_text(files, tmp_path / "run", benchmark=bench))
    proc = cli("run", tmp_path / "c.toml", "--until", "sources")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "stage sources failed" in proc.stderr and "test.4_options.jsonl:6: invalid JSON" in proc.stderr
    assert "run the same command again" in proc.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"]["sources"]["status"] == "failed"
    assert not (tmp_path / "run" / "questions.parquet").exists()


def test_review_waiting_for_clinicians_stops_then_resumes(tmp_path, files, bench):
    text = config_text(files, tmp_path / "run", benchmark=bench, scrub=False, publish=False)
    config = parse(text.replace("[review]\nenabled = false", '[review]\nenabled = true\ndataset = "spot-check"'))
    with pytest.raises(StagePending):
        run(config, stages=replace_step("review", execute="tests.test_pipeline_runner:pending_review"))
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"]["review"]["status"] == "waiting"
    assert manifest["stages"]["decontaminate"]["status"] == "done"
    # the verdicts came in: the same run applies them (a pulled reviews file) and goes on
    from tests.pipeline_support import write_reviews

    reviews = write_reviews(tmp_path / "reviews.parquet", tmp_path / "run" / "decontaminated.parquet")
    config = parse(text.replace("[review]\nenabled = false", f'[review]\nenabled = true\nreviews = "{reviews}"'))
    manifest, ran = run(config)
    assert ran == ["review"] and manifest["stages"]["review"]["status"] == "done"


def test_demo_config_sources_through_the_cli(cli, tmp_path):
    """The shipped demo config, sources stage only: the questions the project carries, in their native formats."""
    proc = cli("run", "examples/demo.toml", "--until", "sources", "--run-dir", tmp_path / "run", check=True)
    assert "✓ sources: 231 rows" in proc.stderr
    questions = RunDir.open(tmp_path / "run").rows("sources")
    assert {q["id"].rsplit(":", 1)[0] for q in questions} == {"medqa:test", "medmcqa:dev", "pubmedqa:test"}


def test_external_files_recorded_apart_and_later_stages_marked_stale(tmp_path, files, bench):
    run(quick(files, tmp_path / "run", bench))
    manifest, ran = run(quick(files, tmp_path / "run", bench, filter_options="min_reasoning_words = 5000"),
                        start="filter", until="filter")
    assert ran == ["filter"]
    entry = manifest["stages"]["sources"]
    assert set(entry["external"]) == {str(p) for p in files.values()} and set(entry["inputs"]) == set()
    assert manifest["stages"]["sources"]["status"] == "done"  # its external files are not run-dir inputs
    assert manifest["stages"]["dedupe"]["status"] == "stale"  # filter's output changed under it
    assert "filtered.parquet changed" in manifest["stages"]["dedupe"]["error"]


def test_overlapping_source_entries_keep_ids_unique(tmp_path, files, bench):
    """The same file listed twice is refused by the config; a copy of it under another name yields the same ids,
    which the sources stage rejects as `duplicate_id` instead of letting them through twice."""
    import shutil

    copy = tmp_path / "copy" / "test.4_options.jsonl"
    copy.parent.mkdir()
    shutil.copy(files["medqa"], copy)
    text = config_text(files, tmp_path / "run", benchmark=bench).replace(
        '[[sources]]\nname = "medmcqa"', f'[[sources]]\nname = "medqa"\npath = "{copy}"\nlimit = 5\n\n'
        '[[sources]]\nname = "medmcqa"')
    manifest, _ = run(parse(text), until="sources")
    counts = manifest["stages"]["sources"]["counts"]
    assert counts["rows_out"] == 28 and counts["reasons"] == {"duplicate_id": 5}
    rejected = RunDir.open(tmp_path / "run").rows("sources", "rejected")
    assert [r["reasons"] for r in rejected] == [["duplicate_id"]] * 5
    with pytest.raises(ConfigError, match="source 'medqa' .* is listed twice"):
        parse(text.replace(str(copy), str(files["medqa"])))
