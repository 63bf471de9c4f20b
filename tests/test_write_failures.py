"""Writes that cannot be made, and the files curate keeps for itself (issue 24, items 5, 7, 9, 14-18, 22).

Every test goes through the real CLI in a subprocess. A full or read-only disk is a real tmpfs where one can be mounted
(root; `mount_tmpfs` skips elsewhere); the teacher is the replay server (a real OpenAI-compatible HTTP server)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from curate.generate.replay import replay_server
from curate.io import read_rows, write_rows
from tests.conftest import run_cli
from tests.generate_support import TEACHER, make_questions
from tests.pipeline_support import config_text, copy_demo
from tests.test_generate_failures import mount_tmpfs  # noqa: F401  (the fixture: a real tmpfs, unmounted after)


def _one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr, stderr
    return errors[0]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """Questions and their traces (generate through the CLI against the replay server), with its cache."""
    folder = tmp_path_factory.mktemp("corpus")
    questions = folder / "q.jsonl"
    write_rows(make_questions(40), questions)
    with replay_server() as server:
        run_cli("generate", "-i", questions, "-o", folder / "t.jsonl", "--cache", folder / "cache", "--teacher",
                TEACHER, "--base-url", server.url, "--seed", "0", "-n", "2", check=True, timeout=300)
    return {"questions": questions, "traces": folder / "t.jsonl", "cache": folder / "cache"}


# ---------------------------------------------------------------- item 5: a full disk during a Parquet write


@pytest.mark.parametrize("stage", ["generate", "filter", "dedupe"])
def test_a_full_disk_during_a_parquet_write_is_one_located_line(stage, corpus, mount_tmpfs, tmp_path):  # noqa: F811
    full = mount_tmpfs("full", "size=4k")  # one page: the probe passes, the first Parquet file does not fit
    out = full / "out.parquet"
    if stage == "generate":
        with replay_server() as server:  # every response is in the cache: nothing is asked again
            proc = run_cli("generate", "-i", corpus["questions"], "-o", out, "--cache", corpus["cache"], "--teacher",
                           TEACHER, "--base-url", server.url, "--seed", "0", "-n", "2", timeout=300)
    elif stage == "filter":
        proc = run_cli("filter", "-i", corpus["traces"], "--questions", corpus["questions"], "-o", out,
                       "--rejected", full / "rejected.parquet")
    else:
        proc = run_cli("dedupe", "-i", corpus["traces"], "--questions", corpus["questions"], "-o", out,
                       "--rejected", full / "dups.parquet")
    line = _one_error_line(proc.stderr)
    assert proc.returncode == 1
    assert re.search(rf"cannot write {re.escape(str(full))}/\S+\.parquet: \[Errno 28\] No space left on device", line)
    assert not out.exists() and not [p for p in full.iterdir() if p.name.endswith(".tmp")]


def test_a_full_disk_under_curate_run_names_the_parquet_file(mount_tmpfs, tmp_path):  # noqa: F811
    files = copy_demo(tmp_path / "src")
    full = mount_tmpfs("full", "size=24k")  # the manifest fits, the questions file does not
    (tmp_path / "c.toml").write_text(config_text(files, full / "run", publish=False, scrub=False))
    proc = run_cli("run", tmp_path / "c.toml", "--until", "sources")
    line = _one_error_line(proc.stderr)
    assert proc.returncode == 1
    assert f"cannot write {full}/run/questions.parquet: [Errno 28] No space left on device" in line, line
    assert not (full / "run" / "questions.parquet").exists()


# ---------------------------------------------------------------- item 7: a run dir on a read-only filesystem


def test_curate_run_on_a_read_only_filesystem_is_one_located_line(mount_tmpfs, tmp_path):  # noqa: F811
    files = copy_demo(tmp_path / "src")
    read_only = mount_tmpfs("ro", "ro,size=64k")
    (tmp_path / "c.toml").write_text(config_text(files, read_only / "run", publish=False, scrub=False))
    proc = run_cli("run", tmp_path / "c.toml", "--until", "sources")
    line = _one_error_line(proc.stderr)
    assert proc.returncode == 1
    assert f"cannot write {read_only}/run" in line and "[Errno 30] Read-only file system" in line, line


# ---------------------------------------------------------------- item 9: a config that is not UTF-8


@pytest.mark.parametrize("command", ["run", "train-decoupled"])
def test_a_config_that_is_not_utf8_is_named(command, tmp_path):
    config = tmp_path / "latin1.toml"
    config.write_bytes('[run]\ndir = "café"\n'.encode("latin-1"))
    (tmp_path / "d.jsonl").write_text("{}\n")
    args = (["run", config] if command == "run" else
            ["train-decoupled", "--data", tmp_path / "d.jsonl", "--base-model", "x", "--output-dir", tmp_path / "o",
             "--config", config])
    proc = run_cli(*args)
    line = _one_error_line(proc.stderr)
    assert proc.returncode == 2
    assert f"{config}: not valid UTF-8 (byte 16)" in line, line


# ---------------------------------------------------------------- item 8: a row whose options are a list


@pytest.mark.parametrize("stage", ["publish", "dedupe"])
def test_options_as_a_list_are_refused_by_name_before_use(stage, tmp_path):
    row = {"trace_id": "t1", "question_id": "medqa:test:1", "id": "medqa:test:1", "source": "medqa", "split": "test",
           "question": "A 30-year-old with fever. Next step?", "options": ["chest x-ray", "antibiotics"], "gold": "A",
           "answer": "A", "reasoning": "Because fever.", "completion": "<think>Because fever.</think><answer>A</answer>",
           "text": "<think>Because fever.</think><answer>A</answer>", "kept": True}
    rows = tmp_path / "rows.jsonl"
    write_rows([row], rows)
    if stage == "publish":
        proc = run_cli("publish", "-i", rows, "--repo-id", "me/x", "--local-dir", tmp_path / "pub")
    else:
        proc = run_cli("dedupe", "-i", rows, "-o", tmp_path / "d.jsonl")
    line = _one_error_line(proc.stderr)
    assert proc.returncode == 2
    assert f"{rows}:1 (id=medqa:test:1) field 'options': Input should be a valid dictionary" in line, line
    assert not (tmp_path / "pub").exists() and not (tmp_path / "d.jsonl").exists()


# ---------------------------------------------------------------- item 18: an implausible token count


def test_an_implausible_token_count_is_unknown_like_a_missing_one(tmp_path):
    questions, out, report = tmp_path / "q.jsonl", tmp_path / "t.jsonl", tmp_path / "report.json"
    write_rows(make_questions(3), questions)
    with replay_server(fault_script=["huge_usage"]) as server:
        run_cli("generate", "-i", questions, "-o", out, "--report", report, "--teacher", TEACHER, "--base-url",
                server.url, "--seed", "0", "-n", "2", check=True, timeout=300)
        assert {e["status"] for e in server.log()} == {"huge_usage"}
    figures = json.loads(report.read_text())
    assert figures["completion_tokens"] == 0 and figures["requests_without_usage"] == 3
    assert any("3 of 3 answers carried no usable token counts" in w for w in figures["warnings"])
    assert all(row["usage"]["completion_tokens"] is None for row in read_rows(out))


# ---------------------------------------------------------------- item 22: a killed run's manifest temp file


def test_a_killed_runs_manifest_temp_is_cleaned_by_the_next_run(tmp_path):
    import subprocess
    import sys

    files = copy_demo(tmp_path / "src")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = run_dir / f".manifest.json.{int(dead.stdout)}.abc123.tmp"  # the name io.atomic_path gives its temp file
    left.write_text('{"half": ')
    (tmp_path / "c.toml").write_text(config_text(files, run_dir, publish=False, scrub=False))
    run_cli("run", tmp_path / "c.toml", "--until", "sources", check=True)
    assert (run_dir / "manifest.json").exists() and not left.exists()
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]


# ---------------------------------------------------------------- items 14-17: the response cache is curate's own


def _generate(server, questions: Path, out: Path, *extra, cwd: Path | None = None, **kwargs):
    return run_cli("generate", "-i", questions, "-o", out, "--teacher", TEACHER, "--base-url", server.url, "--seed", "0",
                   *extra, cwd=cwd, timeout=300, **kwargs)


@pytest.mark.parametrize("where", ["the_output", "dot_in_a_user_folder", "a_user_folder"])
def test_a_cache_folder_that_is_not_curates_is_refused_before_any_request(where, tmp_path):
    user = tmp_path / "project"
    user.mkdir()
    (user / "README.md").write_text("# mine\n")
    (user / "notes.jsonl").write_text('{"mine": 1}\n')
    questions = user / "q.jsonl"
    write_rows(make_questions(3), questions)
    before = {p.name: p.read_bytes() for p in user.iterdir()}
    out = tmp_path / "t.jsonl"
    with replay_server() as server:
        if where == "the_output":
            proc = _generate(server, questions, out, "--cache", out)
        elif where == "dot_in_a_user_folder":
            proc = _generate(server, questions, out, "--cache", ".", cwd=user)
        else:
            proc = _generate(server, questions, out, "--cache", user)
        line = _one_error_line(proc.stderr)
        assert not server.log()  # nothing was paid for
    assert proc.returncode == 2
    if where == "the_output":
        assert f"the output {out} is the response cache folder" in line, line
    else:
        assert "is not a response cache: it holds files curate did not write (README.md, notes.jsonl, q.jsonl)" in line
    assert not out.exists() and {p.name: p.read_bytes() for p in user.iterdir()} == before


def test_a_cache_on_a_full_disk_fails_the_probe_before_any_request(mount_tmpfs, tmp_path):  # noqa: F811
    full = mount_tmpfs("full", "size=64k")
    fd = os.open(full / "filler", os.O_WRONLY | os.O_CREAT)  # fill it: an empty file still fits, a response does not
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    questions = tmp_path / "q.jsonl"
    write_rows(make_questions(20), questions)
    with replay_server() as server:
        proc = _generate(server, questions, tmp_path / "t.jsonl", "--cache", full / "cache", "--concurrency", "8")
        line = _one_error_line(proc.stderr)
        assert not server.log()  # no concurrency window of paid responses lost
    assert proc.returncode == 1
    assert f"cannot write the response cache {full}/cache" in line and "No space left on device" in line, line


def test_two_generates_on_one_output_do_not_both_pay(tmp_path):
    import subprocess
    import sys
    import time

    from tests.conftest import REPO_ROOT

    questions, out = tmp_path / "q.jsonl", tmp_path / "t.jsonl"
    write_rows(make_questions(20), questions)
    with replay_server(latency=0.2) as server:
        args = ["generate", "-i", questions, "-o", out, "--teacher", TEACHER, "--base-url", server.url, "--seed", "0",
                "--concurrency", "2"]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        first = subprocess.Popen([sys.executable, "-m", "curate", *map(str, args)], cwd=REPO_ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not server.log() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.log(), "the first generate never asked"
            second = run_cli(*args, timeout=300)
        finally:
            _, stderr = first.communicate(timeout=300)
        assert first.returncode == 0, stderr
        line = _one_error_line(second.stderr)
        assert second.returncode == 2 and f"another `curate generate` is writing {out}" in line, line
        assert len(server.log()) == 20  # each request paid for once
    assert len(read_rows(out)) == 20


def test_a_truncated_cache_file_is_counted_and_reported(tmp_path):
    questions, out, report, cache = tmp_path / "q.jsonl", tmp_path / "t.jsonl", tmp_path / "r.json", tmp_path / "cache"
    write_rows(make_questions(30), questions)
    with replay_server() as server:
        _generate(server, questions, out, "--cache", cache, check=True)
        (segment,) = cache.glob("*.jsonl")
        data = segment.read_bytes()
        cut = data.index(b"\n", len(data) // 2) - 10  # in the middle of a line: the rest of the file is gone
        segment.write_bytes(data[:cut])
        whole = data[:cut].count(b"\n")
        server.reset()
        _generate(server, questions, out, "--cache", cache, "--report", report, check=True)
        assert len(server.log()) == 30 - whole  # the torn line and every line after it, asked again
    figures = json.loads(report.read_text())
    assert figures["damaged_cache_lines"] == 1
    assert any("1 cache lines in" in w and "were cut short" in w for w in figures["warnings"]), figures["warnings"]


# ---------------------------------------------------------------- item 20: every request failing, alone and in a run


def test_every_request_failing_exits_3_alone_and_in_curate_run(tmp_path):
    from tests.pipeline_support import DEMO

    files = copy_demo(tmp_path / "src")
    questions = tmp_path / "q.jsonl"
    write_rows(make_questions(3), questions)
    with replay_server(faults={"bad_request": 1.0}) as server:
        alone = _generate(server, questions, tmp_path / "t.jsonl")
        text = config_text(files, tmp_path / "run", publish=False, scrub=False)
        text = text.replace(f'replay = "{DEMO / "recording.jsonl.gz"}"', f'base_urls = ["{server.url}"]')
        text = text.replace('teacher = "demo-recording"', f'teacher = "{TEACHER}"')
        (tmp_path / "c.toml").write_text(text)
        in_run = run_cli("run", tmp_path / "c.toml", "--until", "generate", timeout=300)
    assert "every request failed" in _one_error_line(alone.stderr)
    assert "stage generate failed" in _one_error_line(in_run.stderr) and "every request failed" in in_run.stderr
    assert alone.returncode == in_run.returncode == 3


# ---------------------------------------------------------------- item 19: a hint names only the cause seen


def test_a_server_answering_garbage_gets_no_hint_about_a_dead_vllm_engine(tmp_path):
    questions = tmp_path / "q.jsonl"
    write_rows(make_questions(5), questions)
    with replay_server(faults={"malformed_json": 1.0}) as server:
        proc = _generate(server, questions, tmp_path / "t.jsonl", "--stop-after-s", "0.5")
    line = _one_error_line(proc.stderr)
    assert proc.returncode == 3 and "stopped answering: malformed_response" in line, proc.stderr
    assert "seed" not in proc.stderr and "chunked-prefill" not in proc.stderr


# ---------------------------------------------------------------- item 12: publish --split-by a column no row has


def test_publish_split_by_a_missing_column_is_refused(tmp_path):
    from tests.test_publish import benchmark_files, own_rows_file

    bench = [f"--benchmark-path={k}={v}" for k, v in benchmark_files().items()]
    proc = run_cli("publish", "-i", own_rows_file(tmp_path), "--repo-id", "acme/x", *bench, "--local-dir",
                   tmp_path / "o", "--split-by", "no_such_column")
    line = _one_error_line(proc.stderr)
    assert proc.returncode == 2 and "--split-by 'no_such_column': no row has that column" in line, line
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- item 10: a repeated trace id


@pytest.mark.parametrize("stage", ["dedupe", "scrub", "publish"])
def test_a_repeated_trace_id_is_refused_by_every_stage_naming_both_lines(stage, finished_run, tmp_path):
    rows = read_rows(finished_run / "scrubbed.parquet")  # real rows every later stage reads
    assert len(rows) >= 3
    twice = tmp_path / "twice.jsonl"
    write_rows([*rows[:3], {**rows[1], "reasoning": rows[1]["reasoning"] + " Edited."}], twice)  # line 4 repeats 2
    out = tmp_path / "out"
    args = {"dedupe": ["dedupe", "-i", twice, "-o", out / "d.jsonl"],
            "scrub": ["scrub", "-i", twice, "-o", out / "s.jsonl"],
            "publish": ["publish", "-i", twice, "--repo-id", "me/x", "--local-dir", out / "pub"]}[stage]
    proc = run_cli(*args)
    line = _one_error_line(proc.stderr)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"{twice}:4 (id={rows[1]['trace_id']}) field 'trace_id': duplicate trace_id (first at line 2)" in line, line
    assert not [p for p in out.rglob("*")]  # nothing written (the output's folder may have been made by the probe)


# ---------------------------------------------------------------- item 11: a trace's own columns, checked by every stage


@pytest.mark.parametrize("change, field, expected", [
    ({"completion": 12345}, "completion", "Input should be a valid string"),
    ({"question_id": 17}, "question_id", "Input should be a valid string"),
])
@pytest.mark.parametrize("stage", ["dedupe", "scrub"])
def test_a_trace_column_of_the_wrong_type_is_refused_by_name_by_every_stage(stage, change, field, expected,
                                                                           finished_run, tmp_path):
    rows = read_rows(finished_run / "scrubbed.parquet")[:2]
    bad = tmp_path / "bad.jsonl"
    write_rows([rows[0], {**rows[1], **change}], bad)
    out = tmp_path / "out.jsonl"
    proc = run_cli(stage, "-i", bad, "-o", out)
    line = _one_error_line(proc.stderr)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"{bad}:2 (id={rows[1]['trace_id']}) field '{field}': {expected}" in line, line
    assert not out.exists()
