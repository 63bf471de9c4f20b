"""`curate generate` when things go wrong (issue 14): a cache that cannot be written, damaged cache lines, odd response
shapes, a server that dies or hangs, one that ignores `n` or decodes greedily, empty completions, error bodies that
echo credentials, basic auth in the URL.

The teacher is the replay server (a real OpenAI-compatible HTTP server on 127.0.0.1) with injected faults; the CLI
runs in a subprocess. A full disk is a real 64 KiB tmpfs where one can be mounted (root), and everywhere an ENOSPC
injected at the narrowest boundary, `os.write` on the cache's segment file."""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from curate.generate import GenerateError
from curate.generate.cache import CacheWriteError
from curate.generate.replay import replay_server
from curate.generate.runner import run_generate
from curate.io import read_rows, write_rows
from tests.conftest import run_cli
from tests.generate_support import TEACHER, cache_lines, generate_here, make_questions


@pytest.fixture
def server():
    with replay_server() as handle:
        yield handle


def _finished(server) -> int:
    return sum(1 for e in server.log() if e["finished"])


def _questions_file(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "q.jsonl"
    write_rows(make_questions(count), path)
    return path


@pytest.fixture
def mount_tmpfs(tmp_path: Path):
    """mount_tmpfs(name, options) -> a fresh tmpfs under tmp_path (unmounted afterwards); skips where mounting is not
    allowed."""
    mounted: list[Path] = []

    def mount(name: str, options: str) -> Path:
        target = tmp_path / name
        target.mkdir()
        if shutil.which("mount") is None:
            pytest.skip("no mount command here")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True,
                              text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode})")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


# ---------------------------------------------------------------- the cache cannot be written


def _one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr and "Exception in callback" not in stderr, stderr
    return errors[0]


@pytest.mark.slow
@pytest.mark.integration
def test_a_full_cache_disk_stops_the_run_and_the_rerun_buys_only_what_was_in_flight(mount_tmpfs, tmp_path: Path):
    small = mount_tmpfs("small", "size=64k")
    questions, out = _questions_file(tmp_path, 300), tmp_path / "t.jsonl"
    args = ["--teacher", TEACHER, "--seed", "0", "--concurrency", "4"]
    with replay_server(latency=0.005) as server:
        proc = run_cli("generate", "-i", questions, "-o", out, "--cache", small / "cache", "--base-url", server.url,
                       *args, timeout=300)
        line = _one_error_line(proc.stderr)
        assert proc.returncode == 1, proc.stderr
        assert re.search(rf"cannot write the response cache {re.escape(str(small))}/cache/segment-\S+\.jsonl: "
                         r"\[Errno 28\] No space left on device", line), line
        assert "re-run the same command" in proc.stderr and not out.exists()
        kept, bought = cache_lines(small / "cache"), _finished(server)
        assert 0 < kept < 300 and (small / "cache").is_dir()
        assert bought - kept <= 4  # paid for and not kept: at most what was in flight

        roomy = tmp_path / "roomy"
        shutil.copytree(small / "cache", roomy)
        server.reset()
        run_cli("generate", "-i", questions, "-o", out, "--cache", roomy, "--base-url", server.url, *args, check=True,
                timeout=300)
        assert _finished(server) == len(server.log()) == 300 - kept  # what was written is never bought again
    rows = read_rows(out)
    assert len(rows) == 300 and not any(r["error"] for r in rows)


def test_a_refused_cache_write_stops_at_once_and_keeps_every_whole_line(server, tmp_path: Path, monkeypatch, caplog):
    # The narrowest boundary: os.write on the cache's own segment file gives a short write, then ENOSPC.
    cache = tmp_path / "cache"
    real_write, calls = os.write, {"n": 0}

    def full_disk(fd: int, data) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(cache)):
            calls["n"] += 1
            if calls["n"] == 6:
                return real_write(fd, bytes(data)[:max(1, len(data) // 2)])
            if calls["n"] > 6:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    questions, out = _questions_file(tmp_path, 60), tmp_path / "t.jsonl"
    options = dict(teacher=TEACHER, base_urls=[server.url], seed=0, concurrency=4, cache_dir=cache, retry_base=0.01)
    server.configure(latency=0.01)
    monkeypatch.setattr(os, "write", full_disk)
    with caplog.at_level(logging.ERROR), pytest.raises(CacheWriteError) as info:
        run_generate(questions, out, **options)
    monkeypatch.undo()
    error = info.value
    assert error.exit_code == 1 and error.errno == errno.ENOSPC
    assert str(error).startswith(f"cannot write the response cache {cache}/segment-")
    assert str(error).endswith(": [Errno 28] No space left on device")
    assert not [r for r in caplog.records if r.name == "asyncio"]  # no "Exception in callback", once or ten times
    assert not out.exists()
    (segment,) = cache.glob("*.jsonl")
    assert segment.read_bytes().endswith(b"\n")  # the short write was cut back to the last whole line
    kept, bought = cache_lines(cache), _finished(server)
    assert kept >= 5 and bought - kept <= 4

    server.reset()
    report = run_generate(questions, out, **options)
    assert report.rows_out == 60 and report.traces_with_error == 0 and report.from_cache == kept
    assert _finished(server) == len(server.log()) == 60 - kept


@pytest.mark.parametrize("problem", ["a_file", "read_only"])
def test_a_cache_that_cannot_be_written_fails_before_any_request(server, mount_tmpfs, tmp_path: Path, problem: str):
    if problem == "a_file":
        cache = tmp_path / "cache"
        cache.write_text("not a folder")
    else:
        cache = mount_tmpfs("ro", "ro,size=64k") / "cache"
    proc = run_cli("generate", "-i", _questions_file(tmp_path, 3), "-o", tmp_path / "t.jsonl", "--cache", cache,
                   "--teacher", TEACHER, "--base-url", server.url, timeout=120)
    line = _one_error_line(proc.stderr)
    assert proc.returncode == 1 and f"cannot write the response cache {cache}" in line and "[Errno " in line
    assert not server.log() and not (tmp_path / "t.jsonl").exists()


# ---------------------------------------------------------------- damaged cache lines


def test_damaged_cache_lines_are_asked_again_never_used(server, tmp_path: Path):
    questions = make_questions(6)
    clean, _ = generate_here(server.url, tmp_path, questions, samples=1, cache_dir=tmp_path / "clean")
    generate_here(server.url, tmp_path, questions, samples=1)
    (segment,) = (tmp_path / "cache").glob("*.jsonl")
    lines = segment.read_bytes().splitlines(keepends=True)
    assert b"Step 1" in lines[0]
    lines[0] = lines[0].replace(b"Step 1", b"Stup 1", 1)  # one flipped letter in a cached completion
    lines[1] = lines[1].rstrip(b"\n")  # two lines glued together
    segment.write_bytes(b"".join(lines))

    server.reset()
    again, stats = generate_here(server.url, tmp_path, questions, samples=1)
    assert all(t.error is None for t in again)
    assert [t.completion for t in again] == [t.completion for t in clean]  # the flipped letter was not used
    assert len(server.log()) == 3  # the flipped line and both glued ones, nothing else
    assert stats.damaged_cache_lines == 2 and any("failed their checksum" in w for w in stats.warnings)
    server.reset()
    third, stats = generate_here(server.url, tmp_path, questions, samples=1)
    assert not server.log() and stats.damaged_cache_lines == 0  # answered again, and now whole


# ---------------------------------------------------------------- odd response shapes


def test_content_as_a_list_of_parts_is_joined(server, tmp_path: Path):
    questions = make_questions(4)
    plain, _ = generate_here(server.url, tmp_path, questions, samples=2, cache_dir=tmp_path / "a")
    server.reset()
    server.configure(fault_script=["content_parts"])
    parts, stats = generate_here(server.url, tmp_path, questions, samples=2, cache_dir=tmp_path / "b")
    assert {e["status"] for e in server.log()} == {"content_parts"}
    assert all(t.error is None for t in parts) and [t.completion for t in parts] == [t.completion for t in plain]


@pytest.mark.parametrize("fault", ["bad_usage", "no_usage"])
def test_usage_missing_or_not_numbers_is_unknown_and_never_stops_the_run(server, tmp_path: Path, fault: str):
    server.configure(fault_script=[fault])
    traces, stats = generate_here(server.url, tmp_path, make_questions(3), samples=2)
    assert all(t.error is None and t.completion for t in traces)
    assert all(t.usage == {"prompt_tokens": None, "completion_tokens": None} for t in traces)
    assert stats.responses == stats.requests_without_usage == 3 and stats.completion_tokens == 0
    assert any("3 of 3 answers carried no usable token counts" in w for w in stats.warnings)


# ---------------------------------------------------------------- a server that stops answering


def test_a_server_that_dies_mid_run_stops_it_with_the_cause_after_a_few_tries(tmp_path: Path):
    with replay_server(latency=0.01, dies_after=5) as server:
        with pytest.raises(GenerateError) as info:
            generate_here(server.url, tmp_path, make_questions(40), samples=1, stop_after_s=0.3, retry_base=0.05)
        log = server.log()
    assert re.match(rf"server at {re.escape(server.url)} stopped answering: server_error: HTTP 500: EngineCore",
                    str(info.value)), info.value
    assert info.value.exit_code == 3 and "re-run" in info.value.hint
    dead = [e for e in log if e["status"] == "dead"]
    answered = sum(e["finished"] for e in log)  # the 5, and those already in flight when it died
    assert 5 <= answered == cache_lines(tmp_path / "cache") < 10  # every one of them is kept
    assert 4 <= len(dead) < 35  # a bounded number of tries, not 7 for each of the 35 requests left


def test_a_vllm_engine_killed_by_a_seed_exits_non_zero_naming_the_server(tmp_path: Path):
    with replay_server(dies_on_seed=True, dead="drop") as server:
        proc = run_cli("generate", "-i", _questions_file(tmp_path, 10), "-o", tmp_path / "t.jsonl", "--teacher",
                       TEACHER, "--base-url", server.url, "--seed", "0", "--stop-after-s", "0.5", timeout=120)
        attempts = len(server.log())
    line = _one_error_line(proc.stderr)
    assert proc.returncode == 3 and f"server at {server.url} stopped answering: connection:" in line, proc.stderr
    assert attempts < 10 * 7 and not (tmp_path / "t.jsonl").exists()


def test_a_server_that_hangs_is_given_up_on_in_seconds(server, tmp_path: Path):
    server.configure(faults={"timeout": 1.0}, hang_s=30)  # it takes every request and never answers
    with pytest.raises(GenerateError, match=r"stopped answering: timeout: no answer within 0\.3s"):
        generate_here(server.url, tmp_path, make_questions(10), samples=1, concurrency=2, read_timeout=0.3,
                      stop_after_s=0.5)


def test_a_fresh_run_whose_requests_all_fail_stops_early(server, tmp_path: Path):
    server.configure(faults={"bad_request": 1.0})
    with pytest.raises(GenerateError, match=r"every request failed \(4 questions so far, none answered\): "
                                            r"bad_request: HTTP 400"):
        generate_here(server.url, tmp_path, make_questions(40), samples=1, concurrency=2)
    assert len(server.log()) <= 4 + 2  # the stop comes after four questions (and what was in flight)


def test_a_small_run_whose_requests_all_fail_exits_non_zero(server, tmp_path: Path):
    server.configure(faults={"bad_request": 1.0})
    proc = run_cli("generate", "-i", _questions_file(tmp_path, 2), "-o", tmp_path / "t.jsonl", "--teacher", TEACHER,
                   "--base-url", server.url, "-n", "2", timeout=120)
    line = _one_error_line(proc.stderr)
    assert proc.returncode == 3 and "every request failed (4 of 4 samples: bad_request 4)" in line
    assert not (tmp_path / "t.jsonl").exists()


# ---------------------------------------------------------------- what the report says


@pytest.mark.parametrize("n_mode", ["ignore", "reject"])
def test_a_server_without_n_is_said_once_and_in_the_report(server, tmp_path: Path, n_mode: str):
    server.configure(n_mode=n_mode)
    report = run_generate(_questions_file(tmp_path, 6), tmp_path / "t.jsonl", teacher=TEACHER, base_urls=[server.url],
                          samples=3, seed=0, concurrency=4)
    assert report.rows_out == 18 and report.traces_with_error == 0
    assert report.n_ignored == [server.url]
    said = [w for w in report.warnings if f"server at {server.url}" in w]
    assert len(said) == 1 and ("ignored n=3" if n_mode == "ignore" else "refused n=3") in said[0]


def test_identical_samples_under_temperature_are_counted_and_warned_about(server, tmp_path: Path):
    questions = _questions_file(tmp_path, 5)
    options = dict(teacher=TEACHER, base_urls=[server.url], samples=4, seed=0)
    varied = run_generate(questions, tmp_path / "varied.jsonl", **options)
    assert varied.identical_samples == 0 and not varied.warnings
    server.configure(greedy=True)
    greedy = run_generate(questions, tmp_path / "greedy.jsonl", temperature=0.7, cache_dir=tmp_path / "g", **options)
    assert greedy.identical_samples == 5 * 3
    (said,) = [w for w in greedy.warnings if "byte for byte" in w]
    assert "15 samples" in said and "(5 of 5 questions)" in said and "temperature is 0.7" in said
    expected = run_generate(questions, tmp_path / "t0.jsonl", temperature=0, cache_dir=tmp_path / "t0", **options)
    assert expected.identical_samples == 0 and not expected.warnings  # greedy decoding was asked for


def test_an_empty_completion_is_asked_once_more_then_kept_as_its_error(server, tmp_path: Path):
    server.configure(fault_for={"A 31-year-old": "empty"})  # one question always gets empty text
    traces, stats = generate_here(server.url, tmp_path, make_questions(3), samples=1)
    failed = [t for t in traces if t.error]
    assert [t.question_id for t in failed] == ["medqa:test:1"]
    assert failed[0].error.startswith("empty_completion: the server returned an empty completion, asked twice")
    empty = [e for e in server.log() if e["status"] == "empty"]
    assert len(empty) == 2 and len({e["key"] for e in empty}) == 1  # once more, never seven times
    assert stats.errors_by_kind == {"empty_completion": 1}


# ---------------------------------------------------------------- credentials


def _leaks(tmp_path: Path, secret: str, *outputs: str) -> list[str]:
    found = [str(p) for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    return found + [f"output {i}" for i, text in enumerate(outputs) if secret in text]


def test_error_bodies_echoing_the_key_are_redacted_in_every_file_and_message(server, tmp_path: Path):
    secret = "sk-test-ECHOED-BACK-1234"
    server.configure(fault_for={"A 31-year-old": "echo_headers"})
    questions, traces = _questions_file(tmp_path, 3), tmp_path / "t.jsonl"
    env = {"MY_TEACHER_KEY": secret}
    proc = run_cli("generate", "-i", questions, "-o", traces, "--teacher", TEACHER, "--base-url", server.url,
                   "--api-key-env", "MY_TEACHER_KEY", "--report", tmp_path / "r.json", "--max-failed-fraction", 0.5,
                   env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (failed,) = [r for r in read_rows(traces) if r["error"]]
    assert "could not route request with headers" in failed["error"] and "Bearer ***" in failed["error"]
    filtered = run_cli("filter", "-i", traces, "--questions", questions, "-o", tmp_path / "kept.jsonl", "--rejected",
                       tmp_path / "rejected.jsonl", timeout=120)
    assert filtered.returncode == 0, filtered.stderr
    assert any(r["trace_id"] == failed["trace_id"] for r in read_rows(tmp_path / "rejected.jsonl"))
    # every request echoing: the run stops, and what it prints is redacted too
    server.configure(fault_for={}, faults={"echo_headers": 1.0})
    stopped = run_cli("generate", "-i", questions, "-o", tmp_path / "t2.jsonl", "--teacher", TEACHER, "--base-url",
                      server.url, "--api-key-env", "MY_TEACHER_KEY", env=env, timeout=120)
    assert stopped.returncode == 3 and "every request failed" in stopped.stderr and "Bearer ***" in stopped.stderr
    assert not _leaks(tmp_path, secret, proc.stdout + proc.stderr, filtered.stdout + filtered.stderr,
                      stopped.stdout + stopped.stderr)


def test_basic_auth_in_the_base_url_is_used_and_its_password_kept_out_of_everything(tmp_path: Path):
    password = "s3cret-PASS-word"
    questions = _questions_file(tmp_path, 2)
    with replay_server(basic_auth=f"alice:{password}") as server:
        url = server.url.replace("http://", f"http://alice:{password}@")
        proc = run_cli("generate", "-i", questions, "-o", tmp_path / "t.jsonl", "--teacher", TEACHER, "--base-url", url,
                       "--report", tmp_path / "r.json", timeout=120)
        assert proc.returncode == 0, proc.stderr
        wrong = run_cli("generate", "-i", questions, "-o", tmp_path / "t2.jsonl", "--teacher", TEACHER, "--base-url",
                        server.url.replace("http://", "http://alice:not-the-password@"), timeout=120)
    assert [r["error"] for r in read_rows(tmp_path / "t.jsonl")] == [None, None]
    line = _one_error_line(wrong.stderr)
    assert wrong.returncode == 3 and "refused the user name or password" in line and "alice:***@127.0.0.1" in line
    assert not _leaks(tmp_path, password, proc.stdout + proc.stderr)
    assert not _leaks(tmp_path, "not-the-password", wrong.stdout + wrong.stderr)

