"""verify: an LLM judge reads each kept trace's reasoning and says whether it supports the answer, step by step.

`VerifyStage` is the stage (`curate verify`, the optional `[verify]` step between filter and dedupe);
`run_verify(input, output, judges=[...])` the same as one function. The judge sees the question, its options, the
answer key and the trace's reasoning and final answer (never the teacher), and returns a `JudgeVerdict`
(`curate.records`): whether the reasoning supports the answer, a verdict per quoted step, clinical errors, unsafe
advice. The requests go through generate's engine (`agenerate` with prebuilt jobs): the same durable cache,
retries, rate limits, servers, backends and progress; a killed run resumes from the cache. Parsing and the
keep/reject rules are in `verdict.py`, the options and the report in `config.py`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from curate.filter.reasons import JUDGE_ERROR, REASONS
from curate.generate.backends import GenerateError
from curate.generate.cache import ResponseCache
from curate.generate.progress import Stats
from curate.generate.requests import Job, in_shard
from curate.generate.runner import _run as run_coroutine
from curate.generate.runner import agenerate, api_key_from_env, default_cache_dir
from curate.io import InputError, Rejected
from curate.question_rows import QUESTIONS_INPUT, join_question, load_questions
from curate.records import JudgeResult, JudgeVerdict, Question, VerifyColumns, VerifyResult, source_of
from curate.stage import INVALID_INPUT, Batch, ConfigError, Outcome, Stage
from curate.verify.config import JudgeSpec, JudgeSummary, VerifyConfig, VerifyReport
from curate.verify.verdict import (
    combined_reasons,
    judge_result,
    majority,
    parse_output,
    passes,
    sound,
    unsafe,
)

STAGE = "verify"
#: The engine's failure kinds for an answer with no text in it (after its retries): the judge answered, with no
#: verdict, so the row is judged (judge_unparsable), not unfinished. (Both spellings: generate renames the kind.)
EMPTY_ANSWER = ("empty_content", "empty_completion")


def response_format() -> dict[str, Any]:
    """The OpenAI `response_format` asking for the verdict's JSON schema (strict: every key, nothing else)."""
    return {"type": "json_schema", "json_schema": {"name": "judge_verdict", "strict": True,
                                                   "schema": JudgeVerdict.model_json_schema()}}


def request_keys(judge: str, messages: list[list[dict[str, str]]], params: dict[str, Any], schema: Any) -> list[str]:
    """The cache key of each judge request: everything that shapes its answer (the judge, the sampling parameters,
    the schema asked for, the messages), in verify's own key space. What is common is hashed once; each request's
    messages extend a copy, field by field, in a fixed byte layout (no JSON of the long texts)."""
    base = hashlib.sha256(b"verify\x00" + json.dumps([judge, params, schema], sort_keys=True).encode())
    keys = []
    for chat in messages:
        digest = base.copy()
        for message in chat:
            for name in sorted(message):
                digest.update(b"\x00" + name.encode() + b"\x01" + str(message[name]).encode())
            digest.update(b"\x02")
        keys.append(digest.hexdigest()[:32])
    return keys


class VerifyStage(Stage[VerifyConfig, VerifyReport]):
    """Ask every judge about every row, parse its verdicts strictly, decide each row by the rules and the rule.
    A row without an answer from some judge (its request failed after the retries) is unfinished: it is rejected
    with `judge_error`, counted in `incomplete`, and the stage fails beyond `max_failed_fraction`; the next run asks
    exactly those again (the rest comes from the cache)."""

    name = STAGE
    Config, Report, Columns = VerifyConfig, VerifyReport, VerifyColumns
    files = {"questions": QUESTIONS_INPUT}

    def run(self, input: Any, output: Any, **kwargs: Any) -> VerifyReport:
        self.output = output  # the default cache folder sits beside the output
        return super().run(input, output, **kwargs)

    def preflight(self) -> None:
        self.prompt()

    def prompt(self) -> Any:
        from prompts import get_prompt

        try:
            prompt = get_prompt(self.config.prompt)
        except KeyError as exc:
            raise ConfigError(f"verify: {exc.args[0]}") from None
        if "{reasoning}" not in prompt.user:
            raise ConfigError(f"verify: prompt {prompt.name!r} does not show the reasoning ({{reasoning}}): it is not a "
                              "judge template")
        return prompt

    def allowed_incomplete(self, rows_out: int) -> int:
        return int(self.config.max_failed_fraction * rows_out)

    def incomplete_message(self, report: Any) -> str:
        return (f"verify: {report.incomplete} of {report.rows_in} rows got no answer from a judge after the retries "
                f"(see the rejected rows' detail); every verdict that came back is in the cache ({report.cache_dir}): "
                "run the same command again to ask exactly those")

    # ------------------------------------------------------------ the work

    def process(self, batch: Batch) -> Outcome:
        c = self.config
        prompt = self.prompt()
        rows, invalid = self._judgeable(batch)
        shard = None
        if c.shard:
            from curate.generate.config import parse_shard

            shard = parse_shard(c.shard)
            rows = [r for r in rows if in_shard(str(r["question_id"]), shard)]
        messages = [prompt.render(r) for r in rows]  # every judge is asked the same
        cache = ResponseCache(c.cache_dir or default_cache_dir(Path(self.output)))
        cache.load()
        results: list[list[JudgeResult]] = [[] for _ in rows]
        summaries = []
        try:
            for spec in c.judge_specs():
                summaries.append(self._ask(spec, rows, messages, prompt, cache, batch, results))
        finally:
            cache.close()
        return self._decide(rows, results, summaries, invalid, str(cache.directory))

    def _judgeable(self, batch: Batch) -> tuple[list[dict[str, Any]], list[Rejected]]:
        """The rows with their question joined where they lack it, each checked to have what the judge is shown."""
        questions = load_questions(batch.files["questions"]) if batch.files.get("questions") else None
        rows, invalid = [], []
        for i, row in enumerate(batch.rows):
            if questions is not None:
                row = join_question(row, questions.get(row.get("question_id") or ""))
            problem = _missing(row)
            if problem is None:
                rows.append(row)
                continue
            field, expected = problem
            error = InputError(batch.path or "<rows>", expected, record_id=row.get("trace_id"), field=field,
                               **batch.where(i))
            if not batch.skip_invalid:
                raise error
            invalid.append(Rejected(row=row, reasons=[INVALID_INPUT], detail=str(error)))
        return rows, invalid

    def _ask(self, spec: JudgeSpec, rows: list[dict[str, Any]], messages: list[list[dict[str, str]]], prompt: Any,
             cache: ResponseCache, batch: Batch, results: list[list[JudgeResult]]) -> JudgeSummary:
        """One judge over every row, through generate's engine; its results are appended to `results`."""
        c = self.config
        engine = c.engine(spec, cache.directory)
        backend = engine.resolved_backend()
        params = engine.sampling()
        # Structured output is an HTTP request field; the offline engines parse strictly without it.
        schema = response_format() if c.structured and backend == "openai" else None
        if schema is not None:
            engine = engine.model_copy(update={"backend_options": {**engine.backend_options,
                                                                   "extra_body": {"response_format": schema}}})
        keys = request_keys(spec.model, messages, params.as_dict(), schema)
        jobs = [Job(i, Question.model_construct(id=str(row["question_id"])), prompt.name, prompt.hash, m, [key])
                for i, (row, m, key) in enumerate(zip(rows, messages, keys))]
        stats = Stats()

        def progress(phase: str, done: int, total: int | None = None, note: str | None = None) -> None:
            batch.progress(f"judge {spec.model}", done, total, note)

        try:
            traces = run_coroutine(agenerate([], jobs=jobs, config=engine, cache=cache, stats=stats, progress=progress,
                                             api_key=api_key_from_env(engine.api_key_env) if backend == "openai" else None))
        except GenerateError as error:
            if schema is None or "response_format" not in str(error):
                raise
            raise GenerateError(f"judge {spec.model}: {error}", hint="the server refuses structured output: run with "
                                "--no-structured (the verdict is parsed strictly either way)") from None
        outcomes: Counter[str] = Counter()
        tokens = Counter()
        for row, trace, out in zip(rows, traces, results):
            usage = trace.usage or {}
            tokens["prompt"] += int(usage.get("prompt_tokens") or 0)
            tokens["completion"] += int(usage.get("completion_tokens") or 0)
            if trace.error and not trace.error.startswith(EMPTY_ANSWER):
                result = JudgeResult(judge=spec.model, prompt_name=prompt.name, prompt_hash=prompt.hash, passed=False,
                                     reasons=[JUDGE_ERROR], detail=trace.error)
            else:
                parsed = parse_output(None if trace.error else trace.completion, row["reasoning"],
                                      finish_reason=trace.finish_reason,
                                      quote_similarity=c.quote_similarity)
                result = judge_result(parsed, c.rules(), judge=spec.model, prompt_name=prompt.name,
                                      prompt_hash=prompt.hash, raw=trace.completion, finish_reason=trace.finish_reason,
                                      usage=usage)
            outcomes["passed" if result.passed else result.reasons[0]] += 1
            out.append(result)
        done = stats.as_dict()
        return JudgeSummary(model=spec.model, backend=backend, prompt_name=prompt.name, prompt_hash=prompt.hash,
                            structured=schema is not None, requests=done["requests"], responses=done["responses"],
                            from_cache=done["from_cache"], failed=done["failed"], prompt_tokens=tokens["prompt"],
                            completion_tokens=tokens["completion"], passed=outcomes["passed"],
                            outcomes=dict(outcomes.most_common()), generation_s=done["generation_s"])

    def _decide(self, rows: list[dict[str, Any]], results: list[list[JudgeResult]], summaries: list[JudgeSummary],
                invalid: list[Rejected], cache_dir: str) -> Outcome:
        c = self.config
        kept: list[dict[str, Any]] = []
        rejected: list[Rejected] = list(invalid)
        verified = flagged = incomplete = 0
        per_source: Counter[str] = Counter()
        for row, judged in zip(rows, results):
            errored = any(JUDGE_ERROR in r.reasons for r in judged)
            passed = not errored and passes(judged, c.rule)
            with_verdict = [r.verdict for r in judged if r.verdict is not None]
            decision = VerifyResult(
                passed=passed, reasons=[] if passed else ([JUDGE_ERROR] if errored else combined_reasons(judged)),
                rule=c.rule, judges=judged,
                reasoning_sound=majority([sound(v) for v in with_verdict], tie=False),
                clinically_unsafe=majority([unsafe(v) for v in with_verdict], tie=True))
            out = {**row, "verify": decision.model_dump(mode="json")}
            verified += passed
            if passed:
                per_source[source_of(row)] += 1
            incomplete += errored
            if passed or (c.mode == "flag" and not errored):
                flagged += not passed
                kept.append(out)
            else:
                rejected.append(Rejected(row=out, reasons=list(decision.reasons), detail=_detail(judged)))
        prompt_tokens = sum(s.prompt_tokens for s in summaries)
        completion_tokens = sum(s.completion_tokens for s in summaries)
        return Outcome(kept=kept, rejected=rejected, stats=dict(
            judges=summaries, rule=c.rule, mode=c.mode, rules=vars(c.rules()), quote_similarity=c.quote_similarity,
            shard=c.shard, verified=verified, flagged=flagged, incomplete=incomplete,
            verified_per_source=dict(sorted(per_source.items())),
            agreement=judge_agreement(results) if len(summaries) > 1 else {}, prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens, cache_dir=cache_dir,
            tokens_per_1k_rows=round(1000 * (prompt_tokens + completion_tokens) / len(rows), 1) if rows else None))


def _missing(row: dict[str, Any]) -> tuple[str, str] | None:
    """(field, what was expected) when a row lacks something the judge must be shown."""
    if not isinstance(row.get("trace_id"), str) or not row["trace_id"]:
        return "trace_id", "required field is missing"
    if not isinstance(row.get("question"), str) or not row["question"].strip():
        return "question", "no question text: pass the questions file (--questions), or verify the filter's output"
    options = row.get("options")
    if not isinstance(options, dict) or not options:
        return "options", "no options"
    if row.get("gold") not in options:
        return "gold", f"the gold letter {row.get('gold')!r} is not among the options"
    if not isinstance(row.get("reasoning"), str) or not row["reasoning"].strip():
        return "reasoning", "no reasoning to judge (verify reads the filter's output, whose rows carry it)"
    return None


def _detail(judged: list[JudgeResult]) -> str:
    """What the failing judges found, briefly: the first wrong step quoted, or why there was no verdict."""
    parts = []
    for r in judged:
        if r.passed:
            continue
        text = r.detail
        if r.verdict is not None:
            bad = next((s for s in r.verdict.steps if s.verdict == "wrong"), None)
            text = (f"wrong step {bad.step[:100]!r}: {bad.why}" if bad else
                    "; ".join(REASONS.get(code, code) for code in r.reasons))
        parts.append(f"{r.judge}: {text}")
    return " | ".join(parts)[:1000]


def judge_agreement(results: list[list[JudgeResult]]) -> dict[str, Any]:
    """Agreement between judges (Fleiss' kappa, pairwise Cohen's, percent) on the decision and on the two criteria
    clinicians also rate; rows whose request failed are left out, criteria count rows with two verdicts or more."""
    from review.stats import agreement  # the review stage's statistics (review is imported only here)

    ratings: dict[str, dict[str, dict[str, bool]]] = {"passed": {}, "reasoning_sound": {}, "clinically_unsafe": {}}
    for i, judged in enumerate(results):
        if any(JUDGE_ERROR in r.reasons for r in judged):
            continue
        ratings["passed"][str(i)] = {r.judge: r.passed for r in judged}
        verdicts = {r.judge: r.verdict for r in judged if r.verdict is not None}
        ratings["reasoning_sound"][str(i)] = {j: sound(v) for j, v in verdicts.items()}
        ratings["clinically_unsafe"][str(i)] = {j: unsafe(v) for j, v in verdicts.items()}
    return {name: agreement(by_row) for name, by_row in ratings.items()}


run_verify = VerifyStage.invoke

__all__ = ["VerifyConfig", "VerifyReport", "VerifyStage", "response_format", "run_verify"]
