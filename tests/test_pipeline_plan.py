"""`curate run CONFIG --dry-run` exactly as the README gives it: no teacher, no network, and token figures that hold
up against what a run then reports."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from tests.conftest import REPO_ROOT, run_cli


def _number(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in:\n{text}"
    return int(match.group(1).replace(",", ""))


def test_real_corpus_dry_run_needs_no_teacher_and_no_network(tmp_path):
    """The README's own line, with CURATE_TEACHER unset and an empty Hugging Face cache: it does not fail, it names
    the variable and each source it cannot read offline (the Hub copies, the PubMedQA release files), and it does
    not wait on the network (HF_HUB_OFFLINE is left unset here: the dry run goes offline by itself)."""
    child = {k: v for k, v in os.environ.items() if k not in ("CURATE_TEACHER", "HF_HUB_OFFLINE",
                                                               "HF_DATASETS_OFFLINE", "PUBMEDQA_DIR")}
    # an empty cache, and a Hub that cannot answer were it asked
    child.update(PYTHONPATH=str(REPO_ROOT), COLUMNS="200", HF_HOME=str(tmp_path / "hf"),
                 HF_ENDPOINT="http://127.0.0.1:9")
    proc = subprocess.run([sys.executable, "-m", "curate", "run", "examples/medical-cot.toml", "--dry-run",
                           "--run-dir", str(tmp_path / "run")], cwd=REPO_ROOT, env=child, capture_output=True,
                          text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "CURATE_TEACHER is not set" in out
    assert "not counted offline: medqa (the Hub copy, split train): not in the local Hugging Face cache" in out
    assert "not counted offline: medmcqa (the Hub copy" in out
    assert "not counted offline: pubmedqa (data/pubmedqa/ori_pqal.json, split train): data/pubmedqa/ori_pqal.json " \
           "does not exist" in out
    assert "Retrying" not in out and "retry" not in out.lower()
    assert not (tmp_path / "run").exists()  # nothing written


def test_demo_dry_run_tokens_match_what_the_run_reports(tmp_path):
    """The demo's dry run against the demo's own run (sources and generate, answered by the replay server from the
    recording): the prompt estimate is within 5% of the prompt tokens the run reports, the typical completion
    tokens within 5% of the completion tokens, and the worst case (every completion at max_tokens) above both."""
    env = {"CURATE_TEACHER": "", "CURATE_REPLAY": "examples/demo/recording.jsonl.gz"}
    dry = run_cli("run", "examples/demo.toml", "--dry-run", "--run-dir", tmp_path / "run", env=env, timeout=300)
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out
    prompt = _number(r"prompt tokens: about ([\d,]+)", out)
    typical = _number(r"completion tokens: typically about ([\d,]+)", out)
    worst = _number(r", at most ([\d,]+) \(every completion at max_tokens 16,384\)", out)
    assert worst == 462 * 16384
    assert "the recording this run replays" in out and "231 requests for 462 samples" in out
    run_cli("run", "examples/demo.toml", "--until", "generate", "--run-dir", tmp_path / "run", env=env, check=True,
            timeout=600)
    report = json.loads((tmp_path / "run" / "generate.report.json").read_text())
    assert report["requests"] == 231
    assert abs(prompt - report["prompt_tokens"]) <= 0.05 * report["prompt_tokens"], (prompt, report["prompt_tokens"])
    assert abs(typical - report["completion_tokens"]) <= 0.05 * report["completion_tokens"], \
        (typical, report["completion_tokens"])
    assert worst > 10 * report["completion_tokens"]
