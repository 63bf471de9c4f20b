"""Benchmark of the review stage: the local work around Argilla, as ratios against baselines run side by side.

    python bench/review.py                 # 100k-row corpus, 1,000 reviewed traces, push of 1,000 records
    python bench/review.py --rows 20000    # smaller

Each phase runs in its own subprocess (so peak RSS is that phase's own):
- apply:     `apply_reviews` on the corpus (Parquet) with 1,000 traces x 2 reviewers
  baseline:  `read_rows` + `write_rows` of the same corpus (the I/O any stage pays)
- sample:    reading the corpus as review items + stratified sample of 1,000 (the local half of `push`)
  baseline:  `read_rows` of the corpus
- push:      `review.push` of 1,000 sampled traces to a local argilla-server (tests/support/argilla/server.py)
  baseline:  the argilla SDK's own `dataset.records.log` of the same 1,000 records into a fresh dataset
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SOURCES = ("medqa", "medmcqa", "pubmedqa")
SUBJECTS = ("Medicine", "Surgery", "Pharmacology", "Pathology", "Pediatrics")


def make_corpus(directory: Path, rows: int, reviewed: int) -> tuple[Path, Path]:
    from curate.io import write_rows

    corpus = []
    for i in range(rows):
        source = SOURCES[i % 3]
        corpus.append({
            "trace_id": f"t{i:07d}", "question_id": f"{source}:train:{i}", "source": source, "teacher": "teacher-7b",
            "question": f"Case {i}: a patient presents with chest pain radiating to the left arm. Next step?",
            "options": {"A": "ECG", "B": "Chest X-ray", "C": "Troponin", "D": "Discharge"}, "gold": "A",
            "reasoning": f"Trace {i}. " + "Acute coronary syndrome must be excluded first; an ECG within ten minutes. " * 8,
            "answer": "A" if i % 5 else "C", "correct": bool(i % 5), "kept": True,
            "pass_rate": (i % 10) / 10, "meta": {"subject": SUBJECTS[i % 5]},
        })
    reviews = []
    for j in range(reviewed):
        i = j * (rows // reviewed)
        for reviewer in ("alice", "bob"):
            answer = "incorrect" if i % 7 == 0 else "correct"
            reviews.append({"trace_id": f"t{i:07d}", "reviewer": reviewer, "answer_correct": answer,
                            "reasoning_sound": 2 + (i + len(reviewer)) % 4, "clinically_unsafe": "no", "phi_present": "no",
                            "comment": None})
    write_rows(corpus, directory / "corpus.parquet")
    write_rows(reviews, directory / "reviews.parquet")
    return directory / "corpus.parquet", directory / "reviews.parquet"


def phase(name: str, directory: Path, extra: dict) -> dict:
    """Run one phase in this process; return its wall time and the process's peak RSS."""
    corpus, reviews = directory / "corpus.parquet", directory / "reviews.parquet"
    started = time.perf_counter()
    if name == "make":
        from curate.io import read_rows, write_rows

        make_corpus(directory, extra["rows"], extra["reviewed"])
        write_rows(read_rows(corpus)[: extra["push"]], directory / "small.parquet")
    elif name == "apply":
        from review import apply_reviews

        apply_reviews(corpus, reviews, directory / "out.parquet", report=directory / "report.json")
    elif name == "io":
        from curate.io import read_rows, write_rows

        write_rows(read_rows(corpus), directory / "copy.parquet")
    elif name == "sample":
        from review.items import review_items, stratum_of
        from review.sample import stratified_sample

        stratified_sample(review_items(corpus), 1000, stratum=lambda it: stratum_of(it, ("source", "subject", "difficulty")),
                          key=lambda it: it["trace_id"])
    elif name == "read":
        from curate.io import read_rows

        read_rows(corpus)
    elif name in ("push", "sdk-log"):
        os.environ.update(ARGILLA_API_URL=extra["url"], ARGILLA_API_KEY=extra["key"])
        small = directory / "small.parquet"
        if name == "push":
            from review import push

            started = time.perf_counter()
            push(small, dataset="bench-push", sample=None)
        else:
            import argilla as rg

            from review.dataset import build_settings, record_for
            from review.items import review_items

            client = rg.Argilla(api_url=extra["url"], api_key=extra["key"])
            records = [record_for(it) for it in review_items(small)]
            started = time.perf_counter()
            ds = rg.Dataset(name="bench-sdk", settings=build_settings(1), client=client).create()
            ds.records.log(records, batch_size=256)
    wall = time.perf_counter() - started
    return {"phase": name, "wall_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_phase(name: str, directory: Path, extra: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", name, "--dir", str(directory), "--extra", json.dumps(extra or {})],
                         capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--reviewed", type=int, default=1000)
    parser.add_argument("--push", type=int, default=1000)
    parser.add_argument("--phase")
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--extra", default="{}")
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, args.dir, json.loads(args.extra))))
        return

    from tests.support.argilla.server import ArgillaServer, ensure_venv

    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp:
        directory = Path(tmp)
        # In a subprocess too: Linux children start with their parent's peak RSS, so the parent must stay small.
        run_phase("make", directory, {"rows": args.rows, "reviewed": args.reviewed, "push": args.push})
        results = {name: run_phase(name, directory) for name in ("io", "apply", "read", "sample")}
        ensure_venv()
        with ArgillaServer(directory / "argilla") as server:
            extra = {"url": server.url, "key": server.api_key}
            results["sdk-log"] = run_phase("sdk-log", directory, extra)
            results["push"] = run_phase("push", directory, extra)

    rows = [
        (f"apply_reviews, {args.rows:,} rows, {args.reviewed:,} reviewed x 2", "apply", "read+write same file", "io"),
        (f"review items + stratified sample of 1,000 from {args.rows:,}", "sample", "read_rows same file", "read"),
        (f"push {args.push:,} traces to argilla-server", "push", "SDK records.log, same records", "sdk-log"),
    ]
    print(f"{'measured':<48} {'wall s':>8} {'peak MB':>8}   {'baseline':<30} {'wall s':>8} {'peak MB':>8} {'time ratio':>10}")
    for label, name, base_label, base in rows:
        m, b = results[name], results[base]
        print(f"{label:<48} {m['wall_s']:>8.2f} {m['peak_rss_mb']:>8.0f}   {base_label:<30} {b['wall_s']:>8.2f} "
              f"{b['peak_rss_mb']:>8.0f} {m['wall_s'] / b['wall_s']:>10.2f}")


if __name__ == "__main__":
    main()
