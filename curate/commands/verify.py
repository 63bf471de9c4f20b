"""`curate verify`: LLM judges check each kept trace's reasoning, step by step."""

from __future__ import annotations

import typer

from curate.commands.stage_cli import stage_command


def register(app: typer.Typer) -> None:
    from curate.commands.generate import _interrupt
    from curate.verify import VerifyStage

    app.command("verify")(stage_command(
        VerifyStage, input_help="the filter's output (.parquet or .jsonl)", output_help="verified rows (with a verify "
        "column)", rejected_help="write rejected rows here (with reason codes and the judges' verdicts)",
        errors=_interrupt,
        help="Ask one or more judge models whether each trace's reasoning supports its answer (a verdict per quoted "
             "step, clinical errors, unsafe advice), through generate's engine: durable cache, retries, rate limits, "
             "several servers, resumable.\n\nExample: curate verify -i kept.parquet -o verified.parquet --rejected "
             "judged-out.parquet --report verify.json --judge Qwen/Qwen2.5-72B-Instruct --base-url "
             "http://gpu1:8000/v1"))
