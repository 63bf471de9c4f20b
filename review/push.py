"""`review.push`: send a stratified sample of a curated file to Argilla for clinicians to review."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curate.stage_report import StageCounter, StageReport
from review.client import ReviewError, api_url_of, connect, workspace_of
from review.dataset import FIELDS, QUESTIONS, build_settings, record_for, require_argilla
from review.items import STRATA_KEYS, load_questions, review_items, stratum_of
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


def _check_compatible(dataset: Any, reviewers_per_record: int) -> None:
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


def push(
    input: str | os.PathLike[str],
    *,
    dataset: str,
    questions: str | os.PathLike[str] | None = None,
    sample: int | None = None,
    stratify: str | Sequence[str] | None = None,
    seed: int = 0,
    min_per_stratum: int = 1,
    reviewers_per_record: int = 1,
    api_url: str | None = None,
    workspace: str | None = None,
    report: str | os.PathLike[str] | None = None,
) -> StageReport:
    """Create (or reuse) the review dataset `dataset` and log a stratified sample of `input` into it.

    Record ids are trace ids, so pushing again (a larger sample, a re-run) updates records and never duplicates
    them; responses already given are kept. Every row is validated before anything reaches the server.
    """
    keys = parse_strata(stratify)
    if sample is not None and sample < 1:
        raise ValueError("--sample must be at least 1")
    counter = StageCounter("review-push")
    question_rows = load_questions(questions) if questions else None
    items = list(review_items(Path(input), question_rows))
    seen: set[str] = set()
    for item in items:
        if item["trace_id"] in seen:
            raise ValueError(f"{input}: trace id {item['trace_id']!r} appears twice (record ids must be unique)")
        seen.add(item["trace_id"])
        counter.seen(item["source"])
    chosen, strata = stratified_sample(items, sample, stratum=lambda it: stratum_of(it, keys),
                                       key=lambda it: it["trace_id"], seed=seed, minimum=min_per_stratum)
    for item in chosen:
        counter.kept(item["source"])

    client = connect(api_url)
    rg = require_argilla()
    ws = workspace_of(client, workspace, create=True)
    with warnings.catch_warnings():  # the SDK warns when the dataset does not exist yet: that is expected here
        warnings.simplefilter("ignore", UserWarning)
        ds = client.datasets(name=dataset, workspace=ws)
    created = ds is None
    if created:
        ds = rg.Dataset(name=dataset, workspace=ws, settings=build_settings(reviewers_per_record), client=client).create()
        existing: set[str] = set()
    else:
        _check_compatible(ds, reviewers_per_record)
        existing = {str(r.id) for r in ds.records(with_responses=False, with_suggestions=False)}
    records = [record_for(item) for item in chosen]
    if records:  # the SDK upserts by record id (= trace id) in batches
        ds.records.log(records, batch_size=min(BATCH, len(records)))
    new = sum(1 for item in chosen if item["trace_id"] not in existing)
    result = counter.report(
        dataset=dataset,
        workspace=ws.name,
        api_url=api_url_of(api_url),
        created=created,
        new_records=new,
        updated_records=len(chosen) - new,
        reviewers_per_record=reviewers_per_record,
        stratify=list(keys),
        seed=seed,
        strata=[{"stratum": s.name, "population": s.population, "sampled": s.sampled} for s in strata],
    )
    if report is not None:
        result.write(report)
    return result
