"""Filter throughput on 100k traces built from the real ones, beside a naive lenient extractor on the same data.

    python bench/filter.py [--n 100000] [--data ../shared/data]

The 4,115 real teacher responses of `traces/dev_traces.jsonl.gz` are replicated into N traces (each copy a new sample
of its question, with light variation: a lead-in sentence, whitespace, a reworded hedge) so that the mix of styles and
lengths is the real one. Timed, side by side on the same traces:
- baseline: the lenient published extractor (first and last option letter by regex, right if either matches gold);
- ours, records: `filter_traces` (extraction + checks + pass rate + selection) on in-memory records, 1 and 2 processes;
- ours, files: `run_filter` end to end (read + validate Parquet, filter, write kept + rejected Parquet and the report),
  2 processes (what `curate filter` uses on this 2-core machine).
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from curate.filter import filter_traces, run_filter  # noqa: E402
from curate.filter.devset import dev_records, read_dev_rows  # noqa: E402
from curate.io import write_rows  # noqa: E402
from curate.records import Trace  # noqa: E402

LEAD_INS = ["", "", "Let me work through this carefully.\n\n", "Okay, let's look at the key findings first. ",
            "We need to reason step by step.\n"]
_LETTER = re.compile(r"\(?\b([A-E])\b\)?")


def naive_extract(text: str, gold: str) -> tuple[str | None, bool]:
    """What the lenient pipelines do: first and last standalone capital A-E; 'correct' when either matches gold."""
    letters = _LETTER.findall(text)
    if not letters:
        return None, False
    return letters[-1], gold in (letters[0], letters[-1])


def synthetic(n: int, data: Path, seed: int = 0):
    rows = read_dev_rows(data / "traces" / "dev_traces.jsonl.gz")
    questions, base = dev_records(rows)
    rng = random.Random(seed)
    traces = []
    for i in range(n):
        src = base[i % len(base)]
        rep = i // len(base)
        text = src.completion or ""
        lead = rng.choice(LEAD_INS)
        if text.startswith("<think>"):
            text = "<think>\n" + lead + text[len("<think>"):].lstrip("\n")
        else:
            text = lead + text
        if rng.random() < 0.3:
            text = text.replace("\n\n", "\n")
        if rng.random() < 0.2:
            text = text.replace("I think", "I believe")
        traces.append(Trace.model_construct(**{**src.row(), "trace_id": f"{src.trace_id}-{rep}", "sample_index": rep,
                                                "completion": text}))
    return questions, traces


class Timer:
    """Wall time and CPU time (this process and its finished children: the worker pool)."""

    def __enter__(self) -> Timer:
        self.wall0, self.cpu0 = time.perf_counter(), self._cpu()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall0, self._cpu() - self.cpu0

    @staticmethod
    def _cpu() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime


def find_data(arg: str | None) -> Path:
    from curate.testing.shared_data import find_shared_data

    data = find_shared_data(arg, need="traces/dev_traces.jsonl.gz")
    if data is not None:
        return data
    raise SystemExit("shared data not found: pass --data PATH (the folder holding traces/dev_traces.jsonl.gz)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    data = find_data(args.data)

    t0 = time.perf_counter()
    questions, traces = synthetic(args.n, data)
    chars = sum(len(t.completion or "") for t in traces)
    print(f"{len(traces)} traces ({chars / 1e6:.0f} M characters) over {len(questions)} questions, "
          f"built in {time.perf_counter() - t0:.1f}s")

    results = []
    with Timer() as timer:
        naive_ok = sum(naive_extract(t.completion or "", questions[t.question_id].answer)[1] for t in traces)
    results.append(("baseline: lenient first/last letter regex", timer, naive_ok))

    for workers in (1, 2):
        with Timer() as timer:
            kept, _rejected, report = filter_traces(traces, questions, workers=workers)
        results.append((f"ours: filter_traces (records, {workers} process{'es' if workers > 1 else ''})", timer,
                        len(kept)))
        del kept, _rejected

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_rows(list(questions.values()), tmp / "q.parquet")
        write_rows(traces, tmp / "traces.parquet")
        size = (tmp / "traces.parquet").stat().st_size
        del traces
        with Timer() as timer:
            file_report = run_filter(tmp / "traces.parquet", tmp / "q.parquet", tmp / "kept.parquet",
                                     rejected=tmp / "rejected.parquet", report=tmp / "filter.json", workers=2)
        results.append((f"ours: run_filter (files, 2 processes, {size / 1e6:.0f} MB Parquet in, kept + rejected out)",
                        timer, file_report.rows_out))

    base = results[0][1]
    load = open("/proc/loadavg").read().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(f"\nload average at the end: {load} (this machine has 2 cores shared with other jobs: wall time includes "
          "waiting for a core; CPU time is the work itself)")
    print("\n| what | wall s | CPU s | traces/s (wall) | x baseline (wall) | x baseline (CPU) | rows accepted |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, t, accepted in results:
        print(f"| {name} | {t.wall:.1f} | {t.cpu:.1f} | {args.n / t.wall:,.0f} | {t.wall / base.wall:.1f} | "
              f"{t.cpu / base.cpu:.1f} | {accepted:,} |")
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"kept {report.rows_out:,} of {report.rows_in:,}; top reasons "
          + ", ".join(f"{k} {v:,}" for k, v in list(report.reasons.items())[:5]))
    print("The baseline 'accepts' a row when its first or last letter matches gold: "
          f"{results[0][2] - report.rows_out:+,} rows more than ours, with no format checks at all.")


if __name__ == "__main__":
    main()
