"""The transformers backend on a tiny random Qwen2 model with a tokenizer trained in the test (CPU, no download):
real chat templating, real `generate`, the same cache and output path as the HTTP backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.generate import GenerateError, generate, run_generate
from curate.generate.requests import SamplingParams
from curate.io import read_rows, write_rows
from curate.records import Question

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from train.random_model import build_random_model

    path = tmp_path_factory.mktemp("tiny-qwen2")
    build_random_model(path)
    return path


def _questions(count: int) -> list[Question]:
    return [Question(id=f"pubmedqa:test:{i}", source="pubmedqa", split="test", question=f"Does drug {i} reduce stroke?",
                     context=f"BACKGROUND: trial {i}.", options={"A": "yes", "B": "no", "C": "maybe"}, answer="A")
            for i in range(count)]


@pytest.mark.slow
def test_transformers_backend_generates_resumes_and_is_deterministic(tiny_model: Path, tmp_path: Path):
    questions = tmp_path / "q.jsonl"
    write_rows(_questions(3), questions)
    out = tmp_path / "t.jsonl"
    report = run_generate(questions, out, teacher=str(tiny_model), backend="transformers", samples=2, max_tokens=8,
                          seed=0, cache_dir=tmp_path / "cache")
    rows = read_rows(out)
    assert report.rows_out == 6 and [(r["question_id"], r["sample_index"]) for r in rows] == [
        (f"pubmedqa:test:{i}", s) for i in range(3) for s in range(2)]
    assert all(r["prompt_name"] == "multiple_choice_context" and r["teacher"] == str(tiny_model) for r in rows)
    for r in rows:
        assert (r["completion"] and r["error"] is None) or r["error"].startswith("empty_content")
        if r["completion"]:
            assert 0 < r["usage"]["completion_tokens"] <= 8 and r["usage"]["prompt_tokens"] > 20
            assert r["finish_reason"] in ("stop", "length")
    assert len({r["completion"] for r in rows}) > 1  # sampled, not one text repeated

    # the same command again is answered from the cache: the same bytes, nothing generated
    first = out.read_bytes()
    again = run_generate(questions, out, teacher=str(tiny_model), backend="transformers", samples=2, max_tokens=8, seed=0,
                         cache_dir=tmp_path / "cache")
    assert again.generated == 0 and again.from_cache == report.generated
    assert out.read_bytes() == first

    # a fresh cache gives the same texts: each request's generator is seeded from its content hash
    fresh = generate(_questions(3), teacher=str(tiny_model), backend="transformers", samples=2,
                     params=SamplingParams(max_tokens=8, seed=0), cache_dir=tmp_path / "fresh")
    assert [t.completion for t in fresh] == [r["completion"] for r in rows]


def test_missing_local_model_is_a_clear_error(tmp_path: Path):
    with pytest.raises(GenerateError, match="cannot load the teacher") as error:
        generate(_questions(1), teacher=str(tmp_path / "no-such-model"), backend="transformers", cache_dir=tmp_path / "c")
    # the three ways forward: the demo's recording, a server, a model this machine has
    assert "recording" in error.value.hint and "base_urls" in error.value.hint and "Hugging Face cache" in error.value.hint


def test_a_teacher_not_in_the_cache_names_a_download_command_the_installed_hub_client_has(tmp_path: Path, cli):
    """Issue 21: the hint said `huggingface-cli download`, which huggingface_hub 1.x no longer installs. The command
    it names now is one that runs here: the `hf` console script beside this Python."""
    import os
    import re
    import subprocess
    import sys

    questions = tmp_path / "q.jsonl"
    write_rows(_questions(1), questions)
    home = tmp_path / "hf-home"  # an empty Hugging Face cache: the teacher is not in it
    proc = cli("generate", "-i", questions, "-o", tmp_path / "t.jsonl", "--teacher", "acme/no-such-teacher",
               "--backend", "transformers", env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(home)})
    text = " ".join(proc.stderr.split())
    assert proc.returncode != 0 and "cannot load the teacher" in text, proc.stderr[-2000:]
    assert "huggingface-cli" not in text
    command = re.search(r"download it once on a networked machine: (\S+) download MODEL", text)
    assert command is not None, text
    script = os.path.join(os.path.dirname(sys.executable), command.group(1))
    helped = subprocess.run([script, "download", "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "REPO_ID" in helped.stdout
