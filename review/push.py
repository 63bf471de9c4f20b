"""`review.push`: send a stratified sample of a curated file to Argilla for clinicians to review."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from curate.io import iter_rows
from curate.question_rows import load_questions
from curate.stage import StageConfig, StageReport, Tally, option
from review.client import ReviewError, api_url_of, connect, workspace_of
from review.dataset import FIELDS, GOLD_CHECK, GOLD_CORRECT, QUESTIONS, build_settings, record_for, require_argilla
from review.items import STRATA_KEYS, review_item, review_items, stratum_of
from review.sample import stratified_sample

BATCH = 256


def parse_strata(keys: str | Sequence[str] | None) -> tuple[str, ...]:
    """`source,subject` -> ('source', 'subject'); an empty value means one stratum (simple random sample)."""
    if keys is None:
        return STRATA_KEYS
    parts = [k.strip() for k in (keys.split(",") if isinstance(keys, str) else keys) if k.strip()]
    unknown = [k for k in parts if k not in STRATA_KEYS]
    if unknown:
        raise ValueError(f"cannot stratify by {', '.join(unknown)}: expected some of {', '.join(STRATA_KEYS)}")
    return tuple(parts)


def strata_option(value: Any) -> list[str]:
    """The `stratify` option of push and apply: keys as a list, or one comma-separated string (a single CLI value)."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]
    return list(parse_strata(value))


def _check_compatible(dataset: Any, reviewers_per_record: int) -> bool:
    """Whether an existing dataset can take this push; True when it also has the gold-answer question (datasets
    created before it was added are reviewed as they are, without gold-suspect records)."""
    settings = dataset.settings
    fields = {f.name for f in settings.fields}
    questions = {q.name for q in settings.questions}
    if not set(FIELDS) <= fields or not set(QUESTIONS) <= questions:
        raise ReviewError(f"Argilla dataset {dataset.name!r} exists but is not a curate review dataset "
                          f"(fields {sorted(fields)}, questions {sorted(questions)}): choose another --dataset")
    current = getattr(settings.distribution, "min_submitted", None)
    if current != reviewers_per_record:
        raise ReviewError(f"Argilla dataset {dataset.name!r} asks for {current} reviewer(s) per record, not "
                          f"{reviewers_per_record}: pass --reviewers-per-record {current} or use a new --dataset")
    return GOLD_CHECK in fields and GOLD_CORRECT in questions


def gold_suspect_items(path: str | os.PathLike[str], questions: dict[str, dict[str, Any]] | None = None,
                       ) -> list[dict[str, Any]]:
    """One review item per gold-suspect question of `path` (rows with a `gold_suspect` column: the filter's rejected
    file holds the traces that chose the other letter): the shortest such trace, so the clinician reads the case the
    samples made against the answer key. Ordered by question id."""
    path = Path(path)
    best: dict[str, tuple[tuple[int, str], int, dict[str, Any]]] = {}
    for loc, row in iter_rows(path):
        audit = row.get("gold_suspect")
        if not isinstance(audit, dict) or (row.get("answer") or row.get("predicted")) != audit.get("suspect"):
            continue
        if not isinstance(row.get("reasoning"), str) or not row["reasoning"].strip():
            continue
        rank = (len(row["reasoning"]), str(row.get("trace_id")))
        qid = str(row.get("question_id"))
        if qid not in best or rank < best[qid][0]:
            best[qid] = (rank, loc, row)
    items = []
    for qid in sorted(best):
        _, loc, row = best[qid]
        items.append({**review_item(row, questions, where=(path, loc)), "gold_suspect": row["gold_suspect"]})
    return items


class PushConfig(StageConfig):
    dataset: str = option(..., "Argilla dataset name (created, or reused when it exists)")
    sample: int | None = option(200, "how many traces to review (a stratified sample; None: all)", ge=1)
    stratify: list[str] = option(default_factory=lambda: list(STRATA_KEYS), help="strata keys among source, subject, "
                                 "difficulty (repeat or comma-separate; '' for none)")
    seed: int = option(0, "sampling seed")
    min_per_stratum: int = option(1, "at least this many per stratum", ge=0)
    reviewers_per_record: int = option(1, "clinicians who must submit each record", ge=1)
    api_url: str | None = option(None, "Argilla server URL (default: $ARGILLA_API_URL, else http://localhost:6900); the "
                                 "key comes from $ARGILLA_API_KEY", volatile=True)
    workspace: str | None = option(None, "Argilla workspace (default: your first)")
    gold_first: bool = option(True, "with --gold-suspects: push one trace of each gold-suspect question first, asking "
                              "whether the gold answer is right (beside the stratified sample, not part of it)")

    @field_validator("stratify", mode="before")
    @classmethod
    def _strata(cls, value: Any) -> list[str]:
        return strata_option(value)


class StratumSample(StageConfig):
    stratum: str
    population: int
    sampled: int


class PushReport(StageReport):
    dataset: str
    workspace: str
    api_url: str
    created: bool
    new_records: int
    updated_records: int
    reviewers_per_record: int
    stratify: list[str]
    seed: int
    strata: list[StratumSample] = Field(default_factory=list)
    gold_records: int = Field(default=0, description="gold-suspect questions pushed first, asking whether the gold "
                                                     "answer is right")


def push(input: str | os.PathLike[str], *, questions: str | os.PathLike[str] | None = None,
         gold_suspects: str | os.PathLike[str] | None = None, report: str | os.PathLike[str] | None = None,
         **options: Any) -> PushReport:
    """Create (or reuse) the review dataset and log a stratified sample of `input` into it (options: PushConfig's);
    with `gold_suspects` (a file of rows the filter's gold audit flagged, e.g. its rejected file), one trace per
    gold-suspect question goes first, asking whether the gold answer is right.

    Record ids are trace ids, so pushing again (a larger sample, a re-run) updates records and never duplicates
    them; responses already given are kept. Every row is validated before anything reaches the server.
    """
    import time

    from curate.stage import make_config

    started = time.perf_counter()
    c = make_config(PushConfig, options)
    keys = tuple(c.stratify)
    tally = Tally()
    question_rows = load_questions(questions) if questions else None
    items = list(review_items(Path(input), question_rows))
    seen: set[str] = set()
    for item in items:
        if item["trace_id"] in seen:
            raise ValueError(f"{input}: trace id {item['trace_id']!r} appears twice (record ids must be unique)")
        seen.add(item["trace_id"])
    gold = gold_suspect_items(gold_suspects, question_rows) if gold_suspects and c.gold_first else []
    gold_ids = {item["trace_id"] for item in gold}
    items = [item for item in items if item["trace_id"] not in gold_ids]
    chosen, strata = stratified_sample(items, c.sample, stratum=lambda it: stratum_of(it, keys),
                                       key=lambda it: it["trace_id"], seed=c.seed, minimum=c.min_per_stratum)
    tally.add(chosen, [], inputs=items)

    client = connect(c.api_url)
    rg = require_argilla()
    ws = workspace_of(client, c.workspace, create=True)
    with warnings.catch_warnings():  # the SDK warns when the dataset does not exist yet: that is expected here
        warnings.simplefilter("ignore", UserWarning)
        ds = client.datasets(name=c.dataset, workspace=ws)
    created = ds is None
    warnings_: list[str] = []
    if created:
        ds = rg.Dataset(name=c.dataset, workspace=ws, settings=build_settings(c.reviewers_per_record),
                        client=client).create()
        existing: set[str] = set()
    else:
        if not _check_compatible(ds, c.reviewers_per_record) and gold:
            warnings_.append(f"dataset {c.dataset!r} predates the gold-answer question: {len(gold)} gold-suspect "
                             "questions were not pushed (push to a new --dataset to have them reviewed)")
            gold = []
        existing = {str(r.id) for r in ds.records(with_responses=False, with_suggestions=False)}
    chosen = [*gold, *chosen]  # gold-suspect questions first: a wrong key rejects every correct trace of its question
    records = [record_for(item) for item in chosen]
    if records:  # the SDK upserts by record id (= trace id) in batches
        ds.records.log(records, batch_size=min(BATCH, len(records)))
    new = sum(1 for item in chosen if item["trace_id"] not in existing)
    result = PushReport(
        stage="review-push", **tally.counts(), wall_s=round(time.perf_counter() - started, 3),
        dataset=c.dataset, workspace=ws.name, api_url=api_url_of(c.api_url), created=created, new_records=new,
        updated_records=len(chosen) - new, reviewers_per_record=c.reviewers_per_record, stratify=list(keys), seed=c.seed,
        strata=[StratumSample(stratum=s.name, population=s.population, sampled=s.sampled) for s in strata],
        gold_records=len(gold), warnings=warnings_)
    if report is not None:
        result.write(report)
    return result
