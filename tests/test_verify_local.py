"""Tiny random models as judges, on the same code paths as real ones: vLLM's real OpenAI-compatible server (its CPU
build, in its own venv) and the local transformers backend. A random model writes gibberish: every verdict must be
`judge_unparsable` (or, had the grammar-constrained output finished, a misquote): none may pass."""

from __future__ import annotations

import pytest

from curate.filter.reasons import JUDGE_MISQUOTE, JUDGE_UNPARSABLE
from curate.io import read_rows, write_rows
from curate.verify import run_verify
from tests.verify_support import filtered_rows

pytestmark = [pytest.mark.slow]


def _short_rows(n: int) -> list[dict]:
    return sorted(filtered_rows(), key=lambda r: len(r["reasoning"]))[:n]


@pytest.fixture(scope="module")
def vllm_judge(tmp_path_factory):
    """vLLM's OpenAI-compatible server on loopback (`curate.testing.vllm_server`) serving a tiny random Qwen2 of
    vLLM's shape (head size 64) with room for a judge prompt (4096 positions), as `tiny-judge`."""
    from curate.testing.vllm_server import VLLMServer, venv_dir, venv_ready

    if not venv_ready():
        pytest.skip(f"no vLLM venv at {venv_dir()}: build it with `bash .ci/setup.d/vllm.sh`")
    from train.random_model import VLLM_SHAPE, build_random_model

    folder = tmp_path_factory.mktemp("vllm-judge")
    build_random_model(folder / "model", shape={**VLLM_SHAPE, "max_position_embeddings": 4096})
    with VLLMServer(folder / "model", folder / "vllm.log", served_name="tiny-judge", max_model_len=4096) as server:
        yield server.url


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
    from train.random_model import build_random_model

    model = tmp_path / "model"
    build_random_model(model)
    write_rows(_short_rows(2), tmp_path / "kept.parquet")
    report = run_verify(tmp_path / "kept.parquet", tmp_path / "out.parquet", rejected=tmp_path / "rej.parquet",
                        judges=[str(model)], backend="transformers", max_tokens=16)
    assert report.rows_out == 0 and report.reasons == {JUDGE_UNPARSABLE: 2} and report.incomplete == 0
    assert report.judges[0].backend == "transformers" and not report.judges[0].structured
    assert report.judges[0].completion_tokens > 0
