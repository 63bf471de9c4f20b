"""A teacher server whose context (vLLM's max_model_len) is shorter than the config's max_tokens: curate reads it from
/v1/models, fits each request into it (saying so once, in the output and the report), learns a prompt's exact length
from the server's refusal when its own estimate was short, and records a prompt that cannot fit at all as that
trace's error, saying what to do. The server is the replay server answering as vLLM does (its /v1/models lists
max_model_len, its refusals are vLLM's words); tests/test_vllm.py runs the same against a real vLLM."""

from __future__ import annotations

import json
from pathlib import Path

from curate.generate.replay import replay_server
from curate.io import read_rows
from tests.conftest import run_cli
from tests.generate_support import TEACHER
from tests.pipeline_support import DEMO, config_text, copy_demo

CONTEXT = 512
#: the demo questions (of the test runs' selection) whose prompt alone is over CONTEXT for the replay server
TOO_LONG = {"pubmedqa:test:26852225", "pubmedqa:test:26606599"}


def _own_teacher_config(tmp_path: Path, extra: str = "") -> Path:
    """The test runs' demo config as a user's copy of examples/demo.toml: max_tokens = 16384, the teacher and the
    recording from the environment."""
    files = copy_demo(tmp_path / "demo")
    text = config_text(files, tmp_path / "run", scrub=False, publish=False).replace(
        'teacher = "demo-recording"', 'teacher = "${CURATE_TEACHER:-demo-recording}"').replace(
        'replay = "', 'replay = "${CURATE_REPLAY-').replace('recording.jsonl.gz"', 'recording.jsonl.gz}"', 1)
    config = tmp_path / "run.toml"
    config.write_text(text.replace("max_tokens = 16384", "max_tokens = 16384\n" + extra))
    return config


def test_own_teacher_with_a_short_context_runs_without_editing_max_tokens(tmp_path):
    with replay_server(traces=DEMO / "recording.jsonl.gz", models=["my-teacher"], max_model_len=CONTEXT) as server:
        env = {"CURATE_TEACHER": "my-teacher", "CURATE_REPLAY": "", "OPENAI_BASE_URL": server.url}
        config = _own_teacher_config(tmp_path)
        proc = run_cli("run", config, env=env, timeout=600)
        out = " ".join((proc.stdout + proc.stderr).split())
        # the two prompts that cannot fit fail (by default no sample may): the message says what to do
        assert proc.returncode == 1, out
        assert "4 of 56 traces failed after their retries (bad_request 4)" in out
        assert out.count(f"serves my-teacher with a context of {CONTEXT} tokens (max_model_len)") == 1
        traces = read_rows(tmp_path / "run" / "traces.parquet")
        failed = {t["question_id"] for t in traces if t["error"]}
        assert failed == TOO_LONG
        for t in traces:
            if t["error"]:
                assert f"the server's context is {CONTEXT} (max_model_len): serve the model with a longer " \
                       "--max-model-len" in t["error"] and "--max-failed-fraction" in t["error"]
        # every request that was answered fit: prompt + max_tokens within the context, none above what was asked
        log = server.log()
        answered = [e for e in log if e["status"] == "ok"]
        assert answered and all(e["max_tokens"] <= 16384 for e in answered)
        assert all(e["status"] in ("ok", "context_length") for e in log)
        refused = [e for e in log if e["status"] == "context_length"]
        assert len(refused) == len(TOO_LONG) and all(e["prompt_tokens"] >= CONTEXT for e in refused)
        report = json.loads((tmp_path / "run" / "generate.report.json").read_text())
        assert report["max_tokens_capped"] == [f"{server.url} (max_model_len {CONTEXT})"]

        # allowing a share of failures, the same teacher and run get past generate; with 512 tokens of context the
        # recorded answers are all cut short, so filter keeps none and the run stops there, saying why
        config = _own_teacher_config(tmp_path, "max_failed_fraction = 0.1")
        proc = run_cli("run", config, env=env, timeout=600)
        said = " ".join((proc.stdout + proc.stderr).split())
        assert proc.returncode == 1, said
        assert "stage filter kept no rows (of 56 read: truncated" in said, said[-2000:]
        manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
        assert manifest["stages"]["generate"]["status"] == manifest["stages"]["filter"]["status"] == "done"
        assert [e["status"] for e in server.log()[len(log):]] == ["context_length"] * len(TOO_LONG)  # only those


def test_a_prompt_longer_than_estimated_is_asked_again_with_the_room_the_server_reports(tmp_path):
    """A tokenizer denser than the client's 4 characters a token: the first request of a long prompt is refused
    ('max_tokens' too large, with the prompt's real length), the second asks for exactly the room left, and is
    answered; no retry is spent and no trace fails."""
    questions = tmp_path / "q.jsonl"
    rows = [{"id": f"medqa:test:{i}", "source": "medqa", "split": "test", "question": "Fever and cough. Next step? "
             + "The patient has had symptoms for several days. " * (5 * i), "answer": "A",
             "options": {"A": "chest x-ray", "B": "antibiotics"}} for i in range(4)]
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with replay_server(max_model_len=CONTEXT, prompt_token_factor=1.5) as server:
        proc = run_cli("generate", "-i", questions, "-o", tmp_path / "t.jsonl", "--teacher", TEACHER, "--base-url",
                       server.url, "--max-tokens", 300, "--report", tmp_path / "r.json", timeout=120)
        log = server.log()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(not t["error"] for t in read_rows(tmp_path / "t.jsonl"))
    refused = [e for e in log if e["status"] == "context_length"]
    assert refused, log  # the estimate was short for the long prompts
    for entry in refused:
        again = [e for e in log if e["status"] == "ok" and e["t0"] > entry["t0"]
                 and e.get("max_tokens") == CONTEXT - entry["prompt_tokens"]]
        assert again, (entry, log)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["failed"] == 0 and report["max_tokens_capped"]


def test_a_server_killed_by_the_run_seed_says_how_to_fix_the_server_not_the_config(tmp_path):
    """`curate run` always seeds its requests ([run] seed); a server that dies on a seeded request (vLLM's CPU build
    with chunked prefill, played by the replay server) stops the run with the server-side fix named first."""
    with replay_server(traces=DEMO / "recording.jsonl.gz", models=["my-teacher"], dies_on_seed=True) as server:
        env = {"CURATE_TEACHER": "my-teacher", "CURATE_REPLAY": "", "OPENAI_BASE_URL": server.url}
        config = _own_teacher_config(tmp_path, "stop_after_s = 0.5\nretry_base = 0.05")
        proc = run_cli("run", config, env=env, timeout=600)
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 3, out  # the teacher could not be reached: what `curate generate` alone exits with
    assert f"server at {server.url} stopped answering" in out
    assert "[generate] seed or else [run] seed" in out
    assert "restart that server with --no-enable-chunked-prefill, which nothing in the run config needs to know of" in out
