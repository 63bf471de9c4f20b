"""Generation end to end: questions -> jobs -> what the cache lacks -> a backend -> Traces in input order."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from curate.generate.backends import GenerateError, Unit, make_backend
from curate.generate.cache import ResponseCache
from curate.generate.progress import Progress, Stats, print_summary
from curate.generate.ratelimit import RateLimiter
from curate.generate.requests import Job, SamplingParams, build_jobs, in_shard, parse_shard, trace_id
from curate.generate.retry import RETRYABLE, Failure, RetryPolicy
from curate.records import Question, Trace
from curate.stage_report import StageCounter, StageReport


class Collector:
    """The backends' sink: every finished response goes to the cache at once; final failures are remembered."""

    def __init__(self, cache: ResponseCache, stats: Stats, progress: Progress) -> None:
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


async def agenerate(questions: list[Question], *, teacher: str, backend: str = "openai",
                    base_urls: list[str] | None = None, prompt: str | None = None, samples: int = 1,
                    params: SamplingParams | None = None, concurrency: int = 64, cache: ResponseCache,
                    rpm: float | None = None, tpm: float | None = None, timeout: float = 600.0,
                    max_retries: int = 6, retry_base: float = 1.0, api_key: str | None = None, use_n: bool = True,
                    stats: Stats | None = None, progress: bool = False,
                    backend_options: dict[str, Any] | None = None) -> list[Trace]:
    """Generate `samples` completions per question; returns Traces in input order (errors inside, never raised,
    except `GenerateError` when nothing can work: unreachable server, unknown model, refused key)."""
    if samples < 1:
        raise ValueError("--samples must be at least 1")
    params = params or SamplingParams()
    stats = stats or Stats()
    jobs = build_jobs(questions, teacher=teacher, params=params, samples=samples, prompt=prompt)
    units = pending_units(jobs, cache)
    stats.samples_total = len(jobs) * samples
    stats.samples_cached = stats.samples_total - sum(len(u.samples) for u in units)
    if units:
        options: dict[str, Any] = {"teacher": teacher, "params": params, **(backend_options or {})}
        if backend == "openai":
            options.update(base_urls=base_urls, api_key=api_key, concurrency=concurrency, timeout=timeout,
                           retry=RetryPolicy(max_retries=max_retries, base_s=retry_base), limiter=RateLimiter(rpm, tpm),
                           use_n=use_n)
        engine = make_backend(backend, **options)
        with Progress(stats, enabled=progress) as bar:
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
    return assemble(jobs, cache, errors, teacher=teacher, params=params)


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


def default_cache_dir(output: Path) -> Path:
    return output.parent / f"{output.name}.cache"


def run_generate(input: Path, output: Path, *, teacher: str, backend: str = "openai",
                 base_urls: list[str] | None = None, prompt: str | None = None, samples: int = 1,
                 temperature: float = 0.7, top_p: float = 1.0, max_tokens: int = 2048, seed: int | None = None,
                 concurrency: int = 64, cache_dir: Path | None = None, report: Path | None = None,
                 **more: Any) -> StageReport:
    """The file-level stage: read Questions, generate, write Traces (atomically) and the stage report.

    More options: rpm, tpm, timeout (s), max_retries, retry_base (s, first backoff step), shard ("I/N"), limit,
    api_key_env, use_n, progress (bool), summary (bool), backend_options (dict passed to the backend)."""
    from curate.io import InputError, read_records, write_rows

    input, output = Path(input), Path(output)
    known = {"rpm", "tpm", "timeout", "max_retries", "retry_base", "shard", "limit", "api_key_env", "use_n", "progress",
             "summary", "backend_options"}
    unknown = set(more) - known
    if unknown:
        raise TypeError(f"run_generate: unknown option(s) {', '.join(sorted(unknown))}")
    counter = StageCounter("generate")
    shard = parse_shard(more.get("shard"))
    questions, _ = read_records(input, Question)
    seen: set[str] = set()
    for number, q in enumerate(questions, start=1):
        if q.id in seen:  # two questions with one id would get the same trace ids
            raise InputError(input, "duplicate question id", record_id=q.id, field="id",
                             **({"line": number} if input.suffix != ".parquet" else {"row": number - 1}))
        seen.add(q.id)
    questions = select_questions(questions, limit=more.get("limit"), shard=shard)
    params = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    cache = ResponseCache(cache_dir or default_cache_dir(output))
    cache.load()
    stats = Stats()
    try:
        traces = _run(agenerate(
            questions, teacher=teacher, backend=backend, base_urls=base_urls, prompt=prompt, samples=samples,
            params=params, concurrency=concurrency, cache=cache, rpm=more.get("rpm"), tpm=more.get("tpm"),
            timeout=more.get("timeout") or 600.0, max_retries=more.get("max_retries", 6),
            retry_base=more.get("retry_base", 1.0),
            api_key=api_key_from_env(more.get("api_key_env")) if backend == "openai" else None,
            use_n=more.get("use_n", True), stats=stats, progress=more.get("progress", False),
            backend_options=more.get("backend_options")))
    finally:
        cache.close()
    write_rows(traces, output)
    if more.get("summary", False):
        print_summary(stats, str(output))
    by_id = {q.id: q.source for q in questions}
    for q in questions:
        counter.seen(q.source)
    for t in traces:
        counter.kept(by_id.get(t.question_id))
    result = counter.report(teacher=teacher, backend=backend, prompt=prompt, samples=samples, params=params.as_dict(),
                            shard=more.get("shard"), limit=more.get("limit"), cache_dir=str(cache.directory),
                            traces_with_error=sum(1 for t in traces if t.error), **stats.as_dict())
    if report:
        result.write(report)
    return result


__all__ = ["GenerateError", "agenerate", "generate", "run_generate", "select_questions"]
