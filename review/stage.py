"""The review step of `curate run`: push a stratified sample to Argilla (idempotent: record ids are trace ids), the
filter's gold-suspect questions first, pull the verdicts so far, and apply them once there are any; with a `reviews`
file (from `curate review pull`), just apply it."""

from __future__ import annotations

from typing import Any

from curate.progress import Progress
from curate.stage import StagePending
from review.apply import ReviewApplyStage, ReviewReport


def review_step(ctx: Any, binding: Any, progress: Progress) -> ReviewReport:
    """`ctx` is the pipeline's StageContext, `binding` the step's config and its Argilla settings (`extras`)."""
    from curate.pipeline.rundir import RunDir, count_rows
    from review.pull import pull
    from review.push import push

    x = binding.extras
    reviews = x["reviews"]
    if reviews is None:
        if not x["dataset"]:
            raise ValueError("[review] needs `dataset` (the Argilla dataset name), or `reviews` (a pulled reviews file)")
        # The same strata as the apply: the error rate is estimated per stratum and weighted by its share of the input.
        options = {k: v for k, v in x.items() if k != "reviews"}
        # The gold audit's flagged traces that chose the other letter are in the filter's rejected file.
        gold = RunDir.open(ctx.run_dir).file("filter", "rejected")
        push(ctx.input, questions=ctx.files.get("questions"), gold_suspects=gold, stratify=binding.config.stratify,
             **options)
        reviews = ctx.run_dir / "reviews.parquet"
        pull(dataset=x["dataset"], output=reviews, api_url=x["api_url"], workspace=x["workspace"])
        if not count_rows(reviews):
            raise StagePending(f"pushed the sample to Argilla dataset {x['dataset']!r}; no verdicts yet. Run the same "
                               "`curate run` again once the clinicians have reviewed it.")
    return ReviewApplyStage(binding.config).run(ctx.input, ctx.output, rejected=ctx.rejected, report=ctx.report,
                                                progress=progress, reviews=reviews, questions=ctx.files.get("questions"))
