"""`curate generate` against the replay server: a real OpenAI-compatible HTTP server on 127.0.0.1 that serves
recorded real completions (../shared/data/traces, or synthetic text) and injects faults. Nothing is mocked: the client
talks HTTP to it, the CLI runs in a subprocess, SIGKILL is a real kill."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.generate import GenerateError
from curate.generate.replay import replay_server
from curate.generate.runner import run_generate
from curate.io import read_rows, write_rows
from curate.records import make_trace_id
from tests.conftest import REPO_ROOT, run_cli
from tests.generate_support import TEACHER, cache_lines, generate_here, make_questions, without_latency


@pytest.fixture
def server():
    with replay_server() as handle:
        yield handle


# ---------------------------------------------------------------- what comes back


@pytest.mark.shared_data
def test_serves_recorded_completions_and_captures_reasoning_content(shared_data: Path, tmp_path: Path):
    from sources import load_source

    traces_file = shared_data / "traces" / "dev_traces.jsonl.gz"
    questions = load_source("medqa", str(shared_data / "benchmarks" / "medqa" / "test.4_options.jsonl"), limit=1).questions
    with gzip.open(traces_file, "rt") as fh:
        recorded = [r for r in map(json.loads, fh) if r["question"].strip() == questions[0].question.strip()]
    assert recorded, "the first MedQA test question has recorded teacher responses"
    samples = len(recorded)
    with replay_server(traces=traces_file) as server:
        traces, stats = generate_here(server.url, tmp_path, questions, samples=samples)
        log = server.log()
    assert [t.sample_index for t in traces] == list(range(samples))
    assert all(entry["matched"] for entry in log)  # found by the question text inside the prompt
    assert {t.completion for t in traces} == {r["response"] for r in recorded}
    with_reasoning = {r["reasoning"] for r in recorded if r["reasoning"]}
    assert with_reasoning and with_reasoning <= {t.reasoning_content for t in traces}
    t = traces[0]
    assert t.trace_id == make_trace_id(questions[0].id, TEACHER, t.prompt_hash, t.params, 0)
    assert t.prompt_name == "multiple_choice" and t.params["seed"] == 0 and t.error is None
    assert t.usage["prompt_tokens"] > 0 and t.usage["completion_tokens"] > 0 and t.finish_reason == "stop"
    assert stats.requests == 1 and stats.completion_tokens == sum(x.usage["completion_tokens"] for x in traces)


# ---------------------------------------------------------------- faults


RECOVERED_AS = {"rate_limit": "rate_limit", "server_error": "server_error", "timeout": "timeout",
                "malformed_json": "malformed_response", "drop": "connection"}


@pytest.mark.parametrize("fault", sorted(RECOVERED_AS))
def test_each_fault_is_retried_until_it_succeeds(server, tmp_path: Path, fault: str):
    server.configure(fault_script=[fault], retry_after=0.05, hang_s=5.0)
    traces, stats = generate_here(server.url, tmp_path, make_questions(3), samples=2, timeout=0.5)
    assert len(traces) == 6 and all(t.error is None and t.completion for t in traces)
    assert stats.failed_attempts_by_kind[RECOVERED_AS[fault]] >= 3  # every request hit the fault once
    log = server.log()
    assert {e["status"] for e in log if e["attempt"] == 0} == {fault}
    assert all(e["status"] == "ok" for e in log if e["finished"])


def test_length_is_a_finished_response_not_a_retry(server, tmp_path: Path):
    server.configure(fault_script=["length"])
    traces, stats = generate_here(server.url, tmp_path, make_questions(3), samples=2)
    assert {t.finish_reason for t in traces} == {"length"} and all(t.error is None for t in traces)
    assert stats.requests == 3 and not stats.failed_attempts_by_kind  # kept for the filter to judge, never re-bought


def test_exhausted_retries_become_error_traces_not_a_crash(server, tmp_path: Path):
    server.configure(fault_for={"A 31-year-old": "server_error"})  # one question of three always fails
    traces, stats = generate_here(server.url, tmp_path, make_questions(3), samples=2, max_retries=2)
    assert len(traces) == 6
    failed = [t for t in traces if t.error]
    assert [t.question_id for t in failed] == ["medqa:test:1"] * 2
    assert all(t.error.startswith("server_error: HTTP 500") and "after 3 attempts" in t.error for t in failed)
    assert all(t.completion is None for t in failed)
    assert sum(e["status"] == "server_error" for e in server.log()) == 3 and stats.errors_by_kind == {"server_error": 2}
    # errors are not cached: the next run asks again (and now the server is healthy)
    server.configure(fault_for={})
    server.reset()
    again, _ = generate_here(server.url, tmp_path, make_questions(3), samples=2)
    assert all(t.error is None for t in again) and len(server.log()) == 1


def test_every_request_failing_is_a_clear_error_and_writes_nothing(server, tmp_path: Path):
    questions = tmp_path / "q.jsonl"
    write_rows(make_questions(3), questions)
    server.configure(faults={"server_error": 1.0})
    with pytest.raises(GenerateError, match=r"every request failed \(3 of 3 samples: server_error 3\); for example: "
                                            r"server_error: HTTP 500"):
        run_generate(questions, tmp_path / "traces.jsonl", teacher=TEACHER, base_urls=[server.url], max_retries=1,
                     retry_base=0.01)
    assert not (tmp_path / "traces.jsonl").exists()


def test_a_resumed_run_records_permanent_errors_of_its_leftovers(server, tmp_path: Path):
    """A prompt the server refuses outright (HTTP 400, not retried) on the leftovers of a resumed run is that
    trace's error, not a failed run: a re-run would be refused the same way."""
    generate_here(server.url, tmp_path, make_questions(2), samples=1)
    server.configure(fault_for={"for 4 days": "context_length"})
    traces, stats = generate_here(server.url, tmp_path, make_questions(3), samples=1)
    assert stats.responses == 0 and stats.samples_cached == 2
    assert [t.error is None for t in traces] == [True, True, False]
    assert traces[2].error.startswith("bad_request: HTTP 400: This model's maximum context length is 512 tokens")
    assert traces[2].error.endswith("(after 1 attempt)")


@pytest.mark.parametrize("headers", ["retry-after", "x-ratelimit"])
def test_rate_limit_waits_as_long_as_the_server_asks(server, tmp_path: Path, headers: str):
    server.configure(fault_script=["rate_limit"], retry_after=0.6, rate_limit_headers=headers)
    traces, _ = generate_here(server.url, tmp_path, make_questions(3), samples=1)
    assert all(t.error is None for t in traces)
    by_key: dict[str, list[dict]] = {}
    for entry in server.log():
        by_key.setdefault(entry["key"], []).append(entry)
    for first, second in (sorted(v, key=lambda e: e["attempt"]) for v in by_key.values()):
        assert first["status"] == "rate_limit" and second["status"] == "ok"
        assert second["t0"] - first["t1"] >= 0.55  # never earlier than asked (the server's own clock)


@pytest.mark.parametrize("n_mode", ["ignore", "reject"])
def test_servers_without_n_get_one_request_per_sample_with_the_same_texts(server, tmp_path: Path, n_mode: str):
    grouped, _ = generate_here(server.url, tmp_path / "a", make_questions(3), samples=3, cache_dir=tmp_path / "a")
    assert {e["n"] for e in server.log()} == {3}
    server.reset()
    server.configure(n_mode=n_mode)
    single, stats = generate_here(server.url, tmp_path / "b", make_questions(3), samples=3, cache_dir=tmp_path / "b")
    assert all(t.error is None for t in single)
    assert [t.completion for t in single] == [t.completion for t in grouped]  # sample i = seed + i either way
    finished = [e for e in server.log() if e["finished"]]
    # 'ignore': each answer gave one usable choice (the first sample of an n request is kept, nothing bought twice);
    # 'reject': the 400s are learnt from, and only single requests finish
    assert len(finished) == 9
    if n_mode == "reject":
        assert {e["n"] for e in finished} == {1} and len(server.log()) <= 9 + 4  # at most the first in-flight wasted


def test_several_base_urls_share_the_work(tmp_path: Path):
    with replay_server(latency=0.02) as one, replay_server(latency=0.02) as two:
        traces, _ = generate_here([one.url, two.url], tmp_path, make_questions(40), samples=1, concurrency=6)
        counts = [len(one.log()), len(two.log())]
    assert all(t.error is None for t in traces) and sum(counts) == 40
    assert min(counts) >= 10, counts


def test_a_dead_endpoint_among_several_does_not_lose_work(tmp_path: Path):
    with replay_server(latency=0.02) as alive, replay_server() as dying:
        dying.configure(faults={"drop": 1.0})  # it accepts connections, then drops every request
        traces, stats = generate_here([alive.url, dying.url], tmp_path, make_questions(30), samples=1, concurrency=4,
                                  max_retries=3)
        served_alive, dropped = len(alive.log()), len(dying.log())
    assert all(t.error is None for t in traces) and served_alive == 30
    assert stats.failed_attempts_by_kind["connection"] == dropped < 15  # after a few drops it is avoided, not hammered


# ---------------------------------------------------------------- the file-level stage and the CLI


def test_limit_and_shard_through_run_generate(server, tmp_path: Path):
    questions = tmp_path / "q.jsonl"
    write_rows(make_questions(30), questions)
    report = run_generate(questions, tmp_path / "limited.jsonl", teacher=TEACHER, base_urls=[server.url], limit=7,
                          samples=2, seed=0, report=tmp_path / "report.json")
    assert report.rows_in == 7 and report.rows_out == 14
    assert json.loads((tmp_path / "report.json").read_text())["generated"] == 14
    ids = []
    for i in range(3):
        run_generate(questions, tmp_path / f"s{i}.jsonl", teacher=TEACHER, base_urls=[server.url], shard=f"{i}/3", seed=0,
                     cache_dir=tmp_path / "shared-cache")
        ids.append([r["question_id"] for r in read_rows(tmp_path / f"s{i}.jsonl")])
    flat = [x for part in ids for x in part]
    assert sorted(flat) == sorted(q.id for q in make_questions(30)) and len(set(flat)) == 30
    # the same shard again is answered from the shared cache, identically
    run_generate(questions, tmp_path / "s1-again.jsonl", teacher=TEACHER, base_urls=[server.url], shard="1/3", seed=0,
                 cache_dir=tmp_path / "shared-cache")
    assert (tmp_path / "s1-again.jsonl").read_bytes() == (tmp_path / "s1.jsonl").read_bytes()


def test_bad_input_fails_clearly_before_writing(server, tmp_path: Path):
    questions = tmp_path / "q.jsonl"
    rows = [q.row() for q in make_questions(2)]
    rows[1]["answer"] = "Z"
    write_rows(rows, questions)
    proc = run_cli("generate", "-i", questions, "-o", tmp_path / "t.jsonl", "--teacher", TEACHER, "--base-url", server.url,
                   timeout=120)
    assert proc.returncode == 2 and f"{questions}:2" in proc.stderr and "answer" in proc.stderr
    assert not (tmp_path / "t.jsonl").exists()
    rows[1]["answer"] = "B"
    rows[1]["id"] = rows[0]["id"]
    write_rows(rows, questions)
    proc = run_cli("generate", "-i", questions, "-o", tmp_path / "t.jsonl", "--teacher", TEACHER, "--base-url", server.url,
                   timeout=120)
    assert proc.returncode == 2 and "duplicate id (first at line 1)" in proc.stderr and f"{questions}:2" in proc.stderr
    assert not (tmp_path / "t.jsonl").exists() and not server.log()


@pytest.mark.parametrize("problem", ["unknown_model", "bad_url"])
def test_wrong_model_or_url_is_a_clear_error_within_seconds(server, tmp_path: Path, problem: str):
    questions = tmp_path / "q.jsonl"
    write_rows(make_questions(3), questions)
    teacher, url = (("gpt-nonexistent", server.url) if problem == "unknown_model" else (TEACHER, "http://127.0.0.1:9/v1"))
    proc = run_cli("generate", "-i", questions, "-o", tmp_path / "t.jsonl", "--teacher", teacher, "--base-url", url,
                   timeout=60)  # within seconds: a hung client would raise TimeoutExpired here
    assert proc.returncode == 3, proc.stderr
    expected = "'gpt-nonexistent' is not served" if problem == "unknown_model" else "cannot reach the teacher at http://127.0.0.1:9/v1"
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "t.jsonl").exists()
    assert not any(e.get("model") == "gpt-nonexistent" for e in server.log())  # stopped before any completion request


def test_api_key_comes_from_the_environment_and_is_never_written(server, tmp_path: Path):
    secret = "sk-test-THIS-MUST-NOT-LEAK-1234"
    questions = tmp_path / "q.jsonl"
    write_rows(make_questions(2), questions)
    out = tmp_path / "t.jsonl"
    proc = run_cli("generate", "-i", questions, "-o", out, "--teacher", TEACHER, "--base-url", server.url,
                   "--api-key-env", "MY_TEACHER_KEY", "--report", tmp_path / "r.json", env={"MY_TEACHER_KEY": secret},
                   timeout=120)
    assert proc.returncode == 0, proc.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) >= 4  # questions, traces, report, a cache segment
    assert all(secret.encode() not in p.read_bytes() for p in written)
    assert secret not in proc.stdout + proc.stderr
    assert "requests sent" in proc.stderr and "wrote 2 traces" in proc.stderr  # the one-screen summary
    missing = run_cli("generate", "-i", questions, "-o", out, "--teacher", TEACHER, "--base-url", server.url,
                      "--api-key-env", "NOT_SET_ANYWHERE", timeout=120)
    assert missing.returncode == 2 and "NOT_SET_ANYWHERE" in missing.stderr


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_gives_the_same_output_and_buys_nothing_twice(tmp_path: Path):
    questions = tmp_path / "q.jsonl"
    write_rows(make_questions(24), questions)
    args = ["--teacher", TEACHER, "-n", "2", "--seed", "3", "--concurrency", "4"]
    with replay_server(latency=0.02) as server:
        clean = tmp_path / "clean.jsonl"
        run_cli("generate", "-i", questions, "-o", clean, "--cache", tmp_path / "clean-cache", "--base-url", server.url,
                *args, check=True)
        server.reset()

        # Run 1: the server answers about 10 requests, then holds every new one (in flight when the kill comes);
        # the kill comes once every answered request is in the cache (a kill between the server's send and the
        # client's write would make the server's "finished" ambiguous, not the client wrong).
        server.configure(hold_after=10, hang_s=60)
        out, cache = tmp_path / "t.jsonl", tmp_path / "cache"
        command = [sys.executable, "-m", "curate", "generate", "-i", str(questions), "-o", str(out), "--cache", str(cache),
                   "--base-url", server.url, *args]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while True:
                stats = server.stats()
                quiet = stats["held"] >= 1 and stats["answering"] == 0 and stats["finished"] >= 10
                if quiet and cache_lines(cache) == 2 * stats["finished"]:
                    break
                assert proc.poll() is None and time.monotonic() < deadline, "run 1 ended or stalled before the kill"
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            answered = stats["finished"]
        finally:
            proc.kill()
            proc.wait(30)
        assert not out.exists() and cache_lines(cache) == 2 * answered < 48  # killed mid-run, answers safe

        # Run 2: the same command finishes the job.
        server.configure(hold_after=None)
        server.release()
        run_cli("generate", "-i", questions, "-o", out, "--cache", cache, "--base-url", server.url, *args, check=True)
        log = server.log()
        # and a kill at an arbitrary moment (no quiet point) still resumes to the same output
        server.reset()
        out3, cache3 = tmp_path / "t3.jsonl", tmp_path / "cache3"
        proc = subprocess.Popen([*command[:command.index("-o")], "-o", str(out3), "--cache", str(cache3),
                                 *command[command.index("--base-url"):]], cwd=REPO_ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while cache_lines(cache3) < 6 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.kill()
        proc.wait(30)
        run_cli("generate", "-i", questions, "-o", out3, "--cache", cache3, "--base-url", server.url, *args, check=True)

    finished = [e["key"] for e in log if e["finished"]]
    repeated = sorted(k for k in set(finished) if finished.count(k) > 1)
    assert len(finished) == 24 and not repeated, (len(finished), repeated)  # each answered exactly once over both runs
    assert without_latency(out) == without_latency(clean)  # latency_s is a measurement, everything else identical
    assert without_latency(out3) == without_latency(clean)
    # re-running a finished job sends nothing and rewrites the same bytes
    before = out.read_bytes()
    proc = run_cli("generate", "-i", questions, "-o", out, "--cache", cache, "--base-url", "http://127.0.0.1:9/v1", *args)
    assert proc.returncode == 0 and out.read_bytes() == before


def test_replay_server_in_a_subprocess_answers_like_openai():
    import urllib.error
    import urllib.request

    from curate.generate.replay import replay_server_process

    def post(url: str, payload: dict) -> tuple[int, dict]:
        request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    with replay_server_process(models=["a", "b"]) as server:
        with urllib.request.urlopen(f"{server.url}/models", timeout=30) as r:
            assert [m["id"] for m in json.loads(r.read())["data"]] == ["a", "b"]
        messages = [{"role": "user", "content": "Question: x?\nA. yes\nB. no"}]
        status, body = post(f"{server.url}/chat/completions", {"model": "b", "messages": messages, "n": 2, "seed": 5})
        assert status == 200 and [c["index"] for c in body["choices"]] == [0, 1]
        assert body["choices"][0]["message"]["content"].endswith(("<answer>A</answer>", "<answer>B</answer>"))
        status, body = post(f"{server.url}/chat/completions", {"model": "c", "messages": messages})
        assert status == 404 and body["error"]["code"] == "model_not_found"
        status, body = post(f"{server.url}/chat/completions", {"model": "a", "messages": messages, "stream": True})
        assert status == 400 and "streaming" in body["error"]["message"]
        assert [e["status"] for e in server.log()] == ["ok", "unknown_model", "bad_request"]


def test_ctrl_c_stops_cleanly_and_keeps_what_was_answered(tmp_path: Path):
    questions = tmp_path / "q.jsonl"
    write_rows(make_questions(40), questions)
    out, cache = tmp_path / "t.jsonl", tmp_path / "cache"
    with replay_server(latency=0.1) as server:
        command = [sys.executable, "-m", "curate", "generate", "-i", str(questions), "-o", str(out), "--cache", str(cache),
                   "--teacher", TEACHER, "--base-url", server.url, "--concurrency", "2", "--seed", "0"]
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 60
        while cache_lines(cache) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        kept = cache_lines(cache)
        assert proc.returncode == 130 and "Traceback" not in stderr
        # what was kept, and how to go on
        said = " ".join(stderr.split())  # however the console wrapped it
        assert "interrupted: finished responses are kept in the cache; re-run the command to continue" in said
        assert 4 <= kept < 40 and not out.exists()
        server.reset()
        run_cli("generate", "-i", questions, "-o", out, "--cache", cache, "--teacher", TEACHER, "--base-url", server.url,
                "--concurrency", "2", "--seed", "0", check=True)
        assert len([e for e in server.log() if e["finished"]]) == 40 - kept  # only what was missing
    assert len(read_rows(out)) == 40
