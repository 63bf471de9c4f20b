"""Scrub throughput: curate's process-per-worker runner vs presidio's BatchAnalyzerEngine, same recognizers, same
traces, side by side; extrapolated to 100k traces. Also prints the synthetic PHI recall table.

    HF_HUB_OFFLINE=1 python bench/scrub.py --traces 2000 --workers 2

Traces are synthetic, ~2 KB: clinical reasoning prose (a seeded mix of sentences) with one synthetic PHI note
sentence in about every fifth sentence. With ../shared/data present it also reports, on real teacher traces, the
share of sentences the NER gate sends to the model (the gate is what makes prose without capitals cheap).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

PROSE = [
    "The patient presents with progressive dyspnea on exertion and bilateral lower extremity edema.",
    "Echocardiography shows a reduced ejection fraction of 30%, consistent with dilated cardiomyopathy.",
    "Given the long history of heavy alcohol use, toxic cardiomyopathy is the most likely cause.",
    "Let me think about the differential: viral myocarditis, ischemic disease and infiltrative processes.",
    "Troponin is only mildly elevated and the ECG shows no acute ST changes, which argues against infarction.",
    "Option A describes an ACE inhibitor, which reduces afterload and improves survival in this setting.",
    "Beta blockers such as metoprolol or carvedilol are also indicated once the patient is euvolemic.",
    "In Graves disease the thyroid is diffusely enlarged and radioiodine uptake is increased.",
    "Wait, the question asks for the mechanism, not the drug, so I should focus on the pathway.",
    "Loop diuretics like furosemide act on the Na-K-2Cl cotransporter in the thick ascending limb.",
    "A 45-year-old man with Parkinson disease would more likely show resting tremor and bradykinesia.",
    "The serum sodium is 128 mEq/L, so hyponatremia from thiazide use should be considered as well.",
    "Therefore, the best next step in management is to stop alcohol and start guideline-directed therapy.",
    "Cushing syndrome would present with central obesity, striae and hypertension, which are absent here.",
    "So the answer is B, because it is the only option that addresses the underlying cause.",
]


def make_traces(n: int, seed: int = 11, size: int = 2000) -> list[dict]:
    from curate.scrub.synthetic import synthetic_phi_notes

    rng = random.Random(seed)
    notes = synthetic_phi_notes(max(1, n // 2), seed=seed, sentences=1)
    traces = []
    for i in range(n):
        parts, length = [], 0
        while length < size:
            part = notes[rng.randrange(len(notes))].text if rng.random() < 0.2 else rng.choice(PROSE)
            parts.append(part)
            length += len(part) + 1
        traces.append({"trace_id": f"t{i}", "question_id": f"synthetic:bench:{i}", "completion": " ".join(parts)[:size]})
    return traces


def run_ours(traces: list[dict], workers: int) -> tuple[float, float, dict]:
    """(build seconds, scrub seconds, summary). The engine is built once in the parent; forked workers share it."""
    from curate.scrub import runner
    from curate.scrub.engine import EngineConfig
    from curate.scrub.entities import ENTITIES

    runner.local_scrubber.cache_clear()
    runner._WORKER = None
    start = time.perf_counter()
    runner.local_scrubber(EngineConfig(entities=tuple(ENTITIES)))
    built = time.perf_counter()
    _, _, summary = runner.scrub_rows([dict(t) for t in traces], workers=workers)
    return built - start, time.perf_counter() - built, summary


def run_presidio_batch(traces: list[dict], workers: int) -> tuple[float, float, int]:
    """presidio's BatchAnalyzerEngine over the same analyzer (same NLP pipeline and recognizers): spaCy work is
    spread over `workers` processes by spaCy's pipe; every recognizer runs in the parent, one text at a time.
    Returns (build seconds, scrub seconds, findings)."""
    from presidio_analyzer import BatchAnalyzerEngine

    from curate.scrub.engine import EngineConfig, Scrubber, merge_findings
    from curate.scrub.entities import ENTITIES

    start = time.perf_counter()
    scrubber = Scrubber.build(EngineConfig(entities=tuple(ENTITIES)))
    batch = BatchAnalyzerEngine(analyzer_engine=scrubber.analyzer)
    built = time.perf_counter()
    texts = [t["completion"] for t in traces]
    results = batch.analyze_iterator(texts, language="en", batch_size=32, n_process=workers,
                                     entities=list(ENTITIES), score_threshold=scrubber.config.score_threshold)
    found = 0
    for text, result in zip(texts, results):
        spans = merge_findings(result)
        scrubber.redact(text, spans)
        found += len(spans)
    return built - start, time.perf_counter() - built, found


def gate_share(shared: Path | None, limit: int = 500) -> str:
    if shared is None or not (shared / "traces" / "dev_traces.jsonl.gz").exists():
        return "real traces absent (../shared/data): gate share not measured"
    import gzip
    import json

    from curate.scrub.engine import _SENTENCE, candidate_sentences

    total = kept = chars = kept_chars = 0
    with gzip.open(shared / "traces" / "dev_traces.jsonl.gz", "rt") as fh:
        for i, line in enumerate(fh):
            if i >= limit:
                break
            text = json.loads(line).get("response") or ""
            total += sum(1 for _ in _SENTENCE.finditer(text))
            spans = candidate_sentences(text)
            kept += len(spans)
            chars += len(text)
            kept_chars += sum(e - s for s, e in spans)
    return (f"real teacher traces ({limit} from dev_traces): NER runs on {kept}/{total} sentences "
            f"({kept / max(total, 1):.0%}), {kept_chars / max(chars, 1):.0%} of the characters")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--recall-notes", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=2, help="runs per runner, alternating order; best wall kept "
                        "(the machine is shared: the best run is the least disturbed)")
    args = parser.parse_args()

    from curate.scrub.engine import EngineConfig, Scrubber
    from curate.scrub.entities import ENTITIES
    from curate.scrub.synthetic import format_table, recall_table, synthetic_phi_notes
    from tests.conftest import find_shared_data

    traces = make_traces(args.traces)
    mean_len = sum(len(t["completion"]) for t in traces) / len(traces)
    print(f"{len(traces)} synthetic traces, mean {mean_len:.0f} chars, {args.workers} processes, {os.cpu_count()} cores")

    ours_runs, base_runs = [], []
    for i in range(args.repeat):
        order = ("ours", "base") if i % 2 == 0 else ("base", "ours")
        for which in order:
            if which == "ours":
                build, seconds, summary = run_ours(traces, args.workers)
                ours_runs.append((seconds, build))
            else:
                build, seconds, base_found = run_presidio_batch(traces, args.workers)
                base_runs.append((seconds, build))
            print(f"  run {i + 1} {which}: build {build:.1f}s, scrub {seconds:.1f}s "
                  f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    (ours_s, ours_build), (base_s, base_build) = min(ours_runs), min(base_runs)
    rows = [("curate scrub (rows split over processes)", ours_s, ours_build),
            ("presidio BatchAnalyzerEngine (n_process)", base_s, base_build)]
    print("\n| runner | engine build s | scrub s | traces/s | 100k traces (min, extrapolated) | speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, seconds, build in rows:
        rate = len(traces) / seconds
        print(f"| {name} | {build:.1f} | {seconds:.1f} | {rate:.1f} | {(build + 100_000 / rate) / 60:.1f} "
              f"| {base_s / seconds:.2f}x |")
    ours_found = sum(summary["findings"].values())
    print(f"\nfindings: curate {ours_found}, presidio batch {base_found} (same recognizers: should match)")
    print(gate_share(find_shared_data()))

    scrubber = Scrubber.build(EngineConfig(entities=tuple(ENTITIES)))
    notes = synthetic_phi_notes(args.recall_notes, seed=2026)
    print(f"\nrecall on {len(notes)} synthetic clinical notes (seed 2026):\n")
    print(format_table(recall_table(notes, scrubber.find([n.text for n in notes]))))


if __name__ == "__main__":
    main()
