"""File I/O every stage uses: Parquet or JSONL by extension, atomic writes, validation with clear errors.

Rows are plain dicts. Object-valued columns (`JSON_COLUMNS`) are stored as JSON text in Parquet and as objects in
JSONL; readers always hand back objects. Writes go to a temp file beside the target and are renamed into place, so a
crash never leaves a partial file under the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from curate.records import JSON_COLUMNS

M = TypeVar("M", bound=BaseModel)

TABLE_SUFFIXES = (".parquet", ".jsonl", ".json")


class InputError(ValueError):
    """Bad input, located: file, line (1-based, JSONL) or row (0-based, Parquet), record id and field."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        message: str,
        *,
        line: int | None = None,
        row: int | None = None,
        record_id: str | None = None,
        field: str | None = None,
    ) -> None:
        self.path, self.line, self.row, self.record_id, self.field = str(path), line, row, record_id, field
        self.message = message
        where = self.path
        if line is not None:
            where += f":{line}"
        elif row is not None:
            where += f" row {row}"
        if record_id is not None:
            where += f" (id={record_id})"
        if field is not None:
            where += f" field {field!r}"
        super().__init__(f"{where}: {message}")


@dataclass
class Rejected:
    """A row that did not make it through a stage, with its reason codes and a human-readable detail."""

    row: dict[str, Any]
    reasons: list[str]
    detail: str = ""

    def as_row(self, stage: str) -> dict[str, Any]:
        return {**self.row, "rejected_by": stage, "reasons": self.reasons, "detail": self.detail}


def table_format(path: str | os.PathLike[str]) -> str:
    name = str(path).lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".jsonl") or name.endswith(".json"):
        return "jsonl"
    raise InputError(path, f"unknown table format: expected one of {', '.join(TABLE_SUFFIXES)}")


# ---------------------------------------------------------------- reading


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a clear error on bad bytes, bad JSON or a non-object line."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(path, f"not valid UTF-8 (byte {exc.start}): {exc.reason}", line=number) from None
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(path, f"invalid JSON ({exc.msg} at column {exc.colno})", line=number) from None
            if not isinstance(obj, dict):
                raise InputError(path, f"expected a JSON object, got {type(obj).__name__}", line=number)
            yield number, obj


def _decode_json_columns(row: dict[str, Any], path: Path, index: int) -> dict[str, Any]:
    for key in JSON_COLUMNS.intersection(row):
        value = row[key]
        if isinstance(value, str):
            try:
                row[key] = json.loads(value)
            except json.JSONDecodeError:
                raise InputError(path, "expected JSON text", row=index, field=key) from None
    return row


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All rows of a Parquet or JSONL table as dicts (object columns decoded)."""
    return [row for _, row in iter_rows(path)]


def iter_rows(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(location, row): JSONL line number (1-based) or Parquet row index (0-based)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    fmt = table_format(path)
    if fmt == "jsonl":
        yield from iter_jsonl(path)
        return
    import polars as pl

    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for corrupt files
        raise InputError(path, f"not a readable Parquet file: {exc}") from None
    for index, row in enumerate(frame.iter_rows(named=True)):
        yield index, _decode_json_columns(row, path, index)


def _location(path: Path, loc: int) -> dict[str, int]:
    return {"line": loc} if table_format(path) == "jsonl" else {"row": loc}


def validation_error(path: str | os.PathLike[str], loc: int, row: dict[str, Any], exc: ValidationError) -> InputError:
    """Turn pydantic's error into one located message (first problem; the count of others)."""
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    message = first["msg"]
    if first["type"] == "missing":
        message = "required field is missing"
    elif "input" in first and first["type"] != "value_error":
        message += f" (got {first['input']!r})"[:200]
    more = len(exc.errors()) - 1
    if more:
        message += f" (+{more} more problem{'s' if more > 1 else ''})"
    record_id = (row.get("id") or row.get("trace_id")) if isinstance(row, dict) else None
    return InputError(path, message, record_id=record_id, field=field, **_location(Path(path), loc))


def read_records(
    path: str | os.PathLike[str], model: type[M], *, skip_invalid: bool = False
) -> tuple[list[M], list[Rejected]]:
    """Read and validate a table. Invalid rows raise `InputError`, or become `Rejected` with `skip_invalid`."""
    records: list[M] = []
    rejected: list[Rejected] = []
    for loc, row in iter_rows(path):
        try:
            records.append(model.model_validate(row))
        except ValidationError as exc:
            error = validation_error(path, loc, row, exc)
            if not skip_invalid:
                raise error from None
            rejected.append(Rejected(row=row, reasons=["invalid_input"], detail=str(error)))
    return records, rejected


# ---------------------------------------------------------------- writing


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _as_row(item: dict[str, Any] | BaseModel) -> dict[str, Any]:
    return item.model_dump(mode="json") if isinstance(item, BaseModel) else item


def write_rows(rows: Iterable[dict[str, Any] | BaseModel], path: str | os.PathLike[str]) -> int:
    """Write rows atomically as Parquet or JSONL (by extension). Returns the row count."""
    fmt = table_format(path)
    materialised = [_as_row(r) for r in rows]
    with atomic_path(path) as tmp:
        if fmt == "jsonl":
            with open(tmp, "w", encoding="utf-8") as fh:
                for row in materialised:
                    fh.write(json.dumps(row, ensure_ascii=False, default=str))
                    fh.write("\n")
        else:
            _write_parquet(materialised, tmp)
    return len(materialised)


def _write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    import polars as pl

    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    encoded = []
    for row in rows:
        out = {}
        for key in columns:
            value = row.get(key)
            if key in JSON_COLUMNS and value is not None and not isinstance(value, str):
                value = json.dumps(value, ensure_ascii=False, sort_keys=False, default=str)
            out[key] = value
        encoded.append(out)
    if encoded:
        frame = pl.DataFrame(encoded, infer_schema_length=None)
    else:
        frame = pl.DataFrame({key: [] for key in columns})
    frame.write_parquet(path)


def write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write a small JSON document (reports, manifests) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
