"""`curate run` end to end, every stage real: real benchmark questions from ../shared/data, the replay teacher server
on loopback serving recorded real completions (`traces/dev_traces.jsonl.gz`), real filter, dedupe, decontamination,
presidio scrub and publish. The run is killed with SIGKILL in the middle of generation, then the same command
finishes it: no finished teacher request is bought twice, and the published folder loads with `datasets` and its
card's counts match the manifest. Review is off here (tests/test_review_*.py run it against a real argilla-server).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curate.generate.replay import replay_server
from curate.io import read_rows
from tests.conftest import REPO_ROOT, run_cli
from tests.test_publish import card_table

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.shared_data]

SAMPLES = 2
HOLD_AFTER = 5  # the server answers this many requests, then holds new ones: the kill lands mid-generation


def write_config(path: Path, data: Path, run_dir: Path, url: str) -> None:
    path.write_text(f"""
[run]
dir = "{run_dir}"
seed = 0

[[sources]]
name = "medqa"
path = "{data}/benchmarks/medqa/test.4_options.jsonl"
limit = 8

[[sources]]
name = "medmcqa"
path = "{data}/benchmarks/medmcqa/dev.jsonl"
limit = 6

[[sources]]
name = "pubmedqa"
path = "{data}/benchmarks/pubmedqa/ori_pqal.json"
split = "train"
limit = 4

[generate]
teacher = "replay-teacher"
base_urls = ["{url}"]
samples = {SAMPLES}
temperature = 0.7
max_tokens = 2048
concurrency = 2

[filter]

[dedupe]

[decontaminate]
benchmarks = ["pubmedqa:test"]
benchmark_paths = {{ "pubmedqa:test" = "{data}/benchmarks/pubmedqa/ori_pqal.json" }}

[scrub]
policy = "redact"

[review]
enabled = false

[publish]
repo_id = "acme/medical-cot"
evaluation_set = true   # MedQA test and MedMCQA dev questions: an evaluation set, never training data

[prices."replay-teacher"]
cost_per_1k_input = 0.5
cost_per_1k_output = 1.5
""")


def cache_lines(cache: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in cache.glob("*.jsonl")) if cache.is_dir() else 0


def test_run_killed_mid_generation_resumes_and_publishes(shared_data, tmp_path):
    import datasets

    run_dir, config = tmp_path / "run", tmp_path / "pipeline.toml"
    traces = shared_data / "traces" / "dev_traces.jsonl.gz"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_TOKEN": "hf_secret_never_written"}
    with replay_server(traces=traces, latency=0.05) as server:
        write_config(config, shared_data, run_dir, server.url)
        server.configure(hold_after=HOLD_AFTER, hang_s=60)
        proc = subprocess.Popen([sys.executable, "-m", "curate", "run", str(config)], cwd=REPO_ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while True:  # kill once every answered request is safe in the cache and the rest are held
                stats = server.stats()
                quiet = stats["held"] >= 1 and stats["answering"] == 0 and stats["finished"] >= HOLD_AFTER
                if quiet and cache_lines(run_dir / "generate-cache") == SAMPLES * stats["finished"]:
                    break
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "generation never reached the hold point"
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(30)
            proc.stderr.close()
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["stages"]["sources"]["status"] == "done"
        assert manifest["stages"]["generate"]["status"] == "running"
        assert not (run_dir / "traces.parquet").exists()

        server.configure(hold_after=None)
        server.release()
        finished = run_cli("run", config, env={"HF_TOKEN": "hf_secret_never_written"})
        assert finished.returncode == 0, finished.stdout + finished.stderr
        log = server.log()

    # Every teacher request was answered exactly once over both runs: nothing finished was paid for twice.
    answered = [entry["key"] for entry in log if entry["finished"]]
    questions = read_rows(run_dir / "questions.parquet")
    assert len(answered) == len(set(answered)) == len(questions) == 18

    manifest = json.loads((run_dir / "manifest.json").read_text())
    stages = manifest["stages"]
    assert all(stages[s]["status"] == "done" for s in
               ("sources", "generate", "filter", "dedupe", "decontaminate", "scrub", "publish"))
    assert stages["review"]["status"] == stages["verify"]["status"] == "skipped"
    traces_rows = read_rows(run_dir / "traces.parquet")
    assert len(traces_rows) == SAMPLES * len(questions) and not any(t["error"] for t in traces_rows)

    # The kept corpus: verified answers in the canonical format, some rows really kept (recorded real completions).
    published_dir = run_dir / "publish"
    ds = datasets.load_dataset(str(published_dir), cache_dir=str(tmp_path / "hf-cache"))["train"]
    scrubbed = read_rows(run_dir / "scrubbed.parquet")
    assert ds.num_rows == len(scrubbed) == stages["publish"]["output"]["rows"] > 0
    gold = {q["id"]: q["answer"] for q in questions}
    plain = datasets.load_dataset(str(published_dir), "prompt_completion", cache_dir=str(tmp_path / "hf-cache"))["train"]
    for row, pair in zip(ds, plain, strict=True):
        assert re.fullmatch(r"<think>\n.+\n</think>\n<answer>[A-E]</answer>", pair["completion"], re.S)
        assert pair["completion"].endswith(f"<answer>{gold[row['question_id']]}</answer>")
        assert row["messages"][-1]["content"] == pair["completion"] and row["trace_id"] == pair["trace_id"]

    # The card's counts are the manifest's.
    card = (published_dir / "README.md").read_text()
    table = card_table(card, "Counts per stage")
    assert [r[0] for r in table] == ["sources", "generate", "filter", "verify", "dedupe", "decontaminate", "scrub",
                                     "review"]
    assert table[3][1] == table[-1][1] == "skipped"  # the card says verify and review did not run
    for stage, status, rows_in, rows_out, rejected, _ in [*table[:3], *table[4:-1]]:
        counts = stages[stage]["counts"]
        assert status == "done"
        assert (int(rows_in), int(rows_out), int(rejected)) == (counts["rows_in"], counts["rows_out"], counts["rejected"])
    assert int(re.search(r"Rows published: \*\*(\d+)\*\*", card).group(1)) == ds.num_rows
    for path in run_dir.rglob("*"):
        if path.is_file() and path.suffix in {".json", ".md", ".html", ".jsonl", ".toml"}:
            assert "hf_secret_never_written" not in path.read_text(errors="ignore"), path

    # The report renders from the same run directory.
    run_cli("report", run_dir, check=True)
    assert (run_dir / "report.html").stat().st_size > 10_000
