"""PubMedQA: the expert-labelled `ori_pqal.json` (with `test_ground_truth.json` beside it defining the official
500-question test split; the rest is train) and the Hub copy qiaojin/PubMedQA (pqa_labeled / pqa_artificial /
pqa_unlabeled). Options are A yes / B no / C maybe; ids end with the PMID."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curate.io import InputError
from curate.records import PUBMEDQA_OPTIONS, Question
from sources.base import (
    FieldError,
    NoGoldAnswer,
    SourceResult,
    convert_rows,
    hub_rows,
    load_json_file,
    local_hub_rows,
    require,
)

NAME = "pubmedqa"
HUB_ID = "qiaojin/PubMedQA"
DESCRIPTION = "PubMedQA: ori_pqal.json (+ test_ground_truth.json) or Hub qiaojin/PubMedQA pqa_labeled/artificial/unlabeled"
SPLITS = ("train", "test")
HUB_CONFIGS = ("pqa_labeled", "pqa_artificial", "pqa_unlabeled")
LICENSE = "mit"
#: How to cite the dataset (Jin et al. 2019).
CITATION = """@inproceedings{jin2019pubmedqa,
  title = {PubMedQA: A Dataset for Biomedical Research Question Answering},
  author = {Jin, Qiao and Dhingra, Bhuwan and Liu, Zhengping and Cohen, William and Lu, Xinghua},
  booktitle = {Proceedings of the 2019 Conference on Empirical Methods in Natural Language Processing and the 9th
               International Joint Conference on Natural Language Processing (EMNLP-IJCNLP)},
  pages = {2567--2577},
  year = {2019},
  publisher = {Association for Computational Linguistics},
  doi = {10.18653/v1/D19-1259}
}"""
GROUND_TRUTH = "test_ground_truth.json"
NATIVE_FILE = "ori_pqal.json"
LETTER_OF = {text: letter for letter, text in PUBMEDQA_OPTIONS.items()}


def join_contexts(contexts: list[str], labels: list[str] | None) -> str:
    labels = labels or []
    parts = []
    for i, text in enumerate(contexts):
        label = labels[i] if i < len(labels) and labels[i] else None
        parts.append(f"{label}: {text}" if label else text)
    return "\n".join(parts)


def _gold_letter(decision: Any, qid: str, field: str) -> str:
    if decision is None:
        raise NoGoldAnswer(f"{qid}: no final_decision")
    letter = LETTER_OF.get(str(decision).strip().lower())
    if letter is None:
        raise FieldError(field, f"expected yes/no/maybe, got {decision!r}", qid)
    return letter


def native_to_question(pmid: str, row: dict[str, Any], split: str) -> Question:
    qid = f"{NAME}:{split}:{pmid}"
    contexts = require(row, "CONTEXTS", qid)
    if not isinstance(contexts, list):
        raise FieldError("CONTEXTS", "expected a list of abstract passages", qid)
    meta = {"pmid": pmid, "year": row.get("YEAR"), "meshes": row.get("MESHES"), "long_answer": row.get("LONG_ANSWER"),
            "reasoning_required_pred": row.get("reasoning_required_pred")}
    return Question(id=qid, source=NAME, split=split, question=require(row, "QUESTION", qid),
                    context=join_contexts(contexts, row.get("LABELS")), options=dict(PUBMEDQA_OPTIONS),
                    answer=_gold_letter(row.get("final_decision"), qid, "final_decision"), meta=meta)


def hub_to_question(row: dict[str, Any], split: str) -> Question:
    pmid = str(require(row, "pubid"))
    qid = f"{NAME}:{split}:{pmid}"
    context = require(row, "context", qid)
    meta = {"pmid": pmid, "meshes": context.get("meshes"), "long_answer": row.get("long_answer")}
    return Question(id=qid, source=NAME, split=split, question=require(row, "question", qid),
                    context=join_contexts(list(context.get("contexts") or []), context.get("labels")),
                    options=dict(PUBMEDQA_OPTIONS), answer=_gold_letter(row.get("final_decision"), qid, "final_decision"),
                    meta=meta)


def resolve_native(path: Path) -> tuple[Path, Path | None]:
    """`--path` may name ori_pqal.json or its folder; test_ground_truth.json is looked for beside it."""
    data = path / NATIVE_FILE if path.is_dir() else path
    if not data.exists():
        raise InputError(data, "file not found (expected PubMedQA's ori_pqal.json or its folder)")
    truth = data.parent / GROUND_TRUTH
    return data, truth if truth.exists() else None


def load(path: str | Path | None = None, *, split: str | None = None, limit: int | None = None,
         config: str | None = None, hub_format: bool = False, skip_invalid: bool = False) -> SourceResult:
    if path is None or hub_format:
        config = config or "pqa_labeled"
        if config not in HUB_CONFIGS:
            raise InputError(f"hf://{HUB_ID}", f"unknown config {config!r}; expected one of {', '.join(HUB_CONFIGS)}")
        rows = local_hub_rows(Path(path)) if path else hub_rows(HUB_ID, config, "train")
        # The Hub has one "train" split per config; pqa_labeled contains the 500 official test PMIDs, so rows keep
        # the config name as their split and must be decontaminated against the test set.
        return convert_rows(rows, lambda r, i: hub_to_question(r, config), path=str(path or f"hf://{HUB_ID}"),
                            limit=limit, skip_invalid=skip_invalid, loc_kind="row")
    data_path, truth_path = resolve_native(Path(path))
    data = load_json_file(data_path)
    if not isinstance(data, dict):
        raise InputError(data_path, "expected a JSON object keyed by PMID")
    truth: dict[str, str] = load_json_file(truth_path) if truth_path else {}
    if split == "test" and not truth:
        raise InputError(data_path.parent / GROUND_TRUTH, "file not found: it defines the official test split")
    if split not in (None, "train", "test"):
        raise InputError(data_path, f"unknown split {split!r}; expected train or test")

    def located() -> Any:
        for index, (pmid, row) in enumerate(data.items()):
            row_split = "test" if pmid in truth else "train"
            if split is None or split == row_split:
                yield index, (pmid, row, row_split)

    def convert(item: Any, _: int) -> Question:
        pmid, row, row_split = item
        if not isinstance(row, dict):
            raise FieldError(pmid, "expected an object per PMID")
        question = native_to_question(pmid, row, row_split)
        if pmid in truth and LETTER_OF.get(truth[pmid]) != question.answer:
            raise FieldError("final_decision", f"{row.get('final_decision')!r} disagrees with {GROUND_TRUTH} "
                             f"({truth[pmid]!r})", question.id)
        return question

    return convert_rows(located(), convert, path=data_path, limit=limit, skip_invalid=skip_invalid, loc_kind="row")
