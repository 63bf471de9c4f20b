"""`curate review push|pull|status|apply`: clinician spot-review in Argilla (the `review` package does the work)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import typer

from curate.commands.common import console, user_errors

review_app = typer.Typer(help="Clinician spot-review in Argilla: push a sample, pull verdicts, apply them.",
                         no_args_is_help=True)

API_URL_HELP = "Argilla server URL (default: $ARGILLA_API_URL, else http://localhost:6900); the key comes from $ARGILLA_API_KEY"


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    with user_errors():
        try:
            yield
        except ImportError as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None


def _fmt_rate(rate: float | None, interval: tuple[float, float] | None) -> str:
    if rate is None or interval is None:
        return "-"
    low, high = interval
    return f"{rate:.1%} [{low:.1%}, {high:.1%}]"


def push_command(**kwargs) -> None:
    """Push a stratified sample of a curated file to an Argilla dataset (record ids = trace ids: no duplicates)."""
    from review import push

    with _errors():
        result = push(kwargs.pop("input"), questions=kwargs.pop("questions"), gold_suspects=kwargs.pop("gold_suspects"),
                      report=kwargs.pop("report"), **_push_options(kwargs))
    verb = "created" if result.created else "reused"
    console.print(f"{verb} dataset [bold]{result.dataset}[/] in workspace {result.workspace} at {result.api_url}: "
                  f"{result.rows_out} of {result.rows_in} traces pushed ({result.new_records} new, "
                  f"{result.updated_records} already there), {result.reviewers_per_record} reviewer(s) each"
                  + (f"; {result.gold_records} gold-suspect questions first" if result.gold_records else ""),
                  highlight=False)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)


def _push_options(values: dict) -> dict:
    from curate.commands.stage_cli import config_from_cli
    from review.push import PushConfig

    return config_from_cli(PushConfig, values, _PUSH_KINDS).model_dump()


def _push_signature() -> None:
    import inspect

    from curate.commands.stage_cli import config_parameters
    from review.push import PushConfig

    kw = inspect.Parameter.KEYWORD_ONLY
    params = config_parameters(PushConfig)
    _PUSH_KINDS.update({p.name: kind for p, kind in params})
    head = [inspect.Parameter("input", kw, annotation=Path, default=typer.Option(..., "--input", "-i",
                                                                                  help="curated file (.parquet or .jsonl)")),
            inspect.Parameter("questions", kw, annotation=Path | None, default=typer.Option(
                None, "--questions", help="questions file, when rows lack question text and gold")),
            inspect.Parameter("gold_suspects", kw, annotation=Path | None, default=typer.Option(
                None, "--gold-suspects", help="rows the filter's gold audit flagged (its --rejected file): one per "
                "gold-suspect question is pushed first, asking whether the gold answer is right")),
            inspect.Parameter("report", kw, annotation=Path | None,
                              default=typer.Option(None, "--report", help="write the JSON report here"))]
    all_params = head + [p for p, _ in params]
    push_command.__signature__ = inspect.Signature(all_params)
    push_command.__annotations__ = {p.name: p.annotation for p in all_params}


_PUSH_KINDS: dict[str, str] = {}


@review_app.command("pull")
def pull_command(
    dataset: str = typer.Option(..., "--dataset", help="Argilla dataset name"),
    output: Path = typer.Option(..., "--output", "-o", help="reviews file to write (.parquet or .jsonl)"),
    api_url: str = typer.Option(None, "--api-url", help=API_URL_HELP),
    workspace: str = typer.Option(None, "--workspace", help="Argilla workspace (default: your first)"),
    report: Path = typer.Option(None, "--report", help="write the JSON report here"),
) -> None:
    """Write every submitted response, one row per record and reviewer."""
    from review import pull

    with _errors():
        result = pull(dataset, output, api_url=api_url, workspace=workspace, report=report)
    reviewers = ", ".join(f"{name} {n}" for name, n in result.reviewers.items()) or "none yet"
    console.print(f"{result.responses['submitted']} submitted responses on {result.records_reviewed} of "
                  f"{result.rows_in} records -> {output} (reviewers: {reviewers}; drafts {result.responses['draft']}, "
                  f"discarded {result.responses['discarded']})", highlight=False)


@review_app.command("status")
def status_command(
    dataset: str = typer.Option(..., "--dataset", help="Argilla dataset name"),
    api_url: str = typer.Option(None, "--api-url", help=API_URL_HELP),
    workspace: str = typer.Option(None, "--workspace", help="Argilla workspace (default: your first)"),
    as_json: bool = typer.Option(False, "--json", help="print the progress as JSON"),
) -> None:
    """How far the review is: records completed and pending, and what each reviewer submitted."""
    from rich.console import Console
    from rich.table import Table

    from review import status

    with _errors():
        progress = status(dataset, api_url=api_url, workspace=workspace)
    out = Console()
    if as_json:
        out.print_json(json.dumps(progress, default=str))
        return
    out.print(f"[bold]{dataset}[/]: {progress.get('completed', 0)} of {progress.get('total', 0)} records completed "
              f"({progress.get('pending', 0)} pending), {progress['reviewers_per_record']} reviewer(s) per record")
    table = Table(title="per reviewer")
    for column in ("reviewer", "submitted", "draft", "discarded"):
        table.add_column(column, justify="left" if column == "reviewer" else "right")
    for name, parts in sorted(progress.get("users", {}).items()):
        totals = {k: sum(part.get(k, 0) for part in parts.values()) for k in ("submitted", "draft", "discarded")}
        table.add_row(name, *(str(totals[k]) for k in ("submitted", "draft", "discarded")))
    out.print(table)


def _show_apply(result, output: Path | None) -> None:
    """The apply summary, on stdout (it is the result a reviewer reads, not progress)."""
    from rich.console import Console
    from rich.table import Table

    out = Console()
    overall = result.error_rate.overall
    out.print(f"{result.summary()} -> {output}", highlight=False)
    if overall.estimate is not None:
        out.print(f"estimated corpus error rate: {_fmt_rate(overall.estimate, overall.interval)} (95% Wilson, "
                  f"stratified; {overall.coverage:.0%} of rows in reviewed strata)")
    strata = Table(title="error rate per stratum")
    for column in ("stratum", "rows", "reviewed", "errors", "rate [95% CI]"):
        strata.add_column(column)
    for entry in result.error_rate.per_stratum:
        strata.add_row(entry.stratum, str(entry.population), str(entry.reviewed), str(entry.errors),
                       _fmt_rate(entry.rate, entry.interval))
    out.print(strata)
    kappas = Table(title="agreement")
    for column in ("question", "items", "Fleiss' kappa", "% agreement"):
        kappas.add_column(column)
    for question, entry in result.agreement.items():
        fk, pa = entry.fleiss_kappa, entry.percent_agreement
        kappas.add_row(question, str(entry.items), "-" if fk is None else f"{fk:.3f}", "-" if pa is None else f"{pa:.0%}")
    out.print(kappas)
    if result.judge_agreement:
        judge = Table(title="judge (verify) vs clinicians")
        for column in ("criterion", "rows", "Cohen's kappa [95% CI]", "% agreement", "judge yes", "clinicians yes"):
            judge.add_column(column)
        for criterion, entry in result.judge_agreement.items():
            kappa = "-" if entry.kappa is None else f"{entry.kappa:.2f}"
            if entry.interval is not None:
                kappa += f" [{entry.interval[0]:.2f}, {entry.interval[1]:.2f}]"
            pa = "-" if entry.percent_agreement is None else f"{entry.percent_agreement:.0%}"
            judge.add_row(criterion, str(entry.items), kappa, pa, str(entry.judge_yes), str(entry.clinicians_yes))
        out.print(judge)
    gold = result.gold_review
    if gold.reviewed:
        out.print(f"gold-suspect questions reviewed: {gold.reviewed}; answer key wrong {len(gold.key_wrong)} (their rows "
                  f"rejected: review_gold_wrong), right {len(gold.key_right)}, unsure {len(gold.unsure)}",
                  highlight=False)
    people = Table(title="per reviewer")
    for column in ("reviewer", "submitted", "problems found"):
        people.add_column(column)
    for name, counts in result.reviewers.items():
        people.add_row(name, str(counts.get("submitted", 0)), str(counts.get("problem_found", 0)))
    out.print(people)


def register(app: typer.Typer) -> None:
    from curate.commands.stage_cli import stage_command
    from review.apply import ReviewApplyStage

    _push_signature()
    review_app.command("push")(push_command)
    review_app.command("apply")(stage_command(
        ReviewApplyStage, input_help="the curated file that was sampled", output_help="rows with a `review` column",
        rejected_help="write dropped rows here, with reason codes", show=_show_apply, errors=_errors,
        help="Drop or flag rejected rows; report agreement (kappa), error rate per stratum (95% Wilson) and per "
             "reviewer."))
    app.add_typer(review_app, name="review")
