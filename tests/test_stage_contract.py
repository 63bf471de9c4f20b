"""The stage contract (curate/stage.py), on the real stages: what `Stage.run` does the same way for every stage, the
config class as the one home of each option, typed reports read by attribute, and the three integration bugs the
fake stages once hid (a real review apply before the card, a PHI-free corpus, a custom source under `curate run`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from curate.dedupe import DedupeStage
from curate.io import InputError, OutputError, read_rows, write_rows
from curate.stage import ConfigError, Tally
from tests.conftest import REPO_ROOT, run_cli
from tests.pipeline_support import config_text, copy_demo, parse, run


def question_rows(n: int = 6) -> list[dict]:
    return [{"id": f"q{i}", "source": "mine", "split": "train", "question": f"Question number {i} about the kidney?",
             "options": {"A": "yes", "B": "no"}, "answer": "A"} for i in range(n)]


# ---------------------------------------------------------------- paths, formats, disks


def test_output_that_is_the_input_is_refused_also_through_a_link(tmp_path):
    src = tmp_path / "q.jsonl"
    write_rows(question_rows(), src)
    before = src.read_bytes()
    with pytest.raises(ConfigError, match="output .* is the input file"):
        DedupeStage().run(src, src)
    link = tmp_path / "link.jsonl"
    link.symlink_to(src)
    with pytest.raises(ConfigError, match="is the input file"):
        DedupeStage().run(src, link)
    with pytest.raises(ConfigError, match="--rejected .* is the input file"):
        DedupeStage().run(src, tmp_path / "out.jsonl", rejected=link)
    assert src.read_bytes() == before
    proc = run_cli("dedupe", "-i", src, "-o", link)
    assert proc.returncode == 2 and "is the input file" in proc.stderr and "Traceback" not in proc.stderr


def test_output_format_is_checked_before_any_work(tmp_path):
    src = tmp_path / "q.jsonl"
    src.write_text("{not json\n")  # reading it would fail: the format check must come first
    with pytest.raises(InputError, match=r"out\.csv: unknown table format"):
        DedupeStage().run(src, tmp_path / "out.csv")


def test_unwritable_output_folder_is_one_located_line(tmp_path):
    src = tmp_path / "q.jsonl"
    write_rows(question_rows(), src)
    (tmp_path / "afile").write_text("a file where a folder should be")
    out = tmp_path / "afile" / "out.jsonl"
    with pytest.raises(OutputError, match=r"cannot write .*afile/out\.jsonl: \[Errno 20\] Not a directory"):
        DedupeStage().run(src, out)
    proc = run_cli("dedupe", "-i", src, "-o", out)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "cannot write" in proc.stderr and "Not a directory" in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_full_disk_fails_loudly_and_leaves_the_earlier_output(tmp_path, monkeypatch):
    """The fault is injected at the narrowest boundary: the one `os.replace` that moves the finished file into place
    raises ENOSPC. The earlier output stays whole, no temp file is left, and the error names the file and errno."""
    import errno

    src, out = tmp_path / "q.jsonl", tmp_path / "out.jsonl"
    write_rows(question_rows(), src)
    DedupeStage().run(src, out)
    before = out.read_bytes()
    write_rows(question_rows(9), src)
    real = os.replace

    def full(a, b):
        if str(b) == str(out):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(a, b)

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OutputError, match=r"cannot write .*out\.jsonl: \[Errno 28\] No space left on device"):
        DedupeStage().run(src, out)
    assert out.read_bytes() == before and not list(tmp_path.glob(".out.jsonl.*"))


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_real_full_disk_through_the_cli(tmp_path):
    """A real 64 KiB filesystem: the stage's output does not fit. One line, exit 1, nothing partial."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("tmpfs cannot be mounted here")
    try:
        import random

        rng = random.Random(0)
        words = [f"w{i}" for i in range(5000)]
        src = tmp_path / "q.jsonl"  # 60 distinct long questions: ~150 KB kept, more than the disk holds
        write_rows([{**row, "question": " ".join(rng.choices(words, k=400))} for row in question_rows(60)], src)
        proc = run_cli("dedupe", "-i", src, "-o", disk / "out.jsonl")
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "cannot write" in proc.stderr and "No space left on device" in proc.stderr
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_outputs_follow_the_umask(tmp_path):
    src, out = tmp_path / "q.jsonl", tmp_path / "out.parquet"
    write_rows(question_rows(), src)
    old = os.umask(0o022)
    try:
        DedupeStage().run(src, out, rejected=tmp_path / "rej.jsonl", report=tmp_path / "r.json")
    finally:
        os.umask(old)
    for path in (out, tmp_path / "rej.jsonl", tmp_path / "r.json"):
        assert path.stat().st_mode & 0o777 == 0o644, path  # readable by the group, as every other file


def test_temp_files_of_a_killed_run_are_cleaned_up(tmp_path):
    src, out = tmp_path / "q.jsonl", tmp_path / "out.jsonl"
    write_rows(question_rows(), src)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.jsonl.{dead.pid}.x1y2z3.tmp"
    live = tmp_path / f".out.jsonl.{os.getppid()}.a1b2c3.tmp"  # a process that is running: its file stays
    stale.write_text("half written")
    live.write_text("being written")
    DedupeStage().run(src, out)
    assert not stale.exists() and live.exists()


def test_empty_input_and_nothing_kept_are_warned_about(tmp_path):
    src = tmp_path / "q.jsonl"
    src.write_text("")
    report = DedupeStage().run(src, tmp_path / "out.jsonl")
    assert report.warnings == [f"{src} has no rows"]
    proc = run_cli("dedupe", "-i", src, "-o", tmp_path / "out2.jsonl")
    assert proc.returncode == 0 and "warning:" in proc.stderr and "has no rows" in proc.stderr


def test_a_rejected_rows_primary_reason_is_counted_once():
    from curate.io import Rejected

    tally = Tally()
    tally.add([{"source": "a"}], [Rejected({"source": "a"}, ["truncated", "unclosed_think"]),
                                  Rejected({"source": "b"}, ["wrong_answer"])])
    counts = tally.counts()
    assert (counts["rows_in"], counts["rows_out"], counts["rejected"]) == (3, 1, 2)
    assert counts["reasons"] == {"truncated": 1, "wrong_answer": 1} and counts["other_reasons"] == {"unclosed_think": 1}
    assert counts["per_source"]["a"].reasons == {"truncated": 1} and counts["per_source"]["b"].rows_in == 1


# ---------------------------------------------------------------- one home for each option


def stage_classes():
    from curate.decontaminate import DecontaminateStage
    from curate.filter import FilterStage
    from curate.generate.runner import GenerateStage
    from curate.publish import PublishStage
    from curate.scrub.runner import ScrubStage
    from curate.verify import VerifyStage
    from review.apply import ReviewApplyStage
    from sources.stage import SourcesStage

    return {"generate": GenerateStage, "filter": FilterStage, "verify": VerifyStage, "dedupe": DedupeStage,
            "decontaminate": DecontaminateStage, "scrub": ScrubStage, "review apply": ReviewApplyStage,
            "publish": PublishStage, "sources": SourcesStage}


@pytest.mark.parametrize("name", ["generate", "filter", "verify", "dedupe", "decontaminate", "scrub", "review apply",
                                  "publish"])
def test_every_config_option_is_a_cli_flag_with_its_default(name):
    """The CLI is derived from the config class: each option a flag, its default and range shown once."""
    from curate.commands.stage_cli import flag_of
    from curate.stage import field_extra

    stage = stage_classes()[name]
    proc = run_cli(*name.split(), "--help")
    assert proc.returncode == 0, proc.stderr
    flat = " ".join(proc.stdout.split())
    for field, info in stage.Config.model_fields.items():
        if field_extra(stage.Config, field).get("cli") is False:
            continue
        assert flag_of(stage.Config, field) in flat, (name, field)
        default = info.get_default(call_default_factory=True)
        if isinstance(default, int | float) and not isinstance(default, bool) and default:
            assert f"[default: {default}]" in flat, (name, field)


def test_a_misspelt_option_is_refused_by_name_everywhere(tmp_path):
    src = tmp_path / "q.jsonl"
    write_rows(question_rows(), src)
    with pytest.raises(ConfigError, match="treshold: unknown option"):
        DedupeStage.invoke(src, tmp_path / "o.jsonl", treshold=0.5)
    with pytest.raises(ConfigError, match="threshold: Input should be less than or equal to 1"):
        DedupeStage(threshold=1.5)
    proc = run_cli("dedupe", "-i", src, "-o", tmp_path / "o.jsonl", "--threshold", "1.5")
    assert proc.returncode == 2 and "--threshold: Input should be less than or equal to 1" in proc.stderr


def test_every_stage_declares_config_report_and_columns():
    from pydantic import BaseModel

    from curate.records import JSON_COLUMNS, json_columns
    from curate.stage import StageConfig, StageReport

    for name, stage in stage_classes().items():
        assert issubclass(stage.Config, StageConfig) and issubclass(stage.Report, StageReport), name
        assert stage.Columns is not None and issubclass(stage.Columns, BaseModel), name
        assert "extra" not in stage.Report.model_fields, name  # typed, not a bag of keys
    assert JSON_COLUMNS == json_columns() >= {"options", "meta", "contaminated_by", "phi_found", "review", "verify",
                                              "gold_suspect"}


def test_core_does_not_import_the_cli_or_review():
    code = ("import sys; import curate.pipeline, curate.filter, curate.dedupe, curate.decontaminate, "
            "curate.generate, curate.scrub, curate.publish, curate.stage, curate.verify; "
            "bad = [m for m in sys.modules if m.startswith('curate.commands') or m == 'review' or "
            "m.startswith('review.')]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------- the bugs the fakes hid, on the real stages


def test_card_and_report_after_a_real_review_apply(finished_run):
    """review/apply.py writes `error_rate.{overall,per_stratum,per_reason}`: the card and the report read that
    typed shape (the fakes' `error_rate.{n,rate,low,high}` made the card raise KeyError: 'n' after a real review)."""
    from curate.pipeline.rundir import RunDir
    from curate.publish.card import review_section
    from curate.report import write_report

    run_dir = RunDir.open(finished_run)
    section = review_section(run_dir)
    report = run_dir.report("review")
    assert f"a stratified sample of {report.error_rate.overall.reviewed} rows" in section
    html = write_report(finished_run, finished_run.parent / "review-report.html").read_text()
    assert "rows reviewed: estimated error rate" in html


def test_a_corpus_without_phi_is_summarised_as_zero_phi(tmp_path):
    """A real scrub of rows with no PHI: the summary, the card and the report say 0 (the real scrub's report lists
    the types it searched, which the summary once counted as one finding each)."""
    from curate.pipeline import summary
    from curate.pipeline.rundir import RunDir
    from curate.publish.card import phi_section
    from curate.report import write_report

    files = copy_demo(tmp_path / "src")
    text = config_text(files, tmp_path / "run", limits={"medqa": 3, "medmcqa": 6, "pubmedqa": 1})
    # Only kinds the demo's questions and recorded answers do not hold: a corpus with rows and no PHI in it.
    manifest, _ = run(parse(text.replace("[scrub]", '[scrub]\nentities = ["SSN", "EMAIL", "IP_ADDRESS"]')),
                      until="scrub")
    run_dir = RunDir.open(tmp_path / "run")
    assert manifest["stages"]["scrub"]["status"] == "done"
    assert all(not r["phi_found"] for r in read_rows(tmp_path / "run" / "scrubbed.parquet"))
    assert manifest["stages"]["scrub"]["counts"]["rows_out"] > 0
    assert set(run_dir.report("scrub").entities_searched) == {"SSN", "EMAIL", "IP_ADDRESS"}  # apart from findings
    phi = summary.phi(run_dir)
    assert phi["per_entity"] == {} and phi["rows_with_phi"] == 0
    from curate.publish.gate import Check, GateReport

    gate = GateReport(answers=Check(name="answers"), phi=Check(name="phi"), benchmarks=Check(name="benchmarks"))
    assert "| (none found) | 0 |" in phi_section(run_dir, gate)
    assert "No PHI found." in write_report(tmp_path / "run").read_text()


def test_a_custom_csv_source_under_curate_run(tmp_path, cli):
    """A team's own questions (CSV, column mapping) as a [[sources]] entry: `curate run` once failed with
    `load_source() got multiple values for argument 'name'`."""
    import csv

    path = tmp_path / "ward.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["qid", "stem", "o1", "o2", "o3", "gold"])
        for i in range(5):
            writer.writerow([i, f"Ward question {i}: which drug reverses heparin?", "Protamine", "Vitamin K", "Naloxone",
                             "A"])
    files = copy_demo(tmp_path / "src")
    text = config_text(files, tmp_path / "run", limits={"medqa": 2, "medmcqa": 1, "pubmedqa": 1}).replace(
        "\n[generate]", f'\n[[sources]]\nname = "custom"\npath = "{path}"\nsource_name = "ward"\n'
        'mapping = { id = "qid", question = "stem", A = "o1", B = "o2", C = "o3", answer = "gold" }\n\n[generate]')
    (tmp_path / "c.toml").write_text(text)
    proc = cli("run", tmp_path / "c.toml", "--until", "sources")
    assert proc.returncode == 0, proc.stderr
    questions = read_rows(tmp_path / "run" / "questions.parquet")
    ward = [q for q in questions if q["source"] == "ward"]
    assert [q["id"] for q in ward] == [f"ward:train:{i}" for i in range(5)] and ward[0]["answer"] == "A"
    report = json.loads((tmp_path / "run" / "sources.report.json").read_text())
    assert report["per_source"]["ward"]["rows_out"] == 5
    # the same spec through `curate sources pull` gives the same questions (one code path)
    out = tmp_path / "pulled.jsonl"
    cli("sources", "pull", "custom", "--path", path, "--name", "ward", "--map", "id=qid", "--map", "question=stem",
        "--map", "A=o1", "--map", "B=o2", "--map", "C=o3", "--map", "answer=gold", "-o", out, check=True)
    assert read_rows(out) == ward


def test_reports_read_back_typed(finished_run):
    from curate.pipeline.rundir import RunDir

    run_dir = RunDir.open(finished_run)
    for name in ("sources", "generate", "filter", "dedupe", "decontaminate", "scrub", "review", "publish"):
        report = run_dir.report(name)
        assert report.stage == name and report.rows_out == run_dir.stage(name)["counts"]["rows_out"], name
    assert run_dir.report("generate").requests > 0 and run_dir.report("decontaminate").per_benchmark
    assert Path(run_dir.report("publish").local_dir).exists()
