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
STRATIFY_HELP = "comma-separated strata keys among source,subject,difficulty ('' for none)"


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    with user_errors():
        try:
            yield
        except ImportError as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None


def _fmt_rate(entry: dict) -> str:
    if entry.get("rate") is None and entry.get("estimate") is None:
        return "-"
    rate = entry.get("rate", entry.get("estimate"))
    low, high = entry["interval"]
    return f"{rate:.1%} [{low:.1%}, {high:.1%}]"


@review_app.command("push")
def push_command(
    input: Path = typer.Option(..., "--input", "-i", help="curated file (.parquet or .jsonl)"),
    dataset: str = typer.Option(..., "--dataset", help="Argilla dataset name (created, or reused when it exists)"),
    questions: Path = typer.Option(None, "--questions", help="questions file, when rows lack question text and gold"),
    sample: int = typer.Option(None, "--sample", min=1, help="how many traces to review (default: all)"),
    stratify: str = typer.Option("source,subject,difficulty", "--stratify", help=STRATIFY_HELP),
    seed: int = typer.Option(0, "--seed", help="sampling seed"),
    min_per_stratum: int = typer.Option(1, "--min-per-stratum", min=0, help="at least this many per stratum"),
    reviewers_per_record: int = typer.Option(1, "--reviewers-per-record", min=1, help="clinicians who must submit each"),
    api_url: str = typer.Option(None, "--api-url", help=API_URL_HELP),
    workspace: str = typer.Option(None, "--workspace", help="Argilla workspace (default: your first)"),
    report: Path = typer.Option(None, "--report", help="write the JSON report here"),
) -> None:
    """Push a stratified sample of a curated file to an Argilla dataset (record ids = trace ids: no duplicates)."""
    from review import push

    with _errors():
        result = push(input, dataset=dataset, questions=questions, sample=sample, stratify=stratify, seed=seed,
                      min_per_stratum=min_per_stratum, reviewers_per_record=reviewers_per_record, api_url=api_url,
                      workspace=workspace, report=report)
    extra = result.extra
    verb = "created" if extra["created"] else "reused"
    console.print(f"{verb} dataset [bold]{extra['dataset']}[/] in workspace {extra['workspace']} at {extra['api_url']}: "
                  f"{result.rows_out} of {result.rows_in} traces pushed ({extra['new_records']} new, "
                  f"{extra['updated_records']} already there), {extra['reviewers_per_record']} reviewer(s) each",
                  highlight=False)


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
    extra = result.extra
    reviewers = ", ".join(f"{name} {n}" for name, n in extra["reviewers"].items()) or "none yet"
    console.print(f"{extra['responses']['submitted']} submitted responses on {extra['records_reviewed']} of "
                  f"{result.rows_in} records -> {output} (reviewers: {reviewers}; drafts {extra['responses']['draft']}, "
                  f"discarded {extra['responses']['discarded']})", highlight=False)


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


@review_app.command("apply")
def apply_command(
    input: Path = typer.Option(..., "--input", "-i", help="the curated file that was sampled"),
    reviews: Path = typer.Option(..., "--reviews", help="reviews file from `curate review pull`"),
    output: Path = typer.Option(..., "--output", "-o", help="output file: rows with a `review` column"),
    mode: str = typer.Option("drop", "--mode", help="drop rejected rows (to --rejected) or flag them"),
    rule: str = typer.Option("majority", "--rule", help="majority: most reviewers must agree (safety: any one); any"),
    rejected: Path = typer.Option(None, "--rejected", help="write dropped rows here, with reason codes"),
    report: Path = typer.Option(None, "--report", help="write the JSON report here"),
    questions: Path = typer.Option(None, "--questions", help="questions file, for subjects rows do not carry"),
    stratify: str = typer.Option("source,subject,difficulty", "--stratify", help=STRATIFY_HELP + " (as pushed)"),
) -> None:
    """Drop or flag rejected rows; report agreement (kappa), error rate per stratum (95% Wilson) and per reviewer."""
    from rich.console import Console
    from rich.table import Table

    from review import apply_reviews

    with _errors():
        result = apply_reviews(input, reviews, output, mode=mode, rule=rule, rejected=rejected, report=report,
                               questions=questions, stratify=stratify)
    extra = result.extra
    out = Console()
    overall = extra["error_rate"]["overall"]
    out.print(f"{extra['reviewed_rows']} reviewed rows, {extra['rejected_by_review']} rejected "
              f"({'dropped' if mode == 'drop' else 'flagged'}); {result.rows_out} of {result.rows_in} rows -> {output}")
    if overall["estimate"] is not None:
        out.print(f"estimated corpus error rate: {_fmt_rate(overall)} (95% Wilson, stratified; "
                  f"{overall['coverage']:.0%} of rows in reviewed strata)")
    strata = Table(title="error rate per stratum")
    for column in ("stratum", "rows", "reviewed", "errors", "rate [95% CI]"):
        strata.add_column(column)
    for entry in extra["error_rate"]["per_stratum"]:
        strata.add_row(entry["stratum"], str(entry["population"]), str(entry["reviewed"]), str(entry["errors"]),
                       _fmt_rate(entry))
    out.print(strata)
    kappas = Table(title="agreement")
    for column in ("question", "items", "Fleiss' kappa", "% agreement"):
        kappas.add_column(column)
    for question, entry in extra["agreement"].items():
        fk, pa = entry["fleiss_kappa"], entry["percent_agreement"]
        kappas.add_row(question, str(entry["items"]), "-" if fk is None else f"{fk:.3f}", "-" if pa is None else f"{pa:.0%}")
    out.print(kappas)
    people = Table(title="per reviewer")
    for column in ("reviewer", "submitted", "problems found"):
        people.add_column(column)
    for name, counts in extra["reviewers"].items():
        people.add_row(name, str(counts.get("submitted", 0)), str(counts.get("problem_found", 0)))
    out.print(people)


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")
