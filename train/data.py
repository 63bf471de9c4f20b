"""Training data from curated traces: SFT prompt/completion pairs and GRPO prompts, both from one student prompt.

The student sees the question rendered by `render(question) -> messages`, the same template family the teacher was
prompted with, and learns the canonical completion `<think>..</think>\\n<answer>X</answer>`. `render` is a
parameter so the caller can pass the project's prompt templates; `default_render` is a minimal local template.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from curate.io import TABLE_SUFFIXES, InputError, iter_rows, location, read_records, validation_error
from curate.records import Question, canonical_text

Messages = list[dict[str, str]]
Render = Callable[[Question], Messages]

def default_render(question: Question) -> Messages:
    """The student prompt: the same template family the teacher answered (`prompts.student_messages`), so SFT pairs
    and GRPO prompts match what the corpus was generated from."""
    from prompts import student_messages

    return student_messages(question)


@dataclass
class TrainingData:
    """What the trainers consume: SFT pairs, GRPO prompts (with gold answers and pass rates) and the questions."""

    sft: list[dict[str, Any]]
    grpo: list[dict[str, Any]]
    questions: dict[str, Question]
    skipped: dict[str, int] = field(default_factory=dict)
    #: what a user should know about the data (an evaluation set trained on): run.json `warnings` entries
    warnings: list[dict[str, Any]] = field(default_factory=list)


# ------------------------------------------------------------------ where the rows are


def data_files(data: str | os.PathLike[str]) -> list[Path]:
    """The table files `--data` names: one file; a glob pattern (quoted, `runs/demo/publish/data/train-*.parquet`);
    or a folder: a published dataset (`curate publish`'s folder: its default config, `data/*.parquet`, every
    split) or a folder of table files."""
    path = Path(data)
    if glob.has_magic(str(data)) and not path.exists():
        files = sorted(Path(p) for p in glob.glob(str(data)) if Path(p).is_file())
        if not files:
            raise InputError(data, "no file matches this pattern")
        return files
    if path.is_dir():
        from curate.publish.layout import DEFAULT, FOLDERS

        published = path / FOLDERS[DEFAULT]
        folder = published if published.is_dir() else path
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(TABLE_SUFFIXES))
        if not files:
            raise InputError(path, f"no table files ({', '.join(TABLE_SUFFIXES)}) in this folder"
                             + (f" nor in {FOLDERS[DEFAULT]}/ (a published dataset's default config)"
                                if folder is path else ""))
        return files
    return [path]


def iter_data_rows(data: str | os.PathLike[str]) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    """(file, location, row) over every file `--data` names, in order."""
    for file in data_files(data):
        for loc, row in iter_rows(file):
            yield file, loc, row


def data_sha256(data: str | os.PathLike[str]) -> str:
    """The content hash of the training data: one file's sha256; for several, a hash over each file's."""
    from curate.io import file_sha256

    files = data_files(data)
    if len(files) == 1:
        return file_sha256(files[0])
    return hashlib.sha256("".join(f"{f.name}\0{file_sha256(f)}\n" for f in files).encode()).hexdigest()


def dataset_card(data: str | os.PathLike[str]) -> Path | None:
    """The dataset card (README.md) of the published folder the data comes from, if it is one."""
    from curate.publish.layout import FOLDERS

    path = Path(data)
    if path.is_dir():
        card = path / "README.md"
        return card if card.is_file() else None
    for file in data_files(data):
        if file.parent.name in FOLDERS.values() and (file.parent.parent / "README.md").is_file():
            return file.parent.parent / "README.md"
    return None


def evaluation_set_warning(data: str | os.PathLike[str], rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A warning when the data's card says it is an evaluation set (`curate publish --evaluation-set` tags it): its
    rows are benchmark evaluation items, counted per benchmark split the way the publish gate finds them by id."""
    from curate.publish.card import is_evaluation_set
    from curate.publish.gate import KNOWN_EVALUATION_SPLITS
    from train.health import warning

    card = dataset_card(data)
    if card is None or not is_evaluation_set(card):
        return None
    splits = Counter(":".join(str(r.get("question_id") or "").split(":")[:2]) for r in rows)
    known = {s: n for s, n in sorted(splits.items()) if s in KNOWN_EVALUATION_SPLITS}
    counts = ", ".join(f"{s} {n}" for s, n in known.items())
    message = (f"{card} says this dataset is an evaluation set (benchmark evaluation items, not training data): "
               f"{sum(known.values())} of {len(rows)} rows are items of {counts or 'an evaluation benchmark'}; a "
               "model trained on them must not be evaluated on those benchmarks")
    return warning("evaluation_set", 0, sum(known.values()) or len(rows), stage="data", threshold=0, message=message)


def completion_of(row: dict[str, Any]) -> str | None:
    """The canonical training text of a filtered row: its `text`, else rebuilt from `reasoning` and `answer`."""
    if row.get("text"):
        return row["text"]
    if row.get("reasoning") and row.get("answer"):
        return canonical_text(row["reasoning"], row["answer"])
    return None


def build_examples(rows: Iterable[dict[str, Any]], questions: dict[str, Question],
                   render: Render = default_render) -> list[dict[str, Any]]:
    """SFT pairs from kept rows: prompt = render(question), completion = the canonical text. Rows not kept are
    skipped; a kept row whose question is unknown or whose text is missing is an error naming its trace id."""
    examples = []
    for row in rows:
        if not row.get("kept", True):
            continue
        question = questions.get(row.get("question_id"))
        if question is None:
            raise ValueError(f"trace {row.get('trace_id')}: question_id {row.get('question_id')!r} is not among the "
                             f"{len(questions)} questions given")
        text = completion_of(row)
        if text is None:
            raise ValueError(f"trace {row.get('trace_id')}: no canonical text (fields 'text', or 'reasoning' and "
                             "'answer', are empty)")
        examples.append({"prompt": render(question), "completion": [{"role": "assistant", "content": text}],
                         "question_id": question.id, "trace_id": row.get("trace_id")})
    return examples


def pass_rates(rows: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Teacher pass rate per question: the filter's `pass_rate` column, else the share of `correct` rows."""
    given: dict[str, float] = {}
    correct: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        qid = row.get("question_id")
        if row.get("pass_rate") is not None:
            given[qid] = float(row["pass_rate"])
        if row.get("correct") is not None:
            correct[qid].append(bool(row["correct"]))
    rates = {qid: sum(flags) / len(flags) for qid, flags in correct.items()}
    rates.update(given)
    return rates


def build_prompts(questions: Iterable[Question], rates: dict[str, float], render: Render = default_render, *,
                  band: tuple[float, float] | None = (0.0, 1.0)) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """GRPO prompts with gold answers. With `band=(low, high)` only questions whose pass rate lies strictly inside
    it are kept: a question every sample gets right (or wrong) gives GRPO equal rewards in a group, so no update."""
    prompts, skipped = [], defaultdict(int)
    for question in questions:
        rate = rates.get(question.id)
        if band is not None:
            if rate is None:
                skipped["no_pass_rate"] += 1
                continue
            if not band[0] < rate < band[1]:
                skipped["outside_difficulty_band"] += 1
                continue
        prompts.append({"prompt": render(question), "answer": question.answer, "question_id": question.id,
                        "pass_rate": rate})
    return prompts, dict(skipped)


def load_questions(path: str | os.PathLike[str]) -> dict[str, Question]:
    records, _ = read_records(path, Question)
    return {q.id: q for q in records}


def _questions_from_rows(rows: list[tuple[Path, int, dict[str, Any]]]) -> dict[str, Question]:
    """Rows that carry their question's fields (question, options, answer gold) stand in for a questions file."""
    out: dict[str, Question] = {}
    for path, loc, row in rows:
        qid = row.get("question_id")
        if qid in out:
            continue
        gold = row.get("gold") or row.get("gold_answer")
        if not (row.get("question") and row.get("options") and gold):
            raise InputError(path, "no questions file given and this row does not carry its question "
                             "(fields question, options, gold): pass --questions", **location(path, loc),
                             record_id=row.get("trace_id"))
        fields = dict(id=qid, source=row.get("source") or qid.split(":")[0], split=row.get("split") or "train",
                      question=row["question"], context=row.get("context"), options=row["options"], answer=gold)
        try:
            out[qid] = Question(**fields)
        except ValidationError as exc:
            raise validation_error(path, loc, row, exc) from None
    return out


def load_training_data(data: str | os.PathLike[str], questions: str | os.PathLike[str] | None = None, *,
                       render: Render = default_render, band: tuple[float, float] | None = (0.0, 1.0),
                       exclude: set[str] | None = None) -> TrainingData:
    """Read filtered traces (a file, a glob, a published folder: `data_files`) and their questions into SFT pairs
    and GRPO prompts; clear errors, located."""
    located = list(iter_data_rows(data))
    for path, loc, row in located:
        for key in ("trace_id", "question_id"):
            if not row.get(key):
                raise InputError(path, "required field is missing", **location(path, loc), field=key,
                                 record_id=row.get("trace_id"))
    by_id = load_questions(questions) if questions is not None else _questions_from_rows(located)
    exclude = exclude or set()
    rows = [row for _, _, row in located if row["question_id"] not in exclude]
    try:
        sft = build_examples(rows, by_id, render)
    except ValueError as exc:
        raise InputError(data, str(exc)) from None
    if not sft:
        raise InputError(data, "no kept rows to train on")
    seen = {r["question_id"] for r in rows if r["question_id"] in by_id}
    grpo, skipped = build_prompts([by_id[q] for q in sorted(seen)], pass_rates(rows), render, band=band)
    warning = evaluation_set_warning(data, rows)
    return TrainingData(sft=sft, grpo=grpo, questions={q: by_id[q] for q in sorted(seen)}, skipped=skipped,
                        warnings=[warning] if warning else [])
