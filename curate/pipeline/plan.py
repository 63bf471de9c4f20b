"""`curate run --dry-run`: what a run will do and cost, before anything is paid for.

The sources are really loaded (into a temporary folder: nothing in the run directory changes), the teacher's
requests are counted and their prompt tokens estimated from the rendered prompts, the completion tokens bounded by
`max_tokens`, and priced with the config's `[prices]`. Every step's input and output files are listed.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.pipeline.config import PipelineConfig


@dataclass
class Plan:
    questions: dict[str, int]
    samples: int
    requests: int
    prompt_tokens: int
    completion_tokens_max: int
    teacher: str
    cost: float | None
    steps: list[dict[str, Any]] = field(default_factory=list)
    rejected_sources: dict[str, int] = field(default_factory=dict)


def plan(config: PipelineConfig, run_dir: Path) -> Plan:
    from collections import Counter

    from curate.filter.checks import estimate_tokens
    from curate.generate.requests import build_jobs
    from curate.pipeline.runner import Runner
    from curate.records import Question
    from sources.stage import SourcesConfig, SourcesStage

    runner = Runner(config, run_dir, echo=lambda _: None)
    with tempfile.TemporaryDirectory() as tmp:
        report = SourcesStage(SourcesConfig(sources=list(config.sources))).run(None, Path(tmp) / "questions.jsonl")
        from curate.io import read_rows

        questions = [Question.model_validate(r) for r in read_rows(Path(tmp) / "questions.jsonl")]
    g = config.generate
    from curate.generate.runner import select_questions

    questions = select_questions(questions, limit=g.limit, shard=g.shard)
    jobs = build_jobs(questions, teacher=g.teacher, params=g.sampling(), samples=g.samples, prompt=g.prompt)
    prompt_tokens = sum(estimate_tokens(" ".join(m["content"] for m in job.messages)) for job in jobs)
    requests = len(jobs) if g.use_n else len(jobs) * g.samples
    if not g.use_n:
        prompt_tokens *= g.samples
    completion_max = len(jobs) * g.samples * g.max_tokens
    price = config.prices.get(g.teacher)
    cost = (prompt_tokens / 1000 * price.cost_per_1k_input + completion_max / 1000 * price.cost_per_1k_output
            if price is not None else None)
    steps = []
    for step in runner.stages:
        enabled = step.enabled(config)
        ctx = runner.context(step)
        reads = [runner.rel(p) for p in (ctx.input, *ctx.files.values()) if p is not None]
        reads += [str(p) for p in step.external(config)]
        steps.append({"stage": step.name, "enabled": enabled, "reads": reads if enabled else [],
                      "writes": runner.rel(ctx.output) if enabled else None})
    return Plan(questions=dict(sorted(Counter(q.source for q in questions).items())), samples=g.samples,
                requests=requests, prompt_tokens=prompt_tokens, completion_tokens_max=completion_max,
                teacher=g.teacher, cost=cost, steps=steps,
                rejected_sources={k: v for k, v in report.reasons.items()})


def print_plan(p: Plan, run_dir: Path) -> None:
    from rich.table import Table

    from curate.console import console

    total = sum(p.questions.values())
    console.print(f"dry run of {run_dir}: nothing is generated or written", highlight=False)
    table = Table(title="questions per source", title_justify="left")
    table.add_column("source")
    table.add_column("questions", justify="right")
    for source, n in p.questions.items():
        table.add_row(source, f"{n:,}")
    table.add_row("all", f"{total:,}")
    console.print(table)
    if p.rejected_sources:
        console.print("rows the sources reject: " + ", ".join(f"{k} {v}" for k, v in p.rejected_sources.items()))
    cost = f"{p.cost:,.2f} (completion tokens at their maximum)" if p.cost is not None else \
        f"unknown: add [prices.\"{p.teacher}\"] cost_per_1k_input / cost_per_1k_output"
    console.print(f"teacher {p.teacher}: {p.requests:,} requests for {total * p.samples:,} samples; about "
                  f"{p.prompt_tokens:,} prompt tokens (estimated from the rendered prompts), at most "
                  f"{p.completion_tokens_max:,} completion tokens; cost {cost}", highlight=False, soft_wrap=True)
    steps = Table(title="stages", title_justify="left")
    for column in ("stage", "runs", "reads", "writes"):
        steps.add_column(column)
    for s in p.steps:
        steps.add_row(s["stage"], "yes" if s["enabled"] else "skipped", ", ".join(s["reads"]) or "–", s["writes"] or "–")
    console.print(steps)
