"""MedQA-USMLE: jind11's jsonl release (4- and 5-option variants) and the Hub copy GBaker/MedQA-USMLE-4-options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curate.records import Question
from sources.base import (
    FieldError,
    SourceResult,
    convert_rows,
    hub_rows,
    local_hub_rows,
    read_native_json_or_jsonl,
    require,
    split_from_filename,
)

NAME = "medqa"
HUB_ID = "GBaker/MedQA-USMLE-4-options"
DESCRIPTION = "MedQA-USMLE: jind11 jsonl (4 or 5 options) or Hub GBaker/MedQA-USMLE-4-options"
SPLITS = ("train", "dev", "test")
LICENSE = "mit"
#: How to cite the dataset (Jin et al. 2021).
CITATION = """@article{jin2021disease,
  title = {What Disease Does This Patient Have? A Large-Scale Open Domain Question Answering Dataset from Medical Exams},
  author = {Jin, Di and Pan, Eileen and Oufattole, Nassim and Weng, Wei-Hung and Fang, Hanyi and Szolovits, Peter},
  journal = {Applied Sciences},
  volume = {11},
  number = {14},
  pages = {6421},
  year = {2021},
  publisher = {MDPI},
  doi = {10.3390/app11146421}
}"""


def to_question(row: dict[str, Any], index: int, *, split: str) -> Question:
    """One jind11-format row (the Hub copy uses the same fields). Ids use `realidx` when present, else the row
    index; the 5-option variant gets its own ids so both variants can live in one corpus."""
    options = require(row, "options")
    if not isinstance(options, dict) or not options:
        raise FieldError("options", "expected a non-empty {letter: text} object")
    options = {str(k): v for k, v in options.items() if v is not None}
    native = row.get("realidx", index)
    qid = f"{NAME}:{split}:{'5opt-' if len(options) == 5 else ''}{native}"
    answer = require(row, "answer_idx", qid)
    if answer not in options:
        raise FieldError("answer_idx", f"answer letter {answer!r} is not among the options {sorted(options)}", qid)
    answer_text = row.get("answer")
    if answer_text is not None and " ".join(str(answer_text).split()) != " ".join(str(options[answer]).split()):
        raise FieldError("answer", f"answer text {answer_text!r} differs from option {answer} ({options[answer]!r})", qid)
    meta = {"exam_step": row.get("meta_info"), "n_options": len(options), "native_index": native}
    return Question(id=qid, source=NAME, split=split, question=require(row, "question", qid), options=options,
                    answer=answer, meta=meta)


def load(path: str | Path | None = None, *, split: str | None = None, limit: int | None = None,
         config: str | None = None, hub_format: bool = False, skip_invalid: bool = False) -> SourceResult:
    if path is None or hub_format:
        split = split or "test"
        rows = local_hub_rows(Path(path)) if path else hub_rows(HUB_ID, config, split)
        return convert_rows(rows, lambda r, i: to_question(r, i, split=split), path=str(path or f"hf://{HUB_ID}"),
                            limit=limit, skip_invalid=skip_invalid, loc_kind="row")
    path = Path(path)
    split = split or split_from_filename(path)
    return convert_rows(read_native_json_or_jsonl(path), lambda r, i: to_question(r, i, split=split), path=path,
                        limit=limit, skip_invalid=skip_invalid)
