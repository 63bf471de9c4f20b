"""Questions and Traces from the shared real-trace file (`traces/dev_traces.jsonl.gz`), for the labelled evaluation,
the benchmark and tests. Each row there carries its own question, options and gold letter."""

from __future__ import annotations

import gzip
import json
import os
from typing import Any

from curate.records import Question, Trace, stable_hash


def read_dev_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def dev_question_id(row: dict[str, Any]) -> str:
    # Both sources number their items independently: the source goes into the native id.
    return f"{row['dataset']}:{row['split']}:{row['source']}-{row['qid']}"


def dev_records(rows: list[dict[str, Any]]) -> tuple[dict[str, Question], list[Trace]]:
    """One Question per (source, dataset, qid) and one Trace per row (`response` is the completion, the source's
    separate `reasoning` field is `reasoning_content`)."""
    questions: dict[str, Question] = {}
    traces: list[Trace] = []
    for row in rows:
        qid = dev_question_id(row)
        if qid not in questions:
            questions[qid] = Question(id=qid, source=row["dataset"], split=row["split"], question=row["question"] or "?",
                                      options=row["options"], answer=row["gold"], meta={"from": row["source"]})
        variant = row.get("prompt_variant") or "none"
        traces.append(Trace(trace_id=row["trace_id"], question_id=qid, sample_index=0, teacher=row["model"],
                            prompt_name=variant, prompt_hash=stable_hash(row["source"], variant, length=12),
                            completion=row["response"], reasoning_content=row.get("reasoning")))
    return questions, traces


def main(argv: list[str] | None = None) -> None:
    """`python -m curate.filter.devset DEV_TRACES.jsonl.gz QUESTIONS TRACES`: write the shared real traces as a
    Question file and a Trace file, the two inputs of `curate filter` (for trying the stage on real output)."""
    import sys

    from curate.io import write_rows

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        raise SystemExit("usage: python -m curate.filter.devset DEV_TRACES.jsonl.gz QUESTIONS TRACES")
    questions, traces = dev_records(read_dev_rows(args[0]))
    write_rows(list(questions.values()), args[1])
    write_rows(traces, args[2])
    print(f"wrote {len(questions)} questions to {args[1]} and {len(traces)} traces to {args[2]}")


if __name__ == "__main__":
    main()
