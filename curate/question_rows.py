"""Rows that carry a question: Question rows hold its text, trace rows (Trace, FilteredTrace) only its `question_id`.

Dedupe and decontaminate work per question (all traces of a duplicate or leaked question go with it), so they need
each row's question text and group; this module finds both, joining a Question file when the rows lack the text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from curate.io import InputError, iter_rows, table_format


def row_id(row: dict[str, Any]) -> str | None:
    """A row's own id: `trace_id` for trace rows, `id` for Question rows."""
    value = row.get("trace_id") or row.get("id")
    return str(value) if value is not None else None


def read_located(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], list[int]]:
    """All rows of a stage file and each one's location (JSONL line, Parquet row) for error messages."""
    rows, locs = [], []
    for loc, row in iter_rows(path):
        rows.append(row)
        locs.append(loc)
    return rows, locs


def where(path: str | os.PathLike[str], loc: int) -> dict[str, int]:
    return {"line": loc} if table_format(path) == "jsonl" else {"row": loc}


def load_questions(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """id -> Question row, from a Question file (checked for the fields the join needs)."""
    out: dict[str, dict[str, Any]] = {}
    for loc, row in iter_rows(path):
        at = where(path, loc)
        if not row.get("id"):
            raise InputError(path, "required field is missing", field="id", **at)
        if not isinstance(row.get("question"), str):
            raise InputError(path, "expected the question text (a Question file)", field="question", record_id=row["id"],
                             **at)
        out[str(row["id"])] = row
    return out


@dataclass
class QuestionGroups:
    """Rows grouped by question, in first-appearance order: `questions[g]` is group g's question row,
    `rows_of[g]` the input positions of its rows, `group_of[i]` the group of input row i. Question rows are
    the first row of their group or the joined Question row: read them, never change them."""

    questions: list[dict[str, Any]]
    rows_of: list[list[int]]
    group_of: list[int]


def group_by_question(rows: list[dict[str, Any]], questions: dict[str, dict[str, Any]] | None = None, *,
                      path: str | os.PathLike[str] = "<rows>", locs: list[int] | None = None) -> QuestionGroups:
    """Group rows by `question_id` (trace rows) or by their own `id` (Question rows). The question text comes from
    the row itself or, for rows that only carry `question_id`, from `questions`; a clear error when neither has it."""
    index: dict[str, int] = {}
    groups = QuestionGroups(questions=[], rows_of=[], group_of=[])
    for i, row in enumerate(rows):
        qid = row.get("question_id")
        key = str(qid) if qid is not None else row_id(row)
        if key is None:
            key = f"#row{i}"  # a question without any id is its own group
        g = index.get(key)
        if g is None:
            g = index[key] = len(groups.questions)
            at = where(path, locs[i]) if locs is not None else {"row": i}
            groups.questions.append(_question_of(row, key, questions, path, at))
            groups.rows_of.append([])
        groups.rows_of[g].append(i)
        groups.group_of.append(g)
    return groups


def _question_of(row: dict[str, Any], key: str, questions: dict[str, dict[str, Any]] | None,
                 path: str | os.PathLike[str], at: dict[str, int]) -> dict[str, Any]:
    text = row.get("question")
    if isinstance(text, str):
        return row  # read only: no copy, a million rows should not cost a million dicts more
    if text is not None:
        raise InputError(path, f"expected the question text (a string), got {type(text).__name__}", field="question",
                         record_id=row_id(row), **at)
    if questions is None:
        raise InputError(path, "row has no question text and no Question file was given (pass --questions FILE)",
                         record_id=row_id(row), field="question", **at)
    found = questions.get(key)
    if found is None:
        raise InputError(path, f"question_id {key!r} is not in the Question file", record_id=row_id(row),
                         field="question_id", **at)
    return {"id": key, "question": found["question"], "options": found.get("options"), "context": found.get("context")}
