"""`curate run CONFIG`, `curate report RUNDIR`, `curate publish -i FILE --repo-id ORG/NAME`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from curate.commands.common import console, user_errors

StageName = Literal["sources", "generate", "filter", "verify", "dedupe", "decontaminate", "scrub", "review", "publish"]


def run(
    config: Path = typer.Argument(..., help="run config (TOML); see examples/demo.toml"),
    until: StageName | None = typer.Option(None, "--until", help="stop after this stage"),
    start: StageName | None = typer.Option(None, "--from", help="run this stage and every later one again (earlier "
                                                                "ones must have finished)"),
    run_dir: Path | None = typer.Option(None, "--run-dir", help="run directory (default: [run] dir of the config)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="load the sources (offline) and print the questions per "
                                 "source, the teacher requests, tokens (typical and at most) and cost, and what every "
                                 "stage reads and writes; run nothing, needs no teacher and no network"),
) -> None:
    """Run the whole pipeline in a run directory, resuming from the last finished stage.

    Stages: sources, generate, filter, verify (optional), dedupe, decontaminate, scrub, review (optional), publish.
    Example: curate run examples/demo.toml --until filter"""
    from rich.markup import escape

    from curate.pipeline import PipelineError, load_config, run_pipeline
    from curate.progress import ProgressDisplay
    from curate.stage import StagePending

    with user_errors():
        if dry_run:  # no teacher needed: a variable that is not set is named, not refused
            from curate.pipeline.plan import plan, print_plan

            unset: list[str] = []
            cfg = load_config(config, unset)
            where = Path(run_dir or cfg.run.dir).absolute()
            print_plan(plan(cfg, where, unset), where)
            return
        cfg = load_config(config)
        try:
            with ProgressDisplay() as display:
                manifest = run_pipeline(cfg, run_dir=run_dir, until=until, start=start, display=display,
                                        echo=lambda line: console.print(escape(line), highlight=False, soft_wrap=True))
        except PipelineError as exc:
            console.print(f"[bold red]error:[/] {escape(str(exc))}\nFinished stages are kept: fix the cause and run the same "
                          "command again to resume.", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except StagePending as exc:
            console.print(f"[yellow]waiting:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(3) from None
        except KeyboardInterrupt:
            where = run_dir or cfg.run.dir
            console.print(f"[yellow]interrupted[/]: finished stages are kept in {escape(str(where))} (manifest.json), "
                          "and every teacher response already received is in the generate cache; run the same "
                          "command again to resume", highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None
    _summary(manifest, run_dir or cfg.run.dir)


def _summary(manifest: dict, run_dir: Path | None) -> None:
    from rich.table import Table

    table = Table(title=f"run {run_dir}")
    for column in ("stage", "status", "rows in", "rows out", "rejected", "wall s"):
        table.add_column(column, justify="left" if column in ("stage", "status") else "right")
    for name in manifest["order"]:
        entry = manifest["stages"].get(name) or {}
        counts = entry.get("counts") or {}
        table.add_row(name, entry.get("status", "not run"), *[str(counts.get(k, "–")) for k in ("rows_in", "rows_out",
                      "rejected")], f"{entry['wall_s']:.1f}" if entry.get("wall_s") is not None else "–")
    console.print(table)


def report(
    run_dir: Path = typer.Argument(..., help="a `curate run` directory"),
    output: Path | None = typer.Option(None, "-o", "--output", help="HTML file (default RUNDIR/report.html)"),
) -> None:
    """Write a self-contained HTML report of a run (figures also written beside it).

    Example: curate report runs/example"""
    with user_errors():
        from curate.report import write_report

        path = write_report(run_dir, output)
    console.print(f"[green]wrote[/] {path} (figures in {path.with_name(path.stem + '-figures')})")


def register(app: typer.Typer) -> None:
    from curate.commands.stage_cli import stage_command
    from curate.publish import PublishStage

    app.command("run")(run)
    app.command("report")(report)
    app.command("publish")(stage_command(
        PublishStage, input_help="curated traces (.parquet or .jsonl)", output_decls=("--local-dir",),
        output_required=False, output_help="write the files here instead of pushing (no network)", rejected_help=None,
        help="Publish curated traces as a Hugging Face dataset with a dataset card (to the Hub, or --local-dir).\n\n"
             "Parquet per split, a README.md card with metadata and provenance, TRL-ready columns. Token from "
             "HF_TOKEN.\n\nExample: curate publish -i runs/example/scrubbed.parquet --repo-id me/medical-cot "
             "--run-dir runs/example --local-dir out"))
