"""What `curate run` costs on top of the stages it runs: fingerprints (sha256 of every input and output), the
manifest written before and after each stage, and the resume check of a finished run.

Side by side, on the same questions and the same teacher: (a) baseline, every stage's `run` called in order by hand
(the same real stages the runner calls); (b) `curate run` on a fresh run dir; (c) `curate run` again on the finished
run dir (everything reused). The stages are the real ones: sources (a custom JSONL file written here), generate
(the replay teacher on loopback, synthetic completions), filter, dedupe, decontaminate (a small MedQA-format
benchmark). Scrub and publish are left out: they cost the same by hand and in a run, and would hide the runner's
share. `overhead s` is (b)'s wall time minus the stages' own wall times from its manifest: the runner's cost measured
inside one run, free of the run-to-run noise of a shared machine. Usage:

    python bench/pipeline.py --questions 5000 50000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curate.generate.replay import replay_server  # noqa: E402
from curate.pipeline import parse_config, run_pipeline  # noqa: E402
from curate.pipeline.config import tomllib  # noqa: E402
from curate.pipeline.rundir import sha256_path  # noqa: E402
from curate.pipeline.runner import Runner  # noqa: E402

STEPS = ("sources", "generate", "filter", "dedupe", "decontaminate")


def write_questions(path: Path, n: int) -> None:
    with open(path, "w") as fh:
        for i in range(n):
            options = {"A": f"option a {i}", "B": f"option b {i}", "C": f"option c {i}", "D": f"option d {i}"}
            fh.write(json.dumps({"qid": i, "stem": f"Case {i}: a patient presents with finding {i % 97} and sign "
                                 f"{i % 89}. Which of the following is the most likely diagnosis?", **options,
                                 "gold": "ABCD"[i % 4]}) + "\n")


def write_benchmark(path: Path) -> None:
    item = {"question": "A 40-year-old carpenter has a painless swelling of the wrist. What is the diagnosis?",
            "answer": "Ganglion cyst", "options": {"A": "Ganglion cyst", "B": "Gout", "C": "Lipoma", "D": "Abscess"},
            "meta_info": "step1", "answer_idx": "A"}
    path.write_text(json.dumps(item) + "\n")


def config_for(folder: Path, n: int, run_dir: Path, url: str):
    write_questions(folder / "questions.jsonl", n)
    write_benchmark(folder / "bench.jsonl")
    text = f"""
[run]
dir = "{run_dir}"
[[sources]]
name = "custom"
path = "{folder / 'questions.jsonl'}"
mapping = {{ id = "qid", question = "stem", A = "A", B = "B", C = "C", D = "D", answer = "gold" }}
[generate]
teacher = "replay-teacher"
base_urls = ["{url}"]
samples = 2
concurrency = 64
[decontaminate]
benchmarks = ["medqa:test"]
benchmark_paths = {{ "medqa:test" = "{folder / 'bench.jsonl'}" }}
[scrub]
enabled = false
"""
    return parse_config(tomllib.loads(text))


def baseline(config, run_dir: Path) -> float:
    """Each stage's own `run`, by hand, in order (the runner's context gives the same paths and configs)."""
    runner = Runner(config, run_dir, echo=lambda _: None)
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for step in runner.enabled:
        if step.name not in STEPS:
            continue
        ctx = runner.context(step)
        binding = step.binding(ctx)
        step.stage_class()(binding.config).run(ctx.input, ctx.output, rejected=ctx.rejected, report=ctx.report,
                                               **ctx.files, **binding.files)
    return time.perf_counter() - started


def timed_run(config, run_dir: Path) -> float:
    started = time.perf_counter()
    run_pipeline(config, run_dir=run_dir, until="decontaminate", echo=lambda _: None)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, nargs="+", default=[5000, 50000])
    args = parser.parse_args()
    print(f"{'questions':>9} {'traces':>7} {'baseline s':>10} {'curate run s':>12} {'ratio':>6} {'resume s':>9} "
          f"{'resume/base':>11} {'overhead s':>10} {'run dir MB':>10} {'sha256 MB/s':>11}")
    with replay_server() as server:
        for n in args.questions:
            with tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                config = config_for(tmp, n, tmp / "run", server.url)
                base = baseline(config, tmp / "base")  # each run dir has its own response cache
                fresh = timed_run(config, tmp / "run")
                resume = timed_run(config, tmp / "run")
                files = [p for p in (tmp / "run").rglob("*") if p.is_file()]
                size = sum(p.stat().st_size for p in files)
                started = time.perf_counter()
                for p in files:
                    sha256_path(p)
                rate = size / 1e6 / (time.perf_counter() - started)
                stages = json.loads((tmp / "run" / "manifest.json").read_text())["stages"]
                traces = stages["generate"]["output"]["rows"]
                overhead = fresh - sum(e.get("wall_s", 0) for e in stages.values())
                print(f"{n:>9} {traces:>7} {base:>10.2f} {fresh:>12.2f} {fresh / base:>6.2f} {resume:>9.2f} "
                      f"{resume / base:>11.3f} {overhead:>10.2f} {size / 1e6:>10.1f} {rate:>11.0f}")


if __name__ == "__main__":
    main()
