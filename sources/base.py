"""What every source loader shares: the result type, native-file reading, Hub loading, row validation."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from curate.io import InputError, Rejected, iter_jsonl, validation_error
from curate.records import Question

#: A converter turns one raw row into a Question (or raises `InputError` / `ValueError`), or returns a `Rejected`
#: for rows that are well-formed but unusable (no gold answer).
Converter = Callable[[dict[str, Any], int], "Question | Rejected"]


@dataclass
class SourceResult:
    questions: list[Question] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


class FieldError(ValueError):
    """Raised by converters: what is wrong with which field of the row; `convert_rows` adds file and line."""

    def __init__(self, field: str, message: str, record_id: str | None = None) -> None:
        super().__init__(message)
        self.field, self.message, self.record_id = field, message, record_id


class NoGoldAnswer(Exception):
    """A well-formed row without a gold answer (MedMCQA test, PubMedQA unlabeled): rejected, never given one."""


def read_native_json_or_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """JSONL (one object a line), or one JSON array of objects: (line number or array index, row)."""
    with open(path, "rb") as fh:
        head = fh.read(64).lstrip()
    if head.startswith(b"["):
        data = load_json_file(path)
        if not all(isinstance(item, dict) for item in data):
            raise InputError(path, "expected a JSON array of objects")
        yield from enumerate(data)
    else:
        yield from iter_jsonl(path)


def load_json_file(path: Path) -> Any:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not valid UTF-8 (byte {exc.start}): {exc.reason}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"invalid JSON ({exc.msg})", line=exc.lineno) from None


def hub_rows(hub_id: str, config: str | None, split: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a Hub dataset through `datasets` (the one place curate reaches the Hub for sources)."""
    import datasets

    try:
        ds = datasets.load_dataset(hub_id, config, split=split)
    except Exception as exc:
        raise InputError(f"hf://{hub_id}", f"could not load config={config!r} split={split!r}: {exc}. Without the "
                         f"Hub, give the source a local file (`path = FILE` in the run config, `--path FILE` for "
                         f"`curate sources pull`; a Hub export also needs `hub_format = true`)") from None
    yield from enumerate(ds)


def local_hub_rows(path: Path, split: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a local copy of a Hub dataset (Parquet or JSON files as `datasets` exports them).

    Lets a team pull the Hub copy once on a networked machine (`ds.to_parquet(...)`) and load it offline.
    """
    import datasets

    files = sorted(str(p) for p in (path.glob("*") if path.is_dir() else [path]) if p.suffix in {".parquet", ".jsonl", ".json"})
    if not files:
        raise InputError(path, "no .parquet/.jsonl/.json files found")
    builder = "parquet" if files[0].endswith(".parquet") else "json"
    try:
        ds = datasets.load_dataset(builder, data_files=files, split="train")
    except Exception as exc:
        raise InputError(path, f"could not read Hub-format rows: {exc}") from None
    yield from enumerate(ds)


def convert_rows(
    rows: Iterable[tuple[int, dict[str, Any]]],
    convert: Callable[[dict[str, Any], int], Question],
    *,
    path: str | os.PathLike[str],
    limit: int | None = None,
    skip_invalid: bool = False,
    loc_kind: str = "line",
) -> SourceResult:
    """Run a converter over located rows. Bad rows raise a located `InputError` unless `skip_invalid`."""
    result = SourceResult()
    for position, (loc, row) in enumerate(rows):
        if limit is not None and len(result.questions) >= limit:
            break
        try:
            result.questions.append(convert(row, position))
        except NoGoldAnswer as exc:
            result.rejected.append(Rejected(row=_jsonable(row), reasons=["no_gold_answer"], detail=str(exc)))
        except (InputError, ValidationError, ValueError, KeyError, TypeError) as exc:
            error = locate(exc, path, loc, row, loc_kind)
            if not skip_invalid:
                raise error from None
            result.rejected.append(Rejected(row=_jsonable(row), reasons=["invalid_input"], detail=str(error)))
    return result


def locate(
    exc: Exception, path: str | os.PathLike[str], loc: int, row: dict[str, Any], loc_kind: str = "line"
) -> InputError:
    """A located InputError for any conversion failure (`loc_kind`: JSONL `line` or array/Hub `row`)."""
    if isinstance(exc, InputError):
        return exc
    where = {loc_kind: loc}
    if isinstance(exc, FieldError):
        return InputError(path, exc.message, field=exc.field, record_id=exc.record_id, **where)
    if isinstance(exc, ValidationError):
        error = validation_error(path, 0, row, exc)
        return InputError(path, error.message, record_id=error.record_id, field=error.field, **where)
    if isinstance(exc, KeyError):
        return InputError(path, "required field is missing", field=str(exc.args[0]), **where)
    return InputError(path, str(exc), **where)


def _jsonable(row: Any) -> dict[str, Any]:
    value = json.loads(json.dumps(row, default=str))
    return value if isinstance(value, dict) else {"raw": value}


def require(row: dict[str, Any], name: str, record_id: str | None = None) -> Any:
    """A field that must be present and non-null."""
    if name not in row or row[name] is None:
        raise FieldError(name, "required field is missing", record_id)
    return row[name]


def split_from_filename(path: Path) -> str:
    """`test.4_options.jsonl` -> test, `dev.jsonl` -> dev; `validation` is kept as Hub names it."""
    return path.name.split(".")[0]


def duplicated_options(options: dict[str, str]) -> bool:
    texts = [" ".join(str(t).lower().split()) for t in options.values()]
    return len(set(texts)) < len(texts)
