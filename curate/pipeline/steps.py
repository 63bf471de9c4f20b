"""Adapters for the stages whose entry point is not one file-level function: sources (several loaders into one
Question file), review (push, pull, apply) and publish (local layout, then the optional push)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curate.stage_report import StageCounter, StageReport


class StagePending(RuntimeError):
    """The stage waits on people (clinician review): the run stops here, finished stages stay finished, and the
    same `curate run` picks up from this stage later."""


def pull_sources(output: Path, *, sources: list[dict[str, Any]], rejected: Path | None = None,
                 report: Path | None = None) -> StageReport:
    """Load every [[sources]] entry through `sources.load_source` into one Question file (ids stay unique)."""
    from curate.io import Rejected, write_rows
    from sources import load_source

    counter = StageCounter("sources")
    questions, dropped, seen = [], [], set()
    for spec in sources:
        options: dict[str, Any] = dict(split=spec.get("split"), limit=spec.get("limit"), config=spec.get("config"),
                                       hub_format=spec.get("hub_format", False), skip_invalid=spec.get("skip_invalid", False))
        if spec["name"] == "custom":
            options.update(mapping=spec.get("mapping"), answer_format=spec.get("answer_format") or "letter",
                           name=spec.get("source_name") or "custom")
        result = load_source(spec["name"], spec.get("path"), **options)
        for q in result.questions:
            counter.seen(q.source)
            if q.id in seen:  # the same question listed by two entries (e.g. overlapping splits)
                dropped.append(Rejected(row=q.row(), reasons=["duplicate_id"], detail=f"{q.id} already loaded"))
                counter.dropped(["duplicate_id"], q.source)
                continue
            seen.add(q.id)
            questions.append(q)
            counter.kept(q.source)
        for r in result.rejected:
            counter.seen(spec["name"])
            counter.dropped(r.reasons, spec["name"])
        dropped.extend(result.rejected)
    if rejected is not None:
        write_rows([r.as_row("sources") for r in dropped], rejected)
    write_rows(questions, output)
    stage_report = counter.report(sources=[{k: v for k, v in s.items() if v is not None} for s in sources])
    if report is not None:
        stage_report.write(report)
    return stage_report


def review_step(input: Path, output: Path, *, dataset: str | None, api_url: str | None, sample: int, stratify: list[str],
                reviewers_per_record: int, seed: int, reviews: Path | None, work_dir: Path, questions: Path | None = None,
                rejected: Path | None = None, report: Path | None = None, **options: Any) -> Any:
    """Push a stratified sample to Argilla (idempotent: record ids are trace ids), pull the verdicts so far, and
    apply them once there are any. With `reviews` (a file from `curate review pull`), just apply it."""
    import review

    if reviews is None:
        if not dataset:
            raise ValueError("[review] needs `dataset` (the Argilla dataset name), or `reviews` (a pulled reviews file)")
        review.push(input, dataset=dataset, questions=questions, sample=sample, stratify=stratify, seed=seed,
                    reviewers_per_record=reviewers_per_record, api_url=api_url)
        reviews = work_dir / "reviews.parquet"
        review.pull(dataset=dataset, output=reviews, api_url=api_url)
        from curate.pipeline.rundir import count_rows

        if not count_rows(reviews):
            raise StagePending(f"pushed the sample to Argilla dataset {dataset!r}; no verdicts yet. Run the same "
                               "`curate run` again once the clinicians have reviewed it.")
    # The same strata as the push: the error rate is estimated per stratum and weighted by its share of `input`.
    return review.apply_reviews(input, reviews, output, questions=questions, stratify=stratify, rejected=rejected,
                                report=report, **options)


def publish_step(input: Path, output: Path, *, repo_id: str, private: bool = False, force: bool = False,
                 push: bool = False, split_by: str | None = None, run_dir: Path | None = None,
                 report: Path | None = None) -> StageReport:
    """Write the Hub layout and card to `output` (no network), then upload that folder when `push` is set."""
    from curate.pipeline.rundir import count_rows
    from curate.publish import publish, push_folder

    counter = StageCounter("publish")
    folder = publish(input, repo_id=repo_id, local_dir=output, private=private, force=force, run_dir=run_dir,
                     split_by=split_by)
    counter.rows_in = count_rows(input) or 0
    counter.rows_out = count_rows(folder) or 0
    url = push_folder(folder, repo_id=repo_id, private=private) if push else None
    stage_report = counter.report(repo_id=repo_id, pushed=bool(push), url=url, forced=force)
    if report is not None:
        stage_report.write(report)
    return stage_report
