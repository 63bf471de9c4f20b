"""Small curated files for the review tests: Trace + Verdict rows as `filter` writes them, plus the questions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curate.io import write_rows

SOURCES = ("medqa", "medmcqa", "pubmedqa")
SUBJECTS = ("Medicine", "Pharmacology")
DRUGS = {"A": "Apixaban", "B": "Aspirin", "C": "Digoxin", "D": "Amiodarone"}


def questions(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        source = SOURCES[i % 3]
        options = {"A": "yes", "B": "no", "C": "maybe"} if source == "pubmedqa" else DRUGS
        out.append({
            "id": f"{source}:test:{i}", "source": source, "split": "test",
            "question": f"Case {i}: a 71-year-old with new atrial fibrillation and a CHA2DS2-VASc score of 4. Best next step?",
            "context": f"Abstract {i}: anticoagulation in atrial fibrillation." if source == "pubmedqa" else None,
            "options": options, "answer": "A", "meta": {"subject_name": SUBJECTS[i % 2]},
        })
    return out


def traces(n: int) -> list[dict[str, Any]]:
    """Trace+Verdict rows (no question text: it comes from the questions file), every 4th one wrong."""
    rows = []
    for i in range(n):
        source = SOURCES[i % 3]
        answer = "B" if i % 4 == 3 else "A"
        rows.append({
            "trace_id": f"trace-{i:04d}", "question_id": f"{source}:test:{i}", "sample_index": 0, "teacher": "teacher-7b",
            "prompt_name": "cot", "prompt_hash": "p1", "params": {"temperature": 0.7},
            "completion": f"<think>reasoning {i}</think><answer>{answer}</answer>", "finish_reason": "stop",
            "reasoning": f"Trace {i}: the stroke risk is high, so oral anticoagulation is indicated; a DOAC is preferred "
                         f"over warfarin and aspirin is not adequate. Marker-{i:04d}.",
            "answer": answer, "predicted": answer, "correct": answer == "A", "format_ok": True, "reasons": [],
            "kept": True, "pass_rate": (0.9, 0.5, 0.1)[i % 3],
        })
    return rows


def write_corpus(directory: Path, n: int = 30, suffix: str = ".jsonl") -> tuple[Path, Path]:
    """(curated file, questions file) with n rows."""
    corpus = directory / f"kept{suffix}"
    qs = directory / f"questions{suffix}"
    write_rows(traces(n), corpus)
    write_rows(questions(n), qs)
    return corpus, qs
