"""The Hub dataset layout: `data/<split>-00000-of-00001.parquet` per split, with ready-made TRL columns.

`messages` (conversational: the student prompt (system, user), then the assistant's canonical
`<think>…</think><answer>X</answer>`) is a native list of {role, content} structs; `prompt` / `completion` are plain
strings (TRL's prompt-completion format). The teacher's raw output moves to `teacher_completion`. Other object
columns (options, meta, params, ...) are JSON text, as in every curate file, so rows from different sources share
one schema.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from curate.io import InputError, encode_json_columns
from curate.records import canonical_text

SPLIT_NAME = re.compile(r"^\w+(\.\w+)*$")


def student_prompt(row: dict[str, Any]) -> list[dict[str, str]]:
    """The student's messages: the same template family training uses (`prompts.student_messages`); the teacher's
    own prompt may have shown the gold answer (the rationalisation prompt), so it is never reused here."""
    from prompts import student_messages

    return student_messages(row)


def training_text(row: dict[str, Any], index: int, path: Path) -> str:
    text = row.get("text")
    if text:
        return text
    if row.get("reasoning") and row.get("answer"):
        return canonical_text(row["reasoning"], row["answer"])
    raise InputError(path, "no canonical training text (`text`, or `reasoning` and `answer`): publish expects rows "
                     "that went through `curate filter`", row=index, record_id=row.get("trace_id"), field="text")


def hub_row(row: dict[str, Any], index: int, path: Path) -> dict[str, Any]:
    for key in ("question", "options"):
        if not row.get(key):
            raise InputError(path, "missing: publish needs the question with its options (run the filter stage, or "
                             "give the questions file)", row=index, record_id=row.get("trace_id"), field=key)
    messages, completion = student_prompt(row), training_text(row, index, path)
    prompt = messages[-1]["content"]
    out = {k: v for k, v in row.items() if k != "completion"}
    if "completion" in row:
        out["teacher_completion"] = row["completion"]
    out.update(prompt=prompt, completion=completion,
               messages=[*messages, {"role": "assistant", "content": completion}])
    return out


def split_rows(rows: list[dict[str, Any]], split_by: str | None) -> dict[str, list[dict[str, Any]]]:
    """One `train` split, or one split per value of the column `split_by`."""
    if not split_by:
        return {"train": rows}
    splits: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        name = re.sub(r"\W+", "_", str(row.get(split_by) or "unknown")).strip("_") or "unknown"
        if not SPLIT_NAME.match(name):
            raise ValueError(f"split name {name!r} from column {split_by!r} is not a valid Hub split name")
        splits.setdefault(name, []).append(row)
    return splits


def split_file(split: str) -> str:
    return f"data/{split}-00000-of-00001.parquet"


def write_splits(splits: dict[str, list[dict[str, Any]]], folder: Path) -> None:
    """One Parquet file per split, all with one schema (built from every row at once: a column that is null in
    one split must still have the other splits' type, or `load_dataset` cannot cast the splits alike)."""
    import polars as pl

    encoded = encode_json_columns([row for rows in splits.values() for row in rows], keep_native=frozenset({"messages"}))
    frame = pl.DataFrame(encoded, infer_schema_length=None)
    start = 0
    for split, rows in splits.items():
        path = folder / split_file(split)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.slice(start, len(rows)).write_parquet(path)
        start += len(rows)
