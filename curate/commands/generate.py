"""`curate generate`: the teacher writes step-by-step reasoning for every question."""

from __future__ import annotations

from pathlib import Path

import typer

from curate.commands.common import console, is_tty, user_errors


def generate(
    input: Path = typer.Option(..., "-i", "--input", help="Question file (.parquet or .jsonl)"),
    output: Path = typer.Option(..., "-o", "--output", help="Trace file to write (.parquet or .jsonl)"),
    teacher: str = typer.Option(..., "--teacher", help="model name (served name, Hub id or local directory)"),
    backend: str = typer.Option("openai", "--backend", help="openai (any OpenAI-compatible server) | vllm | transformers"),
    base_url: list[str] | None = typer.Option(None, "--base-url", help="server URL ending in /v1; repeat to balance "
                                               "over several (default: $OPENAI_BASE_URL or http://127.0.0.1:8000/v1)"),
    prompt: str | None = typer.Option(None, "--prompt", help="template name or .txt path (default: per question: "
                                       "multiple_choice, or multiple_choice_context when it has a context)"),
    samples: int = typer.Option(1, "--samples", "-n", min=1, help="completions per question"),
    temperature: float = typer.Option(0.7, "--temperature", min=0.0),
    top_p: float = typer.Option(1.0, "--top-p", min=0.0, max=1.0),
    max_tokens: int = typer.Option(2048, "--max-tokens", min=1),
    seed: int | None = typer.Option(None, "--seed", help="sample i of a prompt gets seed + i"),
    concurrency: int = typer.Option(64, "--concurrency", min=1, help="requests in flight (openai backend)"),
    rpm: float | None = typer.Option(None, "--rpm", min=0.0, help="requests per minute limit"),
    tpm: float | None = typer.Option(None, "--tpm", min=0.0, help="tokens per minute limit"),
    timeout: float = typer.Option(600.0, "--timeout", min=0.1, help="seconds per request before it is retried"),
    max_retries: int = typer.Option(6, "--max-retries", min=0, help="retries per request (429, 5xx, timeouts, ...)"),
    cache: Path | None = typer.Option(None, "--cache", help="response cache folder (default: OUTPUT.cache); "
                                       "share it between runs and pipelines"),
    shard: str | None = typer.Option(None, "--shard", help="I/N: this machine's share (0 <= I < N), by question id"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="only the first N questions"),
    api_key_env: str | None = typer.Option(None, "--api-key-env", help="environment variable holding the API key "
                                            "(default OPENAI_API_KEY)"),
    no_n: bool = typer.Option(False, "--no-n", help="one request per sample even if the server supports n"),
    report: Path | None = typer.Option(None, "--report", help="write the stage report (JSON) here"),
) -> None:
    """Ask a teacher model for reasoning traces. Resumable: re-running the same command skips finished responses.
    Example: curate generate -i q.parquet -o traces.parquet --teacher Qwen/QwQ-32B --base-url http://gpu1:8000/v1 -n 4"""
    from curate.generate import GenerateError, run_generate

    with user_errors():
        try:
            result = run_generate(input, output, teacher=teacher, backend=backend, base_urls=base_url, prompt=prompt,
                                  samples=samples, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                                  seed=seed, concurrency=concurrency, cache_dir=cache, report=report, rpm=rpm, tpm=tpm,
                                  timeout=timeout, max_retries=max_retries, shard=shard, limit=limit,
                                  api_key_env=api_key_env, use_n=not no_n, progress=is_tty(), summary=True)
        except GenerateError as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            console.print("finished responses are kept in the cache; re-run the command to continue")
            raise typer.Exit(3) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]: finished responses are kept in the cache; re-run the command to continue")
            raise typer.Exit(130) from None
    failed = result.extra.get("traces_with_error", 0)
    note = f" ([yellow]{failed} with an error[/]: re-run to retry them)" if failed else ""
    console.print(f"[green]wrote[/] {result.rows_out} traces to {output}{note}")


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
