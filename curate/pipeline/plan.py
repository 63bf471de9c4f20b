"""`curate run --dry-run`: what a run will do and cost, before anything is paid for. It needs no teacher and no
network.

The sources are really loaded (into a temporary folder: nothing in the run directory changes), offline: a Hub copy
that is not in the local Hugging Face cache, or a file that is not there, is named as not counted rather than
downloaded or retried. The teacher's requests are counted and their prompt tokens estimated from the prompts the
real templates render (`curate.generate.requests.prompt_tokens`). Completion tokens are a range: typical, from the
lengths of recorded answers (the run's own `replay` recording, else the demo's recorded DeepSeek-R1 and QwQ-32B
answers to the same kinds of questions), each capped at `max_tokens`; and the worst case, every completion at
`max_tokens`. Both are priced with the config's `[prices]`. Every step's input and output files are listed.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.pipeline.config import PipelineConfig

#: Recorded answers of reasoning teachers (DeepSeek-R1, QwQ-32B) to MedQA, MedMCQA and PubMedQA questions: what a
#: completion typically costs when the run's config names no recording of its own.
REFERENCE_RECORDING = Path(__file__).resolve().parents[2] / "examples" / "demo" / "recording.jsonl.gz"


@dataclass
class Plan:
    questions: dict[str, int]
    samples: int
    requests: int
    prompt_tokens: int
    completion_tokens_max: int
    teacher: str
    cost: float | None
    #: completions' typical total (recorded lengths, each capped at max_tokens), and what that is based on
    completion_tokens_typical: int | None = None
    typical_basis: str | None = None
    cost_typical: float | None = None
    max_tokens: int = 0
    steps: list[dict[str, Any]] = field(default_factory=list)
    rejected_sources: dict[str, int] = field(default_factory=dict)
    #: source entries that could not be counted offline -> why
    uncounted: dict[str, str] = field(default_factory=dict)
    #: environment variables the config names that are not set (a run needs them)
    unset: list[str] = field(default_factory=list)


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """No network for the duration: Hugging Face libraries read only their local cache (and fail at once for what
    is not there, instead of retrying for half a minute)."""
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: "1" for name in names})
    # Already imported libraries read the variables at import: set what they read.
    patched = []
    for module, attr in (("huggingface_hub.constants", "HF_HUB_OFFLINE"), ("datasets.config", "HF_HUB_OFFLINE"),
                         ("datasets.config", "HF_DATASETS_OFFLINE")):
        loaded = sys.modules.get(module)
        if loaded is not None and hasattr(loaded, attr):
            patched.append((loaded, attr, getattr(loaded, attr)))
            setattr(loaded, attr, True)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for loaded, attr, value in patched:
            setattr(loaded, attr, value)


def _label(spec: Any) -> str:
    where = spec.path or "the Hub copy"
    return f"{spec.name} ({where}, split {spec.split})" if spec.split else f"{spec.name} ({where})"


def load_questions_offline(config: PipelineConfig) -> tuple[list[Any], dict[str, int], dict[str, str]]:
    """The questions of every source entry that can be read without a network, in config order (a question two
    entries list is counted once, as the sources stage keeps it once); the rows they reject per reason; the entries
    that could not be read, with why."""
    from collections import Counter

    from sources.stage import load_spec

    questions, seen, rejected, uncounted = [], set(), Counter(), {}
    with offline():
        for spec in config.sources:
            if spec.path is not None and "${" in spec.path:
                uncounted[_label(spec)] = "its path names an environment variable that is not set"
                continue
            if spec.path is not None and not Path(spec.path).exists():
                uncounted[_label(spec)] = f"{spec.path} does not exist"
                continue
            try:
                result = load_spec(spec)
            except Exception as exc:  # noqa: BLE001 - any failure to read one source is reported, the rest counted
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                offline_only = spec.path is None and ("OfflineMode" in first or "Couldn't reach" in first)
                uncounted[_label(spec)] = ("not in the local Hugging Face cache, and a dry run does not download "
                                           "(the run will; or give the source a local `path`)" if offline_only
                                           else first[:300])
                continue
            for q in result.questions:
                if q.id in seen:
                    rejected["duplicate_id"] += 1
                    continue
                seen.add(q.id)
                questions.append(q)
            for r in result.rejected:
                rejected.update(r.reasons[:1])
    return questions, dict(rejected), uncounted


def recorded_lengths(path: Path) -> list[int]:
    """Tokens of each recorded completion (answer and reasoning) in a replay recording, counted as the replay
    server counts them."""
    from curate.generate.requests import text_tokens

    opener = gzip.open if str(path).endswith(".gz") else open
    lengths = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row.get("response"):
                lengths.append(text_tokens(row["response"]) + text_tokens(row.get("reasoning")))
    return lengths


def typical_completion(config: PipelineConfig) -> tuple[float | None, str | None]:
    """(tokens a completion typically takes, capped at max_tokens; what that is based on)."""
    g = config.generate
    own = g.replay is not None and Path(g.replay).is_file()
    path = Path(g.replay) if own else REFERENCE_RECORDING
    if not path.is_file():
        return None, None
    lengths = recorded_lengths(path)
    if not lengths:
        return None, None
    capped = [min(n, g.max_tokens) for n in lengths]
    mean, median = statistics.fmean(capped), statistics.median(capped)
    what = ("the recording this run replays" if own else
            "the demo's recorded DeepSeek-R1 and QwQ-32B answers to MedQA, MedMCQA and PubMedQA questions; another "
            "teacher may write more or less")
    return mean, (f"mean {mean:,.0f} tokens a completion (median {median:,.0f}, longest {max(lengths):,}) in "
                  f"{len(lengths):,} answers of {path} ({what})")


def plan(config: PipelineConfig, run_dir: Path, unset: list[str] | None = None) -> Plan:
    from collections import Counter

    from curate.generate.requests import build_jobs, prompt_tokens
    from curate.generate.runner import select_questions
    from curate.pipeline.runner import Runner

    runner = Runner(config, run_dir, echo=lambda _: None)
    questions, rejected, uncounted = load_questions_offline(config)
    g = config.generate
    questions = select_questions(questions, limit=g.limit, shard=g.shard)
    jobs = build_jobs(questions, teacher=g.teacher, params=g.sampling(), samples=g.samples, prompt=g.prompt)
    prompts = sum(prompt_tokens(job.messages) for job in jobs)
    requests = len(jobs) if g.use_n else len(jobs) * g.samples
    if not g.use_n:
        prompts *= g.samples
    completions = len(jobs) * g.samples
    completion_max = completions * g.max_tokens
    typical, basis = typical_completion(config)
    completion_typical = round(typical * completions) if typical is not None else None
    price = config.prices.get(g.teacher)

    def priced(completion: int | None) -> float | None:
        if price is None or completion is None:
            return None
        return prompts / 1000 * price.cost_per_1k_input + completion / 1000 * price.cost_per_1k_output

    steps = []
    for step in runner.stages:
        enabled = step.enabled(config)
        ctx = runner.context(step)
        reads = [runner.rel(p) for p in (ctx.input, *ctx.files.values()) if p is not None]
        reads += [str(p) for p in step.external(config)]
        steps.append({"stage": step.name, "enabled": enabled, "reads": reads if enabled else [],
                      "writes": runner.rel(ctx.output) if enabled else None})
    return Plan(questions=dict(sorted(Counter(q.source for q in questions).items())), samples=g.samples,
                requests=requests, prompt_tokens=prompts, completion_tokens_max=completion_max,
                teacher=g.teacher, cost=priced(completion_max), completion_tokens_typical=completion_typical,
                typical_basis=basis, cost_typical=priced(completion_typical), max_tokens=g.max_tokens, steps=steps,
                rejected_sources=rejected, uncounted=uncounted, unset=sorted(set(unset or [])))


def print_plan(p: Plan, run_dir: Path) -> None:
    from rich.table import Table

    from curate.console import console

    def say(text: str) -> None:
        console.print(text, highlight=False, soft_wrap=True, markup=False)

    total = sum(p.questions.values())
    say(f"dry run of {run_dir}: nothing is generated or written, nothing is downloaded")
    for name in p.unset:
        say(f"{name} is not set: the run needs it (shown here as ${{{name}}})")
    table = Table(title="questions per source", title_justify="left")
    table.add_column("source")
    table.add_column("questions", justify="right")
    for source, n in p.questions.items():
        table.add_row(source, f"{n:,}")
    table.add_row("all counted", f"{total:,}")
    console.print(table)
    for label, why in p.uncounted.items():
        say(f"not counted offline: {label}: {why}")
    if p.uncounted:
        say("the figures below leave those sources out")
    if p.rejected_sources:
        say("rows the sources reject: " + ", ".join(f"{k} {v}" for k, v in p.rejected_sources.items()))
    say(f"teacher {p.teacher}: {p.requests:,} requests for {total * p.samples:,} samples")
    say(f"  prompt tokens: about {p.prompt_tokens:,} (the prompts the templates render, at 4 characters a token; a "
        "teacher's own tokenizer may count 10-20% either way)")
    if p.completion_tokens_typical is not None:
        say(f"  completion tokens: typically about {p.completion_tokens_typical:,}, at most {p.completion_tokens_max:,} "
            f"(every completion at max_tokens {p.max_tokens:,})")
        say(f"    typical: {p.typical_basis}")
    else:
        say(f"  completion tokens: at most {p.completion_tokens_max:,} (every completion at max_tokens {p.max_tokens:,})")
    if p.cost is None:
        say(f"  cost: unknown: add [prices.\"{p.teacher}\"] cost_per_1k_input / cost_per_1k_output")
    elif p.cost_typical is not None:
        say(f"  cost: typically about {p.cost_typical:,.2f}, at most {p.cost:,.2f}")
    else:
        say(f"  cost: at most {p.cost:,.2f}")
    steps = Table(title="stages", title_justify="left")
    for column in ("stage", "runs", "reads", "writes"):
        steps.add_column(column)
    for s in p.steps:
        steps.add_row(s["stage"], "yes" if s["enabled"] else "skipped", ", ".join(s["reads"]) or "–", s["writes"] or "–")
    console.print(steps)
