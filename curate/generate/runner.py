"""Generation end to end: questions -> jobs -> what the cache lacks -> a backend -> Traces in input order."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from curate.generate.backends import GenerateError, Unit, make_backend
from curate.generate.cache import ResponseCache
from curate.generate.config import GenerateConfig, GenerateReport, parse_shard
from curate.generate.progress import GenerationProgress, Stats
from curate.generate.ratelimit import RateLimiter
from curate.generate.requests import Job, SamplingParams, build_jobs, in_shard, trace_id
from curate.generate.retry import RETRYABLE, Failure, RetryPolicy
from curate.io import InputError
from curate.progress import Progress, no_progress
from curate.records import Question, Trace
from curate.stage import Batch, Outcome, Stage


class Collector:
    """The backends' sink: every finished response goes to the cache at once; final failures are remembered."""

    def __init__(self, cache: ResponseCache, stats: Stats, progress: GenerationProgress) -> None:
        self.cache = cache
        self.stats = stats
        self.progress = progress
        self.errors: dict[str, str] = {}
        self._pending: list[tuple[str, dict[str, Any]]] = []

    def finished(self, unit: Unit, responses: list[tuple[int, dict[str, Any]]]) -> None:
        # Responses that arrive in the same event-loop step share one write, made before the loop waits again:
        # no await lies between a response's arrival and its write, so nothing received can be lost to a kill.
        if not self._pending:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # called outside a loop (offline backends' threads hand over through the loop)
                self._pending.extend((unit.job.keys[index], r) for index, r in responses)
                self.flush()
                return
        self._pending.extend((unit.job.keys[index], r) for index, r in responses)

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        self.cache.put_many(pending)
        self.stats.samples_done += len(pending)
        self.progress.advance(len(pending))

    def failed(self, unit: Unit, sample_index: int, failure: Failure, attempts: int) -> None:
        self.errors[unit.job.keys[sample_index]] = f"{failure} (after {attempts} attempt{'s' if attempts > 1 else ''})"
        self.stats.samples_failed += 1
        self.stats.errors_by_kind[failure.kind] += 1
        self.progress.advance(1)

    def attempted(self, failure: Failure | None, usage: dict[str, Any] | None = None) -> None:
        if failure is not None and failure.kind == "empty_content":
            self.stats.failed_attempts_by_kind[failure.kind] += 1  # the response itself was counted already
            return
        self.stats.requests += 1
        if failure is not None:
            self.stats.failed_attempts_by_kind[failure.kind] += 1
        else:
            self.stats.responses += 1
            self.stats.prompt_tokens += int((usage or {}).get("prompt_tokens") or 0)
            self.stats.completion_tokens += int((usage or {}).get("completion_tokens") or 0)


def pending_units(jobs: list[Job], cache: ResponseCache) -> list[Unit]:
    """What is left: a job with no sample done is one request for all samples (n); leftovers go one per sample."""
    units = []
    for job in jobs:
        missing = [i for i, key in enumerate(job.keys) if key not in cache]
        if not missing:
            continue
        if len(missing) == len(job.keys):
            units.append(Unit(job, missing))
        else:
            units.extend(Unit(job, [i]) for i in missing)
    return units


def assemble(jobs: list[Job], cache: ResponseCache, errors: dict[str, str], *, teacher: str,
             params: SamplingParams) -> list[Trace]:
    """Traces in input order, then sample index: the same bytes whether the run was interrupted or not."""
    traces = []
    for job in jobs:
        for index, key in enumerate(job.keys):
            cached = cache.get(key)
            fields = dict(cached) if cached is not None else {"error": errors.get(key, "not generated")}
            traces.append(Trace(trace_id=trace_id(job, teacher, params, index), question_id=job.question.id,
                                sample_index=index, teacher=teacher, prompt_name=job.prompt_name,
                                prompt_hash=job.prompt_hash, params=params.as_dict(), **fields))
    return traces


def refuse_if_nothing_answered(stats: Stats, errors: dict[str, str]) -> None:
    """Every request of this run failed: stop (non-zero exit) rather than write a file of errors when the output
    would hold no completion at all, or when every failure was the server's (connection, 5xx, timeout, 429), which a
    later re-run can finish. Permanent errors of single requests (a prompt over the context length) on the leftovers
    of a resumed run are recorded in their traces as usual."""
    if stats.responses or not errors:
        return
    if stats.samples_cached and not all(kind in RETRYABLE for kind in stats.errors_by_kind):
        return
    kinds = ", ".join(f"{count} {kind}" for kind, count in stats.errors_by_kind.most_common())
    kind = stats.errors_by_kind.most_common(1)[0][0]
    example = next((e for e in errors.values() if e.startswith(kind)), next(iter(errors.values())))
    raise GenerateError(f"every request failed ({kinds}); for example {example}")


def select_questions(questions: list[Question], *, limit: int | None = None,
                     shard: str | tuple[int, int] | None = None) -> list[Question]:
    """`--limit` takes the first N of the input, then `--shard I/N` keeps this machine's share of those."""
    if limit is not None:
        questions = questions[:limit]
    shard = parse_shard(shard) if isinstance(shard, str) else shard
    return [q for q in questions if in_shard(q.id, shard)]


def api_key_from_env(name: str | None) -> str | None:
    """The API key comes from the environment only (never a flag value, never logged)."""
    if name:
        if not os.environ.get(name):
            raise ValueError(f"--api-key-env {name}: that environment variable is not set")
        return os.environ[name]
    return os.environ.get("OPENAI_API_KEY")


async def agenerate(questions: list[Question], *, cache: ResponseCache, stats: Stats | None = None,
                    progress: Progress = no_progress, api_key: str | None = None, params: SamplingParams | None = None,
                    config: GenerateConfig | None = None, jobs: list[Job] | None = None, **options: Any) -> list[Trace]:
    """Generate `samples` completions per question; returns Traces in input order (errors inside, never raised,
    except `GenerateError` when nothing can work: unreachable server, unknown model, refused key). Options are
    GenerateConfig's (or give `config`); `params` overrides its sampling parameters. `jobs` are prebuilt requests
    (their own messages and cache keys, `samples` keys each) sent instead of `questions` rendered with the prompt:
    `curate verify` asks its judges through this same engine."""
    c = config if config is not None else GenerateConfig(**options)
    params = params or c.sampling()
    stats = stats or Stats()
    backend = c.resolved_backend()
    if jobs is None:
        jobs = build_jobs(questions, teacher=c.teacher, params=params, samples=c.samples, prompt=c.prompt)
    units = pending_units(jobs, cache)
    stats.samples_total = len(jobs) * c.samples
    stats.samples_cached = stats.samples_total - sum(len(u.samples) for u in units)
    if units:
        backend_options: dict[str, Any] = {"teacher": c.teacher, "params": params, **c.backend_options}
        if backend == "openai":
            backend_options.update(base_urls=c.base_urls, api_key=api_key, concurrency=c.concurrency,
                                   timeout=c.timeout, retry=RetryPolicy(max_retries=c.max_retries, base_s=c.retry_base),
                                   limiter=RateLimiter(c.rpm, c.tpm), use_n=c.use_n)
        engine = make_backend(backend, **backend_options)
        bar = GenerationProgress(stats, progress)
        collector = Collector(cache, stats, bar)
        try:
            await engine.run(units, collector)
        finally:
            collector.flush()
            cache.sync()
        errors = collector.errors
        refuse_if_nothing_answered(stats, errors)
    else:
        errors = {}
    stats.finished_at = time.perf_counter()
    return assemble(jobs, cache, errors, teacher=c.teacher, params=params)


def _run(coro: Any) -> Any:
    """asyncio.run, also from inside a running loop (a notebook): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def generate(questions: list[Question], *, teacher: str, cache_dir: str | os.PathLike[str], **options: Any) -> list[Trace]:
    """Plain-Python entry point over records (see `agenerate` for the options)."""
    cache = ResponseCache(cache_dir)
    cache.load()
    try:
        return _run(agenerate(questions, teacher=teacher, cache=cache, **options))
    finally:
        cache.close()


@contextlib.contextmanager
def replay_teacher(config: GenerateConfig) -> Iterator[GenerateConfig]:
    """With `replay`, a replay server answering as the teacher for the duration (the config then points at it)."""
    if config.replay is None:
        yield config
        return
    from curate.generate.replay import replay_server

    if not Path(config.replay).is_file():
        raise InputError(config.replay, "file not found (the recorded completions `replay` names)")
    with replay_server(traces=config.replay, models=[config.teacher]) as server:
        yield config.model_copy(update={"base_urls": [server.url], "backend": "openai", "replay": None})


def default_cache_dir(output: Path) -> Path:
    return output.parent / f"{output.name}.cache"


class GenerateStage(Stage[GenerateConfig, GenerateReport]):
    """Read Questions, generate through the durable cache, write Traces (atomically) in input order."""

    name = "generate"
    Config, Report, Columns = GenerateConfig, GenerateReport, Trace
    record = Question

    def process(self, batch: Batch) -> Outcome:
        c = self.config
        questions = [Question.model_validate(row) for row in batch.rows]
        seen: set[str] = set()
        for i, q in enumerate(questions):
            if q.id in seen:  # two questions with one id would get the same trace ids
                raise InputError(batch.path or "<questions>", "duplicate question id", record_id=q.id, field="id",
                                 **batch.where(i))
            seen.add(q.id)
        questions = select_questions(questions, limit=c.limit, shard=c.shard)
        params = c.sampling()
        backend = c.resolved_backend()
        cache = ResponseCache(c.cache_dir or default_cache_dir(Path(self.output)))
        cache.load()
        stats = Stats()
        try:
            with replay_teacher(c) as c:
                traces = _run(agenerate(questions, config=c, cache=cache, stats=stats, progress=batch.progress,
                                        api_key=api_key_from_env(c.api_key_env) if backend == "openai" else None))
        finally:
            cache.close()
        generation = stats.as_dict()
        return Outcome(kept=traces, inputs=[q.row() for q in questions], stats=dict(
            teacher=c.teacher, backend=backend, prompt=c.prompt, samples=c.samples, params=params.as_dict(),
            shard=c.shard, limit=c.limit, cache_dir=str(cache.directory), questions=len(questions),
            traces_with_error=sum(1 for t in traces if t.error), incomplete=sum(1 for t in traces if t.error),
            **generation))

    def run(self, input: Any, output: Any, **kwargs: Any) -> GenerateReport:
        self.output = output  # the default cache folder sits beside the output
        return super().run(input, output, **kwargs)

    def allowed_incomplete(self, rows_out: int) -> int:
        return int(self.config.max_failed_fraction * rows_out)

    def incomplete_message(self, report: Any) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in report.errors_by_kind.items()) or "see the traces' error column"
        return (f"generate: {report.incomplete} of {report.rows_out} traces failed after their retries ({kinds}); "
                f"every response that came back is kept in the cache ({report.cache_dir}): run the same command "
                "again to retry exactly the failed requests (max_failed_fraction allows a share of failures)")


run_generate = GenerateStage.invoke


__all__ = ["GenerateConfig", "GenerateError", "GenerateReport", "GenerateStage", "agenerate", "generate",
           "run_generate", "select_questions"]
