"""Rows that carry a question: Question rows hold its text, trace rows (Trace, FilteredTrace) only its `question_id`.

Dedupe and decontaminate work per question (all traces of a duplicate or leaked question go with it), so they need
each row's question text and group; this module finds both, joining a Question file when the rows lack the text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from curate.io import InputError, Rejected, location, read_records
from curate.records import Question
from curate.stage import FileInput

#: The questions file a stage may read beside trace rows (they carry only `question_id`).
QUESTIONS_INPUT = FileInput("Question file, for trace rows that carry only question_id")
#: The question's columns a trace row carries once `filter` joined them (`gold` is the question's `answer`).
QUESTION_FIELDS = ("source", "split", "question", "context", "options", "meta")


def row_id(row: dict[str, Any]) -> str | None:
    """A row's own id: `trace_id` for trace rows, `id` for Question rows."""
    value = row.get("trace_id") or row.get("id")
    return str(value) if value is not None else None


def load_question_records(path: str | os.PathLike[str], *,
                          skip_invalid: bool = False) -> tuple[dict[str, Question], list[Rejected]]:
    """id -> Question from a Question file: every row validated (a located InputError, or a rejected row with
    `skip_invalid`), ids unique."""
    records, rejected = read_records(path, Question, skip_invalid=skip_invalid)
    out: dict[str, Question] = {}
    for q in records:
        if q.id in out:
            raise InputError(path, "duplicate question id", record_id=q.id, field="id")
        out[q.id] = q
    return out, rejected


def load_questions(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """id -> Question row (a plain dict), from a validated Question file."""
    records, _ = load_question_records(path)
    return {qid: q.row() for qid, q in records.items()}


def join_question(row: dict[str, Any], question: dict[str, Any] | None) -> dict[str, Any]:
    """The row with its question's columns filled in where it lacks them (`gold` from the question's `answer`)."""
    if not question:
        return row
    filled = dict(row)
    for key in QUESTION_FIELDS:
        if filled.get(key) is None and key in question:
            filled[key] = question[key]
    if filled.get("gold") is None and "answer" in question:
        filled["gold"] = question["answer"]
    return filled


def join_questions(rows: list[dict[str, Any]], questions: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [join_question(row, questions.get(row.get("question_id") or "")) for row in rows]


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
            at = location(path, locs[i]) if locs is not None else {"row": i}
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
