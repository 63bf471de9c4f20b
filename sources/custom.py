"""A team's own questions: any local JSONL, CSV or Parquet file, with a column mapping given on the command line.

Mapping keys (`--map KEY=COLUMN`): `question` (required), `answer` (required), `id`, `context`, `split`, `options`
(one column holding a {letter: text} object or a list of texts), or one column per option letter (`A=col_a`,
`B=col_b`, ...). Any other key becomes a `meta` entry. `answer_format` says how the answer column is written:
`letter` (A, B, ...), `index0`, `index1` or `text` (the option text itself).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curate.io import InputError, iter_jsonl
from curate.records import LETTERS, Question
from sources.base import FieldError, SourceResult, convert_rows, require

NAME = "custom"
HUB_ID = None
DESCRIPTION = "Your own questions: local JSONL/CSV/Parquet with --map question=COL --map answer=COL ..."
SPLITS = ()
LICENSE = "other"
ANSWER_FORMATS = ("letter", "index0", "index1", "text")
CORE_KEYS = {"question", "answer", "id", "context", "split", "options"}


def parse_mapping(pairs: list[str] | dict[str, str] | None) -> dict[str, str]:
    """`["question=stem", "A=opt1"]` -> {"question": "stem", "A": "opt1"}."""
    if isinstance(pairs, dict):
        return dict(pairs)
    mapping: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, column = pair.partition("=")
        if not sep or not key.strip() or not column.strip():
            raise InputError("--map", f"expected KEY=COLUMN, got {pair!r}")
        mapping[key.strip()] = column.strip()
    return mapping


def _options(row: dict[str, Any], mapping: dict[str, str], qid: str) -> dict[str, str]:
    letter_keys = [k for k in mapping if len(k) == 1 and k in LETTERS]
    if "options" in mapping:
        raw = require(row, mapping["options"], qid)
        if isinstance(raw, str):
            import json

            try:
                raw = json.loads(raw)
            except json.JSONDecodeError:
                raise FieldError(mapping["options"], "expected a JSON object or list of option texts", qid) from None
        if isinstance(raw, list):
            raw = dict(zip(LETTERS, raw))
        if not isinstance(raw, dict):
            raise FieldError(mapping["options"], "expected a {letter: text} object or a list of texts", qid)
        options = {str(k).strip().upper(): v for k, v in raw.items() if v is not None}
    elif letter_keys:
        options = {k: row.get(mapping[k]) for k in sorted(letter_keys) if row.get(mapping[k]) is not None}
    else:
        raise FieldError("options", "no option columns mapped: use --map options=COL or --map A=COL --map B=COL ...")
    if not options:
        raise FieldError(mapping.get("options", "options"), "no options", qid)
    return {k: str(v) for k, v in options.items()}


def _answer(raw: Any, options: dict[str, str], answer_format: str, column: str, qid: str) -> str:
    if answer_format == "letter":
        letter = str(raw).strip().upper().strip("().")
    elif answer_format in ("index0", "index1"):
        try:
            index = int(raw) - (1 if answer_format == "index1" else 0)
        except (TypeError, ValueError):
            raise FieldError(column, f"expected an integer index, got {raw!r}", qid) from None
        if not 0 <= index < len(options):
            raise FieldError(column, f"index {raw!r} is outside the {len(options)} options ({answer_format})", qid)
        letter = LETTERS[index]
    else:
        matches = [k for k, v in options.items() if " ".join(v.lower().split()) == " ".join(str(raw).lower().split())]
        if len(matches) != 1:
            raise FieldError(column, f"answer text {raw!r} matches {len(matches)} options (expected exactly one)", qid)
        letter = matches[0]
    if letter not in options:
        raise FieldError(column, f"answer letter {letter!r} is not among the options {sorted(options)}", qid)
    return letter


def to_question(row: dict[str, Any], index: int, *, mapping: dict[str, str], split: str, name: str,
                answer_format: str) -> Question:
    native = str(row[mapping["id"]]) if "id" in mapping and row.get(mapping["id"]) is not None else str(index)
    row_split = str(row[mapping["split"]]) if "split" in mapping and row.get(mapping["split"]) else split
    qid = f"{name}:{row_split}:{native}"
    options = _options(row, mapping, qid)
    answer = _answer(require(row, mapping["answer"], qid), options, answer_format, mapping["answer"], qid)
    context = row.get(mapping["context"]) if "context" in mapping else None
    meta = {k: row.get(col) for k, col in mapping.items() if k not in CORE_KEYS and not (len(k) == 1 and k in LETTERS)}
    return Question(id=qid, source=name, split=row_split, question=str(require(row, mapping["question"], qid)),
                    context=context, options=options, answer=answer, meta=meta)


def read_table_rows(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        yield from iter_jsonl(path)
        return
    import polars as pl

    try:
        frame = pl.read_csv(path, infer_schema=False) if suffix == ".csv" else pl.read_parquet(path)
    except Exception as exc:
        raise InputError(path, f"could not read table: {exc}") from None
    # CSV: header is line 1, so row i sits on line i + 2.
    offset = 2 if suffix == ".csv" else 0
    for index, row in enumerate(frame.iter_rows(named=True)):
        yield index + offset, row


def load(path: str | Path | None = None, *, split: str | None = None, limit: int | None = None,
         config: str | None = None, hub_format: bool = False, skip_invalid: bool = False,
         mapping: list[str] | dict[str, str] | None = None, answer_format: str = "letter",
         source_name: str = NAME) -> SourceResult:
    if path is None:
        raise InputError("--path", "the custom source needs --path FILE (JSONL, CSV or Parquet)")
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if path.suffix.lower() not in (".jsonl", ".json", ".csv", ".parquet"):
        raise InputError(path, "expected a .jsonl, .csv or .parquet file")
    mapping = parse_mapping(mapping)
    for key in ("question", "answer"):
        if key not in mapping:
            raise InputError("--map", f"missing mapping for {key!r} (e.g. --map {key}=COLUMN)")
    if answer_format not in ANSWER_FORMATS:
        raise InputError("--answer-format", f"expected one of {', '.join(ANSWER_FORMATS)}, got {answer_format!r}")
    loc_kind = "line" if path.suffix.lower() in (".jsonl", ".json", ".csv") else "row"
    return convert_rows(read_table_rows(path),
                        lambda r, i: to_question(r, i, mapping=mapping, split=split or "train", name=source_name,
                                                 answer_format=answer_format),
                        path=path, limit=limit, skip_invalid=skip_invalid, loc_kind=loc_kind)
