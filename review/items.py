"""What a clinician reviews, built from a curated row: one plain dict per trace (no Argilla types here).

A curated row is a Trace with its Verdict and later columns (`phi_found`, ...). The question text, options, context
and gold answer come from the row itself when it carries them (a `question` column, a `gold` column), else from the
questions file the traces were generated from, joined on `question_id`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from curate.io import InputError, iter_rows, location

#: Columns a row may stratify on, in the order the CLI accepts them.
STRATA_KEYS = ("source", "subject", "difficulty")
UNKNOWN = "unknown"

#: Pass-rate bands for the `difficulty` stratum when a row has a pass rate (share of its question's samples that the
#: teacher got right): a question most samples get right is easy.
DIFFICULTY_BANDS = ((0.8, "easy"), (0.4, "medium"), (0.0, "hard"))


def difficulty_of(row: dict[str, Any], meta: dict[str, Any]) -> str:
    for value in (row.get("difficulty"), meta.get("difficulty")):
        if value not in (None, ""):
            return str(value)
    pass_rate = row.get("pass_rate")
    if isinstance(pass_rate, (int, float)):
        return next(name for floor, name in DIFFICULTY_BANDS if pass_rate >= floor)
    return UNKNOWN


def subject_of(row: dict[str, Any], meta: dict[str, Any]) -> str:
    # MedMCQA names it subject_name; MedQA only has the exam step; PubMedQA has neither.
    for value in (row.get("subject"), meta.get("subject"), meta.get("subject_name"), meta.get("exam_step")):
        if value not in (None, ""):
            return str(value)
    return UNKNOWN


def strata_fields(row: dict[str, Any], question: dict[str, Any] | None) -> dict[str, str]:
    """source, subject and difficulty of a row (its own columns first, then its question's)."""
    question = question or {}
    meta = {**(question.get("meta") or {}), **(row.get("meta") or {})}
    qid = row.get("question_id") or question.get("id") or ""
    source = row.get("source") or question.get("source") or (qid.split(":", 1)[0] if ":" in qid else UNKNOWN)
    return {"source": str(source), "subject": subject_of(row, meta), "difficulty": difficulty_of(row, meta)}


def _reasoning(row: dict[str, Any]) -> str | None:
    for key in ("reasoning", "reasoning_content", "completion"):
        value = row.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def review_item(row: dict[str, Any], questions: dict[str, dict[str, Any]] | None, *, where: tuple[Path, int]) -> dict[str, Any]:
    """The reviewable view of one row. Raises InputError naming the file, line/row, trace id and missing field."""
    path, loc = where
    at = location(path, loc)
    trace_id = row.get("trace_id")
    if not isinstance(trace_id, str) or not trace_id:
        raise InputError(path, "required field is missing", field="trace_id", **at)

    def fail(field: str, message: str) -> InputError:
        return InputError(path, message, record_id=trace_id, field=field, **at)

    qid = row.get("question_id")
    question = questions.get(qid) if questions is not None and qid is not None else None
    if question is None and (not isinstance(row.get("question"), str) or row.get("gold") is None):
        if questions is None:
            raise fail("question", "the row has no question text and gold answer: pass the questions file (--questions)")
        raise fail("question_id", f"question {qid!r} is not in the questions file")
    base = question or {}
    options = row.get("options") or base.get("options") or {}
    gold = row.get("gold") if row.get("gold") is not None else base.get("answer")
    reasoning = _reasoning(row)
    if reasoning is None:
        raise fail("reasoning", "no reasoning text to review (reasoning, reasoning_content and completion are empty)")
    phi_found = row.get("phi_found")
    return {
        "trace_id": trace_id,
        "question_id": row.get("question_id") or base.get("id"),
        "question": row.get("question") if isinstance(row.get("question"), str) else base.get("question"),
        "context": row.get("context") if row.get("context") is not None else base.get("context"),
        "options": {k: v for k, v in options.items() if v is not None},
        "reasoning": reasoning,
        "final_answer": row.get("answer") or row.get("predicted"),
        "gold": gold,
        **strata_fields(row, base),
        "teacher": row.get("teacher") or UNKNOWN,
        # Earlier stages' verdicts, shown to reviewers as suggestions (None when that stage did not run).
        "filter_correct": row.get("correct") if isinstance(row.get("correct"), bool) else None,
        "phi_found": None if phi_found is None else bool(phi_found),
    }


def review_items(
    path: str | os.PathLike[str], questions: dict[str, dict[str, Any]] | None = None
) -> Iterable[dict[str, Any]]:
    """The reviewable view of every row of a curated file (Parquet or JSONL)."""
    path = Path(path)
    for loc, row in iter_rows(path):
        yield review_item(row, questions, where=(path, loc))


def stratum_of(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    """A stratum's name, e.g. `medqa/step1/hard`: one string so it can travel as Argilla metadata and a column."""
    return "/".join(str(item.get(key) or UNKNOWN) for key in keys)
