"""filter: every trace gets a Verdict; the kept ones carry a verified answer and the canonical training text.

`filter_traces` works on records (for notebooks and `curate run`); `run_filter` reads and writes files (the CLI).
Answer parsing lives in `extract.py`, format checks in `checks.py`, pass rate and selection in `select.py`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from curate.filter.checks import (
    FORMAT_REASONS,
    GENERATION_ERROR,
    NOT_SELECTED,
    REASONS,
    UNKNOWN_QUESTION,
    WRONG_ANSWER,
    CheckConfig,
    check_trace,
    estimate_tokens,
)
from curate.filter.extract import Extraction, Options, extract_answer
from curate.filter.select import Candidate, check_selection, pass_rates, select
from curate.io import InputError, Rejected
from curate.records import FilteredTrace, Question, Trace, canonical_text, question_columns
from curate.stage_report import StageCounter, StageReport, write_stage_files

__all__ = [
    "REASONS",
    "CheckConfig",
    "Extraction",
    "UnknownQuestion",
    "extract_answer",
    "filter_traces",
    "judge",
    "run_filter",
]

STAGE = "filter"


class UnknownQuestion(ValueError):
    """A trace names a question the questions file does not have."""

    def __init__(self, trace_id: str, question_id: str) -> None:
        self.trace_id, self.question_id = trace_id, question_id
        super().__init__(f"trace {trace_id}: question_id {question_id!r} is not in the questions")


def _verdict_row(trace: Trace, question: Question | None, **verdict: Any) -> dict[str, Any]:
    row = trace.row()
    if question is not None:
        row.update(question_columns(question))
    row.update(verdict)
    return row


def judge(completion: str, options: dict[str, str] | Options, gold: str, *, reasoning_content: str | None = None,
          finish_reason: str | None = None, completion_tokens: int | None = None, prompt_name: str = "",
          config: CheckConfig = CheckConfig()) -> dict[str, Any]:
    """The Verdict columns of one response (without pass rate and selection, which need the other samples)."""
    found = extract_answer(completion, options, reasoning_content)
    reasons = check_trace(completion=completion, extraction=found, finish_reason=finish_reason,
                          completion_tokens=completion_tokens, prompt_name=prompt_name, config=config)
    correct = found.letter is not None and found.letter == gold
    if found.letter is not None and not correct:
        reasons.append(WRONG_ANSWER)
    format_ok = found.letter is not None and not any(r in FORMAT_REASONS for r in reasons)
    reasoning = found.reasoning.strip()
    return {
        "predicted": found.letter,
        "correct": correct,
        "format_ok": format_ok,
        "reasons": reasons,
        "reasoning": reasoning or None,
        "answer": found.letter,
        "text": canonical_text(reasoning, found.letter) if format_ok else None,
        "_style": found.style or "none",
    }


def _judge_chunk(chunk: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Worker body: judge a chunk of (completion, options, gold, reasoning_content, finish_reason, tokens, prompt,
    config) tuples. Module level so that worker processes can run it."""
    return [judge(c, o, g, reasoning_content=rc, finish_reason=fr, completion_tokens=ct, prompt_name=pn, config=cfg)
            for c, o, g, rc, fr, ct, pn, cfg in chunk]


#: Below this many traces a pool costs more than it saves.
MIN_PARALLEL = 5000
CHUNK = 1000


def filter_traces(
    traces: Iterable[Trace],
    questions: Mapping[str, Question] | Iterable[Question],
    *,
    max_tokens: int = CheckConfig.max_tokens,
    min_reasoning_words: int = CheckConfig.min_reasoning_words,
    select_policy: str = "all",
    k: int | None = None,
    select_by: str = "shortest",
    skip_invalid: bool = False,
    config: CheckConfig | None = None,
    workers: int = 1,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[list[FilteredTrace], list[Rejected], StageReport]:
    """Judge every trace; return (kept rows, rejected rows, report).

    A kept row is correct (its parsed letter is the gold letter), well-formed (no format reason) and selected by the
    policy (`select_policy` "all", or "k" with `k` per question chosen by `select_by` "shortest" or "diverse").
    Rejected rows carry their Verdict too, with the reason codes of `checks.REASONS`. `workers` > 1 judges in that
    many processes (each response is judged on its own, so the result is the same).
    """
    check_selection(select_policy, k, select_by)
    if config is None:
        config = CheckConfig(max_tokens=max_tokens, min_reasoning_words=min_reasoning_words)
    qmap = questions if isinstance(questions, Mapping) else {q.id: q for q in questions}
    counter = StageCounter(STAGE)
    traces = list(traces)
    verdicts: list[dict[str, Any] | None] = [None] * len(traces)
    questions_of: list[Question | None] = []
    work: list[tuple[int, tuple[Any, ...]]] = []
    options: dict[str, Options] = {}
    for i, trace in enumerate(traces):
        question = qmap.get(trace.question_id)
        questions_of.append(question)
        if question is None:
            if not skip_invalid:
                raise UnknownQuestion(trace.trace_id, trace.question_id)
            verdicts[i] = {"reasons": [UNKNOWN_QUESTION], "correct": False, "format_ok": False}
        elif trace.error or trace.completion is None:
            verdicts[i] = {"reasons": [GENERATION_ERROR], "correct": False, "format_ok": False}
        else:
            opts = options.get(question.id)
            if opts is None:
                opts = options[question.id] = Options(question.options)
            work.append((i, (trace.completion, opts if workers <= 1 else question.options, question.answer,
                             trace.reasoning_content, trace.finish_reason, (trace.usage or {}).get("completion_tokens"),
                             trace.prompt_name, config)))
    for i, verdict in zip((i for i, _ in work), _run_judges([args for _, args in work], workers, on_progress)):
        verdicts[i] = verdict
    styles = Counter(v.pop("_style") for v in verdicts if v is not None and "_style" in v)
    judged = list(zip(traces, questions_of, verdicts))

    # Pass rate over each question's samples (failed generations are not samples), then selection.
    rates = pass_rates([
        (t.question_id, None if GENERATION_ERROR in v["reasons"] or q is None else v["correct"]) for t, q, v in judged
    ])
    candidates = [
        Candidate(i, t.question_id, estimate_tokens(v["reasoning"] or ""), v["reasoning"] or "", t.trace_id)
        for i, (t, _q, v) in enumerate(judged)
        if v["correct"] and v["format_ok"] and not v["reasons"]
    ]
    chosen = select(candidates, policy=select_policy, k=k, by=select_by)
    candidate_ids = {c.index for c in candidates}

    kept: list[FilteredTrace] = []
    rejected: list[Rejected] = []
    teachers: dict[str, Counter[str]] = {}
    for i, (trace, question, verdict) in enumerate(judged):
        if i in candidate_ids and i not in chosen:
            verdict["reasons"] = [NOT_SELECTED]
        verdict["kept"] = i in chosen
        verdict["pass_rate"] = rates.get(trace.question_id)
        source = question.source if question is not None else None
        per_teacher = teachers.setdefault(trace.teacher, Counter())
        per_teacher["in"] += 1
        counter.seen(source)
        row = _verdict_row(trace, question, **verdict)
        if verdict["kept"]:
            counter.kept(source)
            per_teacher["out"] += 1
            kept.append(FilteredTrace.model_construct(**row))
        else:
            counter.dropped(verdict["reasons"], source)
            per_teacher.update(verdict["reasons"])
            rejected.append(Rejected(row=row, reasons=list(verdict["reasons"]), detail=_detail(verdict, question)))
    report = counter.report(
        per_teacher={name: dict(c) for name, c in sorted(teachers.items())},
        answer_styles=dict(styles.most_common()),
        questions=len(rates),
        mean_pass_rate=round(sum(rates.values()) / len(rates), 4) if rates else None,
        selection={"policy": select_policy, "k": k, "by": select_by},
        max_tokens=config.max_tokens,
        min_reasoning_words=config.min_reasoning_words,
    )
    return kept, rejected, report


def _run_judges(args: list[tuple[Any, ...]], workers: int, on_progress: Callable[[int], None] | None):
    """Judge in this process, or in a pool of `workers` processes (in order) for large inputs."""
    chunks = [args[i : i + CHUNK] for i in range(0, len(args), CHUNK)]
    done = 0
    if workers > 1 and len(args) >= MIN_PARALLEL:
        import multiprocessing

        with multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn").Pool(workers) as pool:
            for result in pool.imap(_judge_chunk, chunks):
                done += len(result)
                if on_progress is not None:
                    on_progress(done)
                yield from result
        return
    for chunk in chunks:
        result = _judge_chunk(chunk)
        done += len(result)
        if on_progress is not None:
            on_progress(done)
        yield from result


def _detail(verdict: dict[str, Any], question: Question | None) -> str:
    if question is None:
        return "no such question in the questions file"
    if WRONG_ANSWER in verdict["reasons"]:
        return f"predicted {verdict['predicted']}, gold {question.answer}"
    return "; ".join(REASONS.get(r, r) for r in verdict["reasons"])


def run_filter(
    input: str | os.PathLike[str],
    questions: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    rejected: str | os.PathLike[str] | None = None,
    report: str | os.PathLike[str] | None = None,
    skip_invalid: bool = False,
    max_tokens: int = CheckConfig.max_tokens,
    min_reasoning_words: int = CheckConfig.min_reasoning_words,
    select: str = "all",
    k: int | None = None,
    select_by: str = "shortest",
    workers: int = 1,
    config: CheckConfig | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> StageReport:
    """Read traces and questions, filter, write kept rows (and rejected rows and the JSON report when asked).

    Options are the CLI's (`select` is `--select`: "all" or "k"). Bad input (an invalid row, a repeated trace id, a
    trace whose question is missing) raises `InputError` before anything is written; with `skip_invalid` such rows
    become rejected rows instead (`invalid_input`, `unknown_question`).
    """
    check_selection(select, k, select_by)  # before reading anything
    from curate.io import read_records

    input, questions_path, output = Path(input), Path(questions), Path(output)
    traces, bad_traces = read_records(input, Trace, skip_invalid=skip_invalid)
    question_rows, bad_questions = read_records(questions_path, Question, skip_invalid=skip_invalid)
    seen: set[str] = set()
    unique: list[Trace] = []
    for t in traces:  # a repeated trace would count twice in its question's pass rate
        if t.trace_id in seen:
            if not skip_invalid:
                raise InputError(input, "duplicate trace_id", record_id=t.trace_id, field="trace_id")
            bad_traces.append(Rejected(row=t.row(), reasons=["invalid_input"], detail="duplicate trace_id"))
            continue
        seen.add(t.trace_id)
        unique.append(t)
    traces = unique
    qmap: dict[str, Question] = {}
    for q in question_rows:
        if q.id in qmap:
            raise InputError(questions_path, "duplicate question id", record_id=q.id, field="id")
        qmap[q.id] = q
    try:
        kept, dropped, stage_report = filter_traces(
            traces, qmap, skip_invalid=skip_invalid, max_tokens=max_tokens, min_reasoning_words=min_reasoning_words,
            select_policy=select, k=k, select_by=select_by, workers=workers, config=config, on_progress=on_progress)
    except UnknownQuestion as exc:
        raise InputError(input, f"question_id {exc.question_id!r} is not in {questions_path} (use --skip-invalid to "
                         "reject such traces instead)", record_id=exc.trace_id, field="question_id") from None
    if bad_traces:
        stage_report.rows_in += len(bad_traces)
        stage_report.rejected += len(bad_traces)
        stage_report.reasons["invalid_input"] = stage_report.reasons.get("invalid_input", 0) + len(bad_traces)
    stage_report.extra["invalid_questions"] = len(bad_questions)
    write_stage_files(kept, [*bad_traces, *dropped], output, rejected, STAGE)
    if report is not None:
        stage_report.write(report)
    return stage_report
