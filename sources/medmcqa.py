"""MedMCQA: the native release (`opa`..`opd`, `cop` 1-based) and the Hub copy openlifescienceai/medmcqa (`cop`
0-based; its test split has no answers, `cop = -1`: such rows are rejected with `no_gold_answer`, never given one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curate.records import LETTERS, Question
from sources.base import (
    FieldError,
    NoGoldAnswer,
    SourceResult,
    convert_rows,
    duplicated_options,
    hub_rows,
    local_hub_rows,
    read_native_json_or_jsonl,
    require,
    split_from_filename,
)

NAME = "medmcqa"
HUB_ID = "openlifescienceai/medmcqa"
DESCRIPTION = "MedMCQA: native json/jsonl (cop 1-based) or Hub openlifescienceai/medmcqa (cop 0-based)"
SPLITS = ("train", "dev", "test")
LICENSE = "apache-2.0"
#: How to cite the dataset (Pal et al. 2022).
CITATION = """@inproceedings{pal2022medmcqa,
  title = {MedMCQA: A Large-scale Multi-Subject Multi-Choice Dataset for Medical domain Question Answering},
  author = {Pal, Ankit and Umapathi, Logesh Kumar and Sankarasubbu, Malaikannan},
  booktitle = {Proceedings of the Conference on Health, Inference, and Learning},
  series = {Proceedings of Machine Learning Research},
  volume = {174},
  pages = {248--260},
  year = {2022},
  publisher = {PMLR}
}"""
OPTION_FIELDS = ("opa", "opb", "opc", "opd")
META_FIELDS = ("choice_type", "subject_name", "topic_name", "exp")


def to_question(row: dict[str, Any], index: int, *, split: str, cop_base: int) -> Question:
    """`cop_base` is 1 for native files, 0 for Hub rows: the two releases differ and mixing them shifts every answer."""
    native = row.get("id") or str(index)
    qid = f"{NAME}:{split}:{native}"
    options = {}
    for letter, name in zip(LETTERS, OPTION_FIELDS):
        text = require(row, name, qid)
        if not str(text).strip():
            raise FieldError(name, "option text is empty", qid)
        options[letter] = str(text)
    cop = require(row, "cop", qid)
    if isinstance(cop, str) and cop.strip().lstrip("-").isdigit():
        cop = int(cop)
    if not isinstance(cop, int) or isinstance(cop, bool):
        raise FieldError("cop", f"expected an integer option index, got {cop!r}", qid)
    if cop == -1:
        raise NoGoldAnswer(f"{qid}: cop = -1 (no gold answer in this split)")
    if not cop_base <= cop < cop_base + len(options):
        hint = ""
        if cop_base == 1 and cop == 0:
            hint = " (0 looks 0-based: the Hub copy is 0-based; load it with --hub-format)"
        elif cop_base == 0 and cop == len(options):
            hint = " (looks 1-based: native MedMCQA files are 1-based; load them without --hub-format)"
        raise FieldError("cop", f"expected {cop_base}..{cop_base + len(options) - 1} ({cop_base}-based), got {cop}{hint}", qid)
    meta = {name: row.get(name) for name in META_FIELDS}
    meta["native_id"] = native
    meta["multi_answer"] = row.get("choice_type") == "multi"
    meta["duplicated_options"] = duplicated_options(options)
    return Question(id=qid, source=NAME, split=split, question=require(row, "question", qid), options=options,
                    answer=LETTERS[cop - cop_base], meta=meta)


def load(path: str | Path | None = None, *, split: str | None = None, limit: int | None = None,
         config: str | None = None, hub_format: bool = False, skip_invalid: bool = False) -> SourceResult:
    if path is None or hub_format:
        hub_split = {"dev": "validation"}.get(split or "validation", split or "validation")
        our_split = {"validation": "dev"}.get(hub_split, hub_split)
        rows = local_hub_rows(Path(path)) if path else hub_rows(HUB_ID, config, hub_split)
        return convert_rows(rows, lambda r, i: to_question(r, i, split=our_split, cop_base=0),
                            path=str(path or f"hf://{HUB_ID}"), limit=limit, skip_invalid=skip_invalid, loc_kind="row")
    path = Path(path)
    split = split or split_from_filename(path)
    return convert_rows(read_native_json_or_jsonl(path), lambda r, i: to_question(r, i, split=split, cop_base=1),
                        path=path, limit=limit, skip_invalid=skip_invalid)
