"""The Hub dataset layout: one config per training format, and the lineage apart, each a Parquet file per split.

TRL picks a dataset's format from its columns, and trains on `prompt`/`completion` whenever both are present, even
beside `messages` (then without the chat template or the system prompt). So each training format is a config of its
own, declared in the card's YAML:

- `default` (`data/`): `messages`, the conversation (the student prompt's system and user messages, then the
  assistant's canonical `<think>…</think><answer>X</answer>`): `load_dataset(repo)` gives this one;
- `prompt_completion` (`prompt_completion/`): `prompt` (the user message) and `completion`, plain strings;
- `lineage` (`lineage/`): every other published column (sampling parameters, usage, latency, the teacher's raw
  output, the filter's verdict, contamination and dedupe findings, scrub's hash, ...), keyed by `trace_id`.

The published columns are an explicit list: curate's own (`curate.records.PUBLISHED_COLUMNS`, from the column
models) and the input columns the user names (`--extra-column`); any other column of the input is left out and
the report names it. Clinicians' user names (`review.reviewers`) are published as `reviewer N`.

Both training configs carry the columns a user trains on and audits by (`AUDIT_COLUMNS`), less those that are the
same in every row or always empty (they stay in `lineage`; the card names them). Nested columns are typed (options
a struct of letters, meta, usage, the review decision ...) wherever the rows share a schema; a column whose rows do
not (values of different types under one key) is JSON text, and the card says which.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.io import InputError
from curate.records import PUBLISHED_COLUMNS, canonical_text

SPLIT_NAME = re.compile(r"^\w+(\.\w+)*$")

DEFAULT, PROMPT_COMPLETION, LINEAGE = "default", "prompt_completion", "lineage"
#: The key every config carries: a row of `lineage` belongs to the training row with its trace_id.
KEY = "trace_id"
#: Each training config's format columns (TRL reads them).
FORMATS: dict[str, tuple[str, ...]] = {DEFAULT: ("messages",), PROMPT_COMPLETION: ("prompt", "completion")}
#: Where each config's files go (the default config in `data/`, as the Hub lays out its own).
FOLDERS = {DEFAULT: "data", PROMPT_COMPLETION: PROMPT_COMPLETION, LINEAGE: LINEAGE}
#: The columns both training configs keep beside their format's, in this order: what a user trains on and audits by.
AUDIT_COLUMNS = ("question_id", "source", "split", "question", "context", "options", "gold", "answer", "reasoning",
                 "teacher", "prompt_name", "prompt_hash", "pass_rate", "meta", "phi_found", "review")
#: Columns no config repeats: the canonical `text` is `completion` and the assistant message itself.
SUPERSEDED = frozenset({"text"})


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


def published_columns(extra: Sequence[str] = ()) -> set[str]:
    """The columns a published row may carry: curate's own (`curate.records.PUBLISHED_COLUMNS`) and the input's
    columns the user named (`extra`); any other column of the input is left out."""
    return {*PUBLISHED_COLUMNS, *extra}


def pseudonymise_reviewers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with each clinician's user name in `review.reviewers` replaced by `reviewer N` (N by first
    appearance): who reviewed is not published, that the same person reviewed two rows still is."""
    names: dict[str, str] = {}
    out = []
    for row in rows:
        review = row.get("review")
        if isinstance(review, dict) and isinstance(review.get("reviewers"), list):
            reviewers = [None if name is None else names.setdefault(str(name), f"reviewer {len(names) + 1}")
                         for name in review["reviewers"]]
            row = {**row, "review": {**review, "reviewers": reviewers}}
        out.append(row)
    return out


def hub_row(row: dict[str, Any], index: int, path: Path, extra: Sequence[str] = ()) -> dict[str, Any]:
    """The row's published columns (`published_columns`) with its TRL columns (`prompt`, `completion`, `messages`);
    the teacher's raw output moves to `teacher_completion`. Every config is cut from these rows (`build_layout`)."""
    for key in (KEY, "question", "options"):
        if not row.get(key):
            why = ("missing: every published config is keyed by it (publish expects rows that went through `curate "
                   "filter`)" if key == KEY else "missing: publish needs the question with its options (run the "
                   "filter stage, or give the questions file)")
            raise InputError(path, why, row=index, record_id=row.get(KEY), field=key)
    messages, completion = student_prompt(row), training_text(row, index, path)
    prompt = messages[-1]["content"]
    keep = published_columns(extra)
    out = {k: v for k, v in row.items() if k != "completion" and k in keep}
    if "completion" in row:
        out["teacher_completion"] = row["completion"]
    out.update(prompt=prompt, completion=completion,
               messages=[*messages, {"role": "assistant", "content": completion}])
    return out


def split_rows(rows: list[dict[str, Any]], split_by: str | None) -> dict[str, list[dict[str, Any]]]:
    """One `train` split, or one split per value of the column `split_by`."""
    if not split_by:
        return {"train": rows}
    if rows and not any(split_by in row for row in rows):  # else every row would land in a split named `unknown`
        columns = sorted({key for row in rows for key in row})
        raise ValueError(f"--split-by {split_by!r}: no row has that column (the rows' columns: {', '.join(columns)})")
    splits: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        name = re.sub(r"\W+", "_", str(row.get(split_by) or "unknown")).strip("_") or "unknown"
        if not SPLIT_NAME.match(name):
            raise ValueError(f"split name {name!r} from column {split_by!r} is not a valid Hub split name")
        splits.setdefault(name, []).append(row)
    return splits


def split_file(split: str, config: str = DEFAULT) -> str:
    return f"{FOLDERS[config]}/{split}-00000-of-00001.parquet"


# ---------------------------------------------------------------- the configs


@dataclass
class Layout:
    """The published tables: config -> split -> Arrow table (one schema per config across its splits)."""

    tables: dict[str, dict[str, Any]]
    #: columns left out of the training configs (kept in lineage) -> why: "always null" or "always VALUE"
    dropped: dict[str, str] = field(default_factory=dict)
    #: nested columns stored as JSON text: their rows share no schema
    json_text: list[str] = field(default_factory=list)

    def schema(self, config: str) -> Any:
        return next(iter(self.tables[config].values())).schema

    def columns(self, config: str) -> list[str]:
        return list(self.schema(config).names)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _constant(values: list[Any]) -> str | None:
    """Why a column says nothing row by row (always empty, or one value), else None."""
    if all(_empty(v) for v in values):
        return "always empty"
    if len(values) < 2:  # one row: every column is "constant", and says something all the same
        return None
    first = json.dumps(values[0], sort_keys=True, default=str)
    if all(json.dumps(v, sort_keys=True, default=str) == first for v in values[1:]):
        shown = values[0] if isinstance(values[0], str) else first
        return f"always `{shown[:80]}`"
    return None


def _writable(arrow_type: Any) -> bool:
    """Parquet can store the type: no struct without fields at any depth (what all-`{}` values infer)."""
    import pyarrow as pa

    if pa.types.is_struct(arrow_type):
        return arrow_type.num_fields > 0 and all(_writable(arrow_type.field(i).type) for i in range(arrow_type.num_fields))
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return _writable(arrow_type.value_type)
    return True


def column_array(values: list[Any]) -> tuple[Any, bool]:
    """(Arrow array, stored as JSON text?): native (nested values as typed structs and lists, keys merged across
    rows) when the values share a schema, else each nested value as JSON text."""
    import pyarrow as pa

    try:
        array = pa.array(values)
        if _writable(array.type):
            return array, False
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        pass
    text = [v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str) for v in values]
    return pa.array(text, type=pa.string()), True


def build_layout(splits: dict[str, list[dict[str, Any]]]) -> Layout:
    """Cut the published rows (`hub_row`s) into the configs: each column is built once over every row of every
    split (a column null in one split still gets the others' type, so `load_dataset` casts the splits alike)."""
    import pyarrow as pa

    rows = [row for part in splits.values() for row in part]
    order = list(dict.fromkeys(name for row in rows for name in row if name not in SUPERSEDED))
    values = {name: [row.get(name) for row in rows] for name in order}
    arrays, json_text = {}, []
    for name in order:
        arrays[name], as_text = column_array(values[name])
        if as_text and any(not _empty(v) and not isinstance(v, str) for v in values[name]):
            json_text.append(name)
    format_columns = {c for cols in FORMATS.values() for c in cols}
    dropped = {name: why for name in AUDIT_COLUMNS if name in arrays and (why := _constant(values[name]))}
    audit = [name for name in AUDIT_COLUMNS if name in arrays and name not in dropped]
    configs = {config: [KEY, *cols, *audit] for config, cols in FORMATS.items()}
    in_training = {KEY, *audit, *format_columns}
    configs[LINEAGE] = [KEY, *(name for name in order if name not in in_training)]
    tables: dict[str, dict[str, Any]] = {}
    for config, columns in configs.items():
        table = pa.table({name: arrays[name] for name in columns})
        start, tables[config] = 0, {}
        for split, part in splits.items():
            tables[config][split] = table.slice(start, len(part))
            start += len(part)
    return Layout(tables=tables, dropped=dropped, json_text=json_text)


def write_layout(layout: Layout, folder: Path) -> None:
    """One Parquet file per config and split."""
    import pyarrow.parquet as pq

    for config, splits in layout.tables.items():
        for split, table in splits.items():
            path = folder / split_file(split, config)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path)
