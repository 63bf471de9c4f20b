"""File I/O every stage uses: Parquet or JSONL by extension, atomic writes, validation with clear errors.

Rows are plain dicts. Object-valued columns (`JSON_COLUMNS`) are stored as JSON text in Parquet and as objects in
JSONL; readers always hand back objects. Writes go to a temp file beside the target and are renamed into place, so a
crash never leaves a partial file under the final name.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import re
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


class OutputError(RuntimeError):
    """An output could not be written (full disk, read-only folder, a file where a folder should be): one located line.
    What was written before stays; nothing partial is left under the output's name."""

    def __init__(self, path: str | os.PathLike[str], exc: OSError | str) -> None:
        self.path = str(path)
        self.errno = exc.errno if isinstance(exc, OSError) else None
        reason = (f"[Errno {exc.errno}] {exc.strerror or os.strerror(exc.errno or 0)}" if isinstance(exc, OSError)
                  and exc.errno else str(exc))
        super().__init__(f"cannot write {self.path}: {reason}")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks: the one file hash (manifests, publish markers, data hashes)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def location(path: str | os.PathLike[str], loc: int) -> dict[str, int]:
    """Where a row of a table is, for an error message: its JSONL line (1-based) or Parquet row (0-based)."""
    return {"line": loc} if table_format(path) == "jsonl" else {"row": loc}


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
    return InputError(path, message, record_id=record_id, field=field, **location(path, loc))


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


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets under the user's umask (mkstemp alone would make it 0600)."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """The mode a new folder gets under the user's umask (mkdtemp alone would make it 0700)."""
    return 0o777 & ~_umask()


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


def remove_stale_temps(path: str | os.PathLike[str]) -> int:
    """Delete the temp files a killed writer of `path` left beside it (their process is gone). Returns how many."""
    path = Path(path)
    removed = 0
    if not path.parent.is_dir():
        return 0
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        match = _TEMP.match(candidate.name)
        if match is None or match["name"] != path.name or process_alive(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            if candidate.is_dir():
                import shutil

                shutil.rmtree(candidate)
            else:
                candidate.unlink()
            removed += 1
    return removed


def process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_writable(path: str | os.PathLike[str]) -> None:
    """Fail now, with one located line, if `path` cannot be written: its folder cannot be made, is a file, or is
    read-only. Called before any work, so hours are not spent on a result that cannot be kept."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(path, "is a folder, expected a file name")
    existing = next(p for p in (path.parent, *path.parent.parents) if p.exists())
    if not existing.is_dir():
        raise OutputError(path, OSError(errno.ENOTDIR, f"Not a directory ({existing} is a file)"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(path, exc) from None


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str], busy: Exception) -> Iterator[None]:
    """Hold an exclusive lock on `path` (made with its folder) for the block; raise `busy` at once when another
    process holds it. The lock dies with the process, even on SIGKILL. A lock file that cannot be made (read-only
    or full disk, a file where its folder should be) is one located `OutputError`."""
    import fcntl

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a")
    except OSError as exc:
        raise OutputError(path, exc) from None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file (also through a link)."""
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it into place only if the block succeeds. A write that fails for lack
    of room or rights raises `OutputError` naming `path`; the earlier file (if any) is untouched."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise OutputError(path, exc) from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, file_mode())
        os.replace(tmp_path, path)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG,
                         errno.ENOTDIR, errno.EISDIR):
            raise OutputError(path, exc) from None
        raise
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


def encode_json_columns(rows: Iterable[dict[str, Any]], columns: Iterable[str] | None = None,
                        keep_native: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """Rows with every key of `columns` (default: all keys of all rows, in first-seen order) and object values of
    `JSON_COLUMNS` as JSON text, ready for one Parquet schema; `keep_native` columns stay nested."""
    rows = list(rows)
    if columns is None:
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row))
        columns = list(seen)
    columns = list(columns)
    encoded = []
    for row in rows:
        out = {}
        for key in columns:
            value = row.get(key)
            if key in JSON_COLUMNS and key not in keep_native and value is not None and not isinstance(value, str):
                value = json.dumps(value, ensure_ascii=False, sort_keys=False, default=str)
            out[key] = value
        encoded.append(out)
    return encoded


def _write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    import io

    import polars as pl

    encoded = encode_json_columns(rows)
    if encoded:
        frame = pl.DataFrame(encoded, infer_schema_length=None)
    else:
        frame = pl.DataFrame()
    # polars turns a failed file write into a ComputeError ("underlying IO error", or "Invalid thrift: transport
    # error" when the footer is what failed) without an errno. It encodes into memory (the file is smaller than the
    # rows already held) and Python writes the bytes, so a full disk is an OSError that atomic_path names.
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    with open(path, "wb") as fh:
        fh.write(buffer.getbuffer())


def write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write a small JSON document (reports, manifests) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
