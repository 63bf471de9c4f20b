"""Labelled evaluation of answer extraction on real teacher output.

    python bench/filter_eval.py [--data ../shared/data]

Per model: extraction accuracy on the hand-labelled rows (tests/fixtures/filter_labels.jsonl), guesses on rows labelled
unparsable, coverage, and the unparsable rate over every dev trace of that model; then, where our extraction
disagrees with the source's own `source_pred`, who was right.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from curate.filter.devset import read_dev_rows  # noqa: E402
from curate.filter.extract import extract_answer  # noqa: E402

_LETTER = re.compile(r"\(?\b([A-E])\b\)?")


def source_letter(row: dict) -> str | None:
    """The source's own prediction as a letter: "C", "(C) text", " C." or an option's text; None otherwise."""
    pred = (row.get("source_pred") or "").strip()
    m = re.match(r"^\(?([A-E])\b", pred)
    if m:
        return m.group(1)
    norm = pred.lower().strip(' ."\n')
    for letter, text in row["options"].items():
        if norm and norm == text.lower().strip(' ."\n'):
            return letter
    return None


def find_data(arg: str | None) -> Path:
    from curate.testing.shared_data import find_shared_data

    data = find_shared_data(arg, need="traces/dev_traces.jsonl.gz")
    if data is not None:
        return data
    raise SystemExit("shared data not found: pass --data PATH (the folder holding traces/dev_traces.jsonl.gz)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    rows = read_dev_rows(find_data(args.data) / "traces" / "dev_traces.jsonl.gz")
    labels = [json.loads(line) for line in (ROOT / "tests" / "fixtures" / "filter_labels.jsonl").read_text().splitlines()]
    by_id = {r["trace_id"]: r for r in rows}
    ours = {r["trace_id"]: extract_answer(r["response"], r["options"], r["reasoning"]).letter for r in rows}

    per_model: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        per_model[row["model"]]["all"] += 1
        per_model[row["model"]]["all_null"] += ours[row["trace_id"]] is None
    for subset in ("all", "heldout"):
        per_model_l: dict[str, Counter[str]] = defaultdict(Counter)
        for label in labels:
            if subset == "heldout" and label.get("set") != "heldout":
                continue
            row = by_id[label["trace_id"]]
            c = per_model_l[row["model"]]
            pred, truth = ours[label["trace_id"]], label["label"]
            c["labelled"] += 1
            c["parsable"] += truth != "unparsable"
            if pred is not None:
                c["predicted"] += 1
                c["correct"] += pred == truth
                c["guess"] += truth == "unparsable"
        title = "all 376 labelled rows" if subset == "all" else "held-out rows only (random, labelled after freezing)"
        print(f"\n## extraction vs hand labels: {title}\n")
        print(f"| model | labelled | parsable | predicted | correct | accuracy | guesses on unparsable | coverage |"
              f"{' dev rows | unparsable rate (all dev rows) |' if subset == 'all' else ''}")
        print(f"|---|---:|---:|---:|---:|---:|---:|---:|{'---:|---:|' if subset == 'all' else ''}")
        total: Counter[str] = Counter()
        for model in sorted(per_model_l):
            c = per_model_l[model]
            total.update(c)
            extra = ""
            if subset == "all":
                m = per_model[model]
                extra = f" {m['all']} | {m['all_null'] / m['all']:.1%} |"
                total["all"] += m["all"]
                total["all_null"] += m["all_null"]
            print(_row(model, c) + extra)
        extra = f" {total['all']} | {total['all_null'] / total['all']:.1%} |" if subset == "all" else ""
        print(_row("**all**", total) + extra)

    # Disagreements with the source's own extraction, on the labelled rows: who was right?
    print("\n## where our extraction and the source's `source_pred` disagree (labelled rows)\n")
    print("| model | disagreements | ours right | source right | neither | source guessed on unparsable |")
    print("|---|---:|---:|---:|---:|---:|")
    dis: dict[str, Counter[str]] = defaultdict(Counter)
    for label in labels:
        row = by_id[label["trace_id"]]
        mine, theirs, truth = ours[label["trace_id"]], source_letter(row), label["label"]
        if mine == theirs:
            continue
        c = dis[row["model"]]
        c["n"] += 1
        truth_letter = None if truth == "unparsable" else truth
        if mine == truth_letter:
            c["ours"] += 1
        elif theirs == truth_letter:
            c["source"] += 1
        else:
            c["neither"] += 1
        c["source_guess"] += truth == "unparsable" and theirs is not None
    total = Counter()
    for model in sorted(dis):
        c = dis[model]
        total.update(c)
        print(f"| {model} | {c['n']} | {c['ours']} | {c['source']} | {c['neither']} | {c['source_guess']} |")
    print(f"| **all** | {total['n']} | {total['ours']} | {total['source']} | {total['neither']} | {total['source_guess']} |")
    # The naive lenient extractor of bench/filter.py (last standalone capital A-E) on the same labelled rows.
    naive = Counter()
    for label in labels:
        row = by_id[label["trace_id"]]
        letters = _LETTER.findall(row["response"])
        pred = letters[-1] if letters else None
        if pred is None:
            continue
        naive["predicted"] += 1
        naive["correct"] += pred == label["label"]
        naive["guess"] += label["label"] == "unparsable"
    print(f"\nNaive last-letter regex on the same {len(labels)} labelled rows: {naive['predicted']} predictions, "
          f"{naive['correct']} correct ({naive['correct'] / naive['predicted']:.1%}), {naive['guess']} guesses on "
          "rows labelled unparsable.")
    whole = sum(1 for r in rows if ours[r["trace_id"]] != source_letter(r))
    print(f"\nOver all {len(rows)} dev rows, our extraction and source_pred disagree on {whole} "
          f"({whole / len(rows):.1%}).")


def _row(name: str, c: Counter) -> str:
    acc = f"{c['correct'] / c['predicted']:.1%}" if c["predicted"] else "-"
    cov = f"{c['correct'] / c['parsable']:.1%}" if c["parsable"] else "-"
    return (f"| {name} | {c['labelled']} | {c['parsable']} | {c['predicted']} | {c['correct']} | {acc} | {c['guess']} "
            f"| {cov} |")


if __name__ == "__main__":
    main()
