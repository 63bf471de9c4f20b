"""The gold-label audit on the real traces: how many questions it flags per source at a few thresholds, and a
sample of the flagged questions of the held-aside half to read by hand.

    python bench/gold_audit.py                    # counts, then 10 flagged questions per source of the held-aside half
    python bench/gold_audit.py --half dev         # the half read while developing

Questions are split in two halves by a hash of their id; the thresholds were set from the issue (3 of 4 samples)
before any flag was read, and the figure in bench/RESULTS.md is the held-aside half's.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.filter import filter_traces  # noqa: E402
from curate.filter.devset import dev_records, read_dev_rows  # noqa: E402
from curate.records import stable_hash  # noqa: E402

THRESHOLDS = ((3, 0.75), (2, 1.0), (3, 1.0), (4, 1.0))


def half_of(question_id: str) -> str:
    return "held-aside" if int(stable_hash("gold-heldout", question_id), 16) % 2 else "dev"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=Path, default=ROOT.parent / "shared" / "data" / "traces" / "dev_traces.jsonl.gz")
    parser.add_argument("--half", choices=("dev", "held-aside"), default="held-aside")
    parser.add_argument("--per-source", type=int, default=10)
    args = parser.parse_args()
    questions, traces = dev_records(read_dev_rows(args.traces))
    samples = Counter(t.question_id for t in traces)
    print(f"{len(questions)} questions, {len(traces)} traces; questions with >= 4 samples: "
          f"{sum(1 for n in samples.values() if n >= 4)}")
    print("| min votes | min share | flagged | medqa | medmcqa | pubmedqa | from the hard subsets |")
    print("|---|---|---|---|---|---|---|")
    audits = {}
    for votes, share in THRESHOLDS:
        kept, rejected, report = filter_traces(traces, questions, workers=1, gold_min_votes=votes,
                                               gold_min_share=share)
        per = report.gold_suspects_per_source
        hard = sum(1 for q in report.gold_suspects if questions[q].split.endswith("hard"))
        print(f"| {votes} | {share:g} | {len(report.gold_suspects)} | {per.get('medqa', 0)} | {per.get('medmcqa', 0)} | "
              f"{per.get('pubmedqa', 0)} | {hard} |")
        if (votes, share) == THRESHOLDS[0]:
            for r in [*kept, *(x.row for x in rejected)]:
                row = r if isinstance(r, dict) else r.model_dump()
                if row.get("gold_suspect"):
                    audits[row["question_id"]] = row["gold_suspect"]
    flagged = defaultdict(list)
    for qid in sorted(audits):
        if half_of(qid) == args.half:
            flagged[questions[qid].source].append(qid)
    print(f"\n{sum(map(len, flagged.values()))} flagged questions in the {args.half} half (defaults); a sample:")
    rng = random.Random(17)
    for _, ids in sorted(flagged.items()):
        for qid in rng.sample(ids, min(args.per_source, len(ids))):
            q, a = questions[qid], audits[qid]
            print("=" * 100)
            print(f"{qid} | gold {q.answer} | samples say {a['suspect']} | votes {a['votes']}")
            print(q.question if q.source != "pubmedqa" else "..." + q.question[-700:])
            for letter, text in q.options.items():
                print(f"  {letter}. {text}")


if __name__ == "__main__":
    main()
