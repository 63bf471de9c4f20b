"""What `curate run` costs on top of the stages it runs: fingerprints (sha256 of every input and output), the
manifest written before and after each stage, and the resume check of a finished run.

Side by side, on the same synthetic corpus: (a) baseline, every stage's entry point called in order by hand;
(b) `curate run` on a fresh run dir; (c) `curate run` again on the finished run dir (everything reused).
All three stop after review. `overhead s` is (b)'s wall time minus the stages' own wall times from its manifest:
the runner's cost measured inside one run, free of the run-to-run noise of a shared machine.
The stages are the deterministic stand-ins of tests/pipeline_fakes.py (the real generate/filter/... land on other
branches), so the figures isolate the runner's own overhead. Usage:

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

from curate.pipeline import parse_config, run_pipeline  # noqa: E402
from curate.pipeline.config import tomllib  # noqa: E402
from curate.pipeline.rundir import sha256_path  # noqa: E402
from curate.pipeline.runner import Runner  # noqa: E402
from tests.pipeline_fakes import config_text, fake_stages, write_source_files  # noqa: E402


def write_medqa(path: Path, n: int) -> None:
    with open(path, "w") as fh:
        for i in range(n):
            options = {"A": f"option a {i}", "B": f"option b {i}", "C": f"option c {i}", "D": f"option d {i}"}
            fh.write(json.dumps({"question": f"Case {i}: a patient presents with finding {i % 97} and sign {i % 89}. "
                                 "Which of the following is the most likely diagnosis?", "options": options,
                                 "answer": options["ABCD"[i % 4]], "answer_idx": "ABCD"[i % 4], "meta_info": "step1"}) + "\n")


def config_for(folder: Path, n: int, run_dir: Path):
    files = write_source_files(folder / "src")
    write_medqa(files["medqa"], n)
    return parse_config(tomllib.loads(config_text(files, run_dir)))


def baseline(config, run_dir: Path) -> float:
    runner = Runner(config, run_dir, fake_stages(), echo=lambda _: None)
    started = time.perf_counter()
    for stage in runner.enabled[:-1]:  # up to review: publish reads the manifest, which the baseline has not
        fn, call = stage.check(runner.context(stage))
        fn(*call.args, **call.kwargs)
    return time.perf_counter() - started


def timed_run(config, run_dir: Path) -> float:
    started = time.perf_counter()
    run_pipeline(config, run_dir=run_dir, stages=fake_stages(), until="review", echo=lambda _: None)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, nargs="+", default=[5000, 50000])
    args = parser.parse_args()
    print(f"{'questions':>9} {'traces':>7} {'baseline s':>10} {'curate run s':>12} {'ratio':>6} {'resume s':>9} "
          f"{'resume/base':>11} {'overhead s':>10} {'run dir MB':>10} {'sha256 MB/s':>11}")
    for n in args.questions:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            config = config_for(tmp, n, tmp / "run")
            base = baseline(config, tmp / "base")
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
            print(f"{n + 15:>9} {traces:>7} {base:>10.2f} {fresh:>12.2f} {fresh / base:>6.2f} {resume:>9.2f} "
                  f"{resume / base:>11.3f} {overhead:>10.2f} {size / 1e6:>10.1f} {rate:>11.0f}")


if __name__ == "__main__":
    main()
