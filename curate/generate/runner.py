"""Generation end to end: questions -> jobs -> what the cache lacks -> a backend -> Traces in input order."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from curate.generate.backends import GenerateError, Unit, make_backend
from curate.generate.cache import CacheWriteError, ResponseCache
from curate.generate.config import GenerateConfig, GenerateReport, parse_shard
from curate.generate.progress import GenerationProgress, Stats
from curate.generate.ratelimit import RateLimiter
from curate.generate.redact import redact, secrets_of
from curate.generate.requests import Job, SamplingParams, build_jobs, in_shard, trace_id
from curate.generate.retry import RETRYABLE, Failure, RetryPolicy
from curate.io import InputError, file_lock, same_file
from curate.progress import Progress, no_progress
from curate.records import Question, Trace
from curate.stage import Batch, ConfigError, Outcome, Stage


class Collector:
    """The backends' sink: every finished response goes to the cache at once; final failures are remembered.

    Two things stop the run (`fatal`, then `on_fatal` cancels the backend): a write the cache refuses (the
    responses still in flight would be paid for and lost), and a fresh run whose first `give_up_after` questions all
    failed for good before anything was answered (a wrong option, a server refusing every request)."""

    def __init__(self, cache: ResponseCache, stats: Stats, progress: GenerationProgress, *,
                 secrets: tuple[str, ...] = (), give_up_after: int | None = None) -> None:
        self.cache = cache
        self.stats = stats
        self.progress = progress
        self.secrets = secrets
        self.give_up_after = give_up_after
        self.errors: dict[str, str] = {}
        self.fatal: GenerateError | None = None
        self.on_fatal: Callable[[], Any] = lambda: None
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._failed_questions: set[int] = set()
        self._noted: set[tuple[str, str]] = set()

    def stop(self, error: GenerateError) -> None:
        if self.fatal is None:
            self.fatal = error
            self.on_fatal()

    def finished(self, unit: Unit, responses: list[tuple[int, dict[str, Any]]]) -> None:
        # Responses that arrive in the same event-loop step share one write, made before the loop waits again:
        # no await lies between a response's arrival and its write, so nothing received can be lost to a kill.
        if self.fatal is not None:
            return  # the run is stopping: these were in flight, and are asked again by the next run
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
        if not pending or self.fatal is not None:
            return
        try:
            self.cache.put_many(pending)
        except CacheWriteError as error:  # stop at the first refused write: one error, not one per response
            self.stop(error)
            return
        self.stats.samples_done += len(pending)
        self.progress.advance(len(pending))

    def failed(self, unit: Unit, sample_index: int, failure: Failure, attempts: int) -> None:
        error = f"{failure} (after {attempts} attempt{'s' if attempts > 1 else ''})"
        self.errors[unit.job.keys[sample_index]] = redact(error, self.secrets)
        self.stats.samples_failed += 1
        self.stats.errors_by_kind[failure.kind] += 1
        self.progress.advance(1)
        self._failed_questions.add(unit.job.index)
        if (self.give_up_after and len(self._failed_questions) >= self.give_up_after and not self.stats.samples_done
                and not self.stats.samples_cached):
            self.stop(GenerateError(f"every request failed ({len(self._failed_questions)} questions so far, none "
                                    f"answered): {self.errors[unit.job.keys[sample_index]]}",
                                    hint="nothing was answered: check the server's log and the sampling options"))

    def attempted(self, failure: Failure | None, usage: dict[str, Any] | None = None) -> None:
        if failure is not None and failure.kind == "empty_completion":
            self.stats.failed_attempts_by_kind[failure.kind] += 1  # the response itself was counted already
            return
        self.stats.requests += 1
        if failure is not None:
            self.stats.failed_attempts_by_kind[failure.kind] += 1
            return
        self.stats.responses += 1
        prompt, completion = (usage or {}).get("prompt_tokens"), (usage or {}).get("completion_tokens")
        if isinstance(prompt, int):
            self.stats.prompt_tokens += prompt
        if isinstance(completion, int):
            self.stats.completion_tokens += completion
        if not (isinstance(prompt, int) and isinstance(completion, int)):
            self.stats.requests_without_usage += 1  # unknown, never a reason to stop

    def note(self, kind: str, subject: str, message: str) -> None:
        if (kind, subject) not in self._noted:
            self._noted.add((kind, subject))
            self.stats.notes.setdefault(kind, []).append(subject)
            self.stats.warnings.append(redact(message, self.secrets))


def pending_units(jobs: list[Job], cache: ResponseCache, skip: Any = ()) -> list[Unit]:
    """What is left: a job with no sample done is one request for all samples (n); leftovers go one per sample.
    Keys in `skip` (samples that failed for good in this run) are left out."""
    units = []
    for job in jobs:
        missing = [i for i, key in enumerate(job.keys) if key not in cache and key not in skip]
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
    kinds = ", ".join(f"{kind} {count}" for kind, count in stats.errors_by_kind.most_common())
    kind = stats.errors_by_kind.most_common(1)[0][0] if stats.errors_by_kind else ""
    example = next((e for e in errors.values() if e.startswith(kind)), next(iter(errors.values())))
    raise GenerateError(f"every request failed ({len(errors)} of {stats.samples_total} samples: {kinds}); for "
                        f"example: {example}", hint="nothing was answered: check the server's log and the options")


def identical_samples(traces: list[Trace]) -> tuple[int, int]:
    """(samples byte-identical to an earlier sample of their question, questions with such a repeat). Traces come
    grouped by question (input order, then sample index)."""
    repeats, questions = 0, 0
    current, seen, counted = None, set(), False
    for t in traces:
        if t.question_id != current:
            current, seen, counted = t.question_id, set(), False
        if t.error or t.completion is None:
            continue
        sample = (t.completion, t.reasoning_content)
        if sample in seen:
            repeats += 1
            questions += not counted
            counted = True
        else:
            seen.add(sample)
    return repeats, questions


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
    secrets: tuple[str, ...] = ()
    if backend == "openai":
        from curate.generate.backends.openai_api import base_urls_from

        secrets = secrets_of(api_key, base_urls_from(c.base_urls))
    errors: dict[str, str] = {}
    engine = None
    damaged, rounds = cache.damaged_lines, 0
    while True:
        rounds += 1
        if units:
            cache.check_writable()  # before anything is paid for
            if engine is None:
                engine = make_backend(backend, **_backend_options(c, backend, params, api_key, secrets))
            errors.update(await _run_units(engine, units, cache, stats, progress, secrets, c.stop_after_failures))
        traces = assemble(jobs, cache, errors, teacher=c.teacher, params=params)
        if cache.damaged_lines == damaged or rounds == 2:
            break
        # Lines that failed their checksum (with no intact copy) left the index while the traces were read: ask for
        # them again, once.
        damaged = cache.damaged_lines
        units = pending_units(jobs, cache, skip=errors)
        stats.asked_again += sum(len(u.samples) for u in units)
        stats.samples_cached = max(0, stats.samples_cached - sum(len(u.samples) for u in units))
        if not units:
            break
    stats.finished_at = time.perf_counter()
    _observe(traces, cache, stats, params, c.samples, len(jobs))
    refuse_if_nothing_answered(stats, errors)
    return traces


def _backend_options(c: GenerateConfig, backend: str, params: SamplingParams, api_key: str | None,
                     secrets: tuple[str, ...]) -> dict[str, Any]:
    options: dict[str, Any] = {"teacher": c.teacher, "params": params, **c.backend_options}
    if backend == "openai":
        options.update(base_urls=c.base_urls, api_key=api_key, concurrency=c.concurrency, timeout=c.timeout,
                       connect_timeout=c.connect_timeout, read_timeout=c.read_timeout,
                       stop_after_failures=c.stop_after_failures, stop_after_s=c.stop_after_s, secrets=secrets,
                       retry=RetryPolicy(max_retries=c.max_retries, base_s=c.retry_base),
                       limiter=RateLimiter(c.rpm, c.tpm), use_n=c.use_n)
    return options


async def _run_units(engine: Any, units: list[Unit], cache: ResponseCache, stats: Stats, progress: Progress,
                     secrets: tuple[str, ...], give_up_after: int) -> dict[str, str]:
    """Run the backend over `units`; returns the final failures by cache key. A run-stopping problem the collector
    saw (a refused cache write, nothing answered) cancels the backend and is raised once what arrived is written."""
    collector = Collector(cache, stats, GenerationProgress(stats, progress), secrets=secrets,
                          give_up_after=give_up_after)
    task = asyncio.ensure_future(engine.run(units, collector))
    collector.on_fatal = task.cancel
    try:
        await task
    except asyncio.CancelledError:
        if collector.fatal is None:  # Ctrl-C, not the collector
            raise
    finally:
        collector.flush()
        try:
            cache.sync()
        except CacheWriteError as error:
            collector.stop(error)
    if collector.fatal is not None:
        raise collector.fatal
    return collector.errors


def _observe(traces: list[Trace], cache: ResponseCache, stats: Stats, params: SamplingParams, samples: int,
             questions: int) -> None:
    """What the run should say about its output: damaged cache lines, unknown token counts, samples that repeat
    each other."""
    stats.damaged_cache_lines = cache.damaged_lines + cache.torn_lines
    stats.unverified_cache_lines = cache.unverified_lines
    if cache.damaged_lines:
        stats.warnings.append(f"{cache.damaged_lines} cache lines in {cache.directory} failed their checksum (damaged "
                              f"on disk): never used; {stats.asked_again} responses were asked again, the others read "
                              "from an intact copy")
    if cache.torn_lines:  # a truncated segment: its last line is cut, and the lines after the cut are gone unseen
        stats.warnings.append(f"{cache.torn_lines} cache lines in {cache.directory} were cut short (a truncated or "
                              "partly written segment): never used; their responses, and any lost with the rest of "
                              "the file, were asked again")
    if stats.requests_without_usage:
        stats.warnings.append(f"{stats.requests_without_usage} of {stats.responses} answers carried no usable token "
                              "counts (usage missing or not whole numbers): their tokens are unknown, the totals are "
                              "lower bounds")
    if params.temperature > 0 and samples > 1:
        stats.identical_samples, affected = identical_samples(traces)
        if stats.identical_samples:
            stats.warnings.append(
                f"{stats.identical_samples} samples repeat another sample of the same question byte for byte "
                f"({affected} of {questions} questions) although temperature is {params.temperature:g}: the server "
                "may decode greedily or ignore the seed, and such samples add nothing")


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
            with replay_teacher(c) as c, self._output_lock(cache):
                traces = _run(agenerate(questions, config=c, cache=cache, stats=stats, progress=batch.progress,
                                        api_key=api_key_from_env(c.api_key_env) if backend == "openai" else None))
        finally:
            cache.close()
        generation = stats.as_dict()
        return Outcome(kept=traces, inputs=[q.row() for q in questions], warnings=list(stats.warnings), stats=dict(
            teacher=c.teacher, backend=backend, prompt=c.prompt, samples=c.samples, params=params.as_dict(),
            shard=c.shard, limit=c.limit, cache_dir=str(cache.directory), questions=len(questions),
            traces_with_error=sum(1 for t in traces if t.error), incomplete=sum(1 for t in traces if t.error),
            **generation))

    @contextlib.contextmanager
    def _output_lock(self, cache: ResponseCache) -> Iterator[None]:
        """One `curate generate` per output at a time (two would each pay for every request): a lock in the cache
        folder, named by the output. A cache that cannot be written takes no lock: it cannot be paid into either
        (`check_writable` refuses before the first request)."""
        output = Path(self.output).absolute()
        name = ".lock-" + hashlib.sha256(str(output).encode()).hexdigest()[:16]
        busy = ConfigError(f"generate: another `curate generate` is writing {self.output} (lock {cache.directory / name}"
                           "): wait for it to finish, or stop it")
        try:
            cache.directory.mkdir(parents=True, exist_ok=True)
            (cache.directory / name).touch()
        except OSError:
            yield
            return
        with file_lock(cache.directory / name, busy):
            yield

    def run(self, input: Any, output: Any, **kwargs: Any) -> GenerateReport:
        self.output = output  # the default cache folder sits beside the output
        cache = Path(self.config.cache_dir or default_cache_dir(Path(output))).absolute()
        for kind in ("output", "rejected", "report"):  # paid requests must not end in "Is a directory"
            target = output if kind == "output" else kwargs.get(kind)
            if target is not None and (Path(target).absolute() == cache or cache in Path(target).absolute().parents
                                       or same_file(target, cache)):
                raise ConfigError(f"generate: the {kind} {target} is the response cache folder {cache} or inside "
                                  "it: give --cache another folder (nothing was asked)")
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
