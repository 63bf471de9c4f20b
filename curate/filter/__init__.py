"""filter: every trace gets a Verdict; the kept ones carry a verified answer and the canonical training text.

`FilterStage` is the stage (the CLI and `curate run`); `filter_traces` the same over records (notebooks);
`run_filter(traces, questions, output)` the same as one function. Answer parsing lives in `extract.py`, format checks
in `checks.py`, pass rate and selection in `select.py`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import Field, model_validator

from curate.filter.checks import CheckConfig, check_trace, estimate_tokens
from curate.filter.extract import Extraction, Options, extract_answer
from curate.filter.gold import audit_gold
from curate.filter.reasons import (
    FORMAT_REASONS,
    GENERATION_ERROR,
    GOLD_SUSPECT,
    NOT_SELECTED,
    REASONS,
    UNKNOWN_QUESTION,
    WRONG_ANSWER,
)
from curate.filter.select import Candidate, check_selection, pass_rates, select
from curate.io import InputError, Rejected
from curate.question_rows import load_question_records
from curate.records import (
    FilteredTrace,
    GoldAuditColumns,
    Question,
    QuestionColumns,
    Trace,
    canonical_text,
    question_columns,
)
from curate.stage import INVALID_INPUT, Batch, FileInput, Judgement, Outcome, RowStage, StageReport, option

__all__ = [
    "REASONS",
    "CheckConfig",
    "Extraction",
    "FilterConfig",
    "FilterReport",
    "FilterStage",
    "UnknownQuestion",
    "extract_answer",
    "filter_traces",
    "judge",
    "run_filter",
]

STAGE = "filter"


class FilterConfig(CheckConfig):
    select: Literal["all", "k"] = option("all", "all: keep every correct sample; k: at most --k per question")
    k: int | None = option(None, "samples to keep per question with --select k", ge=1)
    select_by: Literal["shortest", "diverse"] = option("shortest", "with --select k: shortest | diverse")
    workers: int = option(0, "processes judging traces (0: one per CPU, at most 8)", ge=0, volatile=True)
    gold_audit: bool = option(True, "flag questions whose samples agree on one letter that is not the gold letter "
                              "(the gold_suspect column; --no-gold-audit: off)")
    gold_min_votes: int = option(3, "gold audit: at least this many answered samples name that letter", ge=1)
    gold_min_share: float = option(0.75, "gold audit: and at least this share of the answered samples (1: every "
                                   "sample)", gt=0, le=1)
    exclude_gold_suspect: bool = option(False, "reject every trace of a gold-suspect question (reason gold_suspect) "
                                        "instead of only flagging it")

    @model_validator(mode="after")
    def _selection(self) -> FilterConfig:
        if self.select == "k" and self.k is None:
            raise ValueError("--select k needs --k N (samples to keep per question)")
        check_selection(self.select, self.k, self.select_by)
        return self


class FilterColumns(QuestionColumns, GoldAuditColumns, FilteredTrace):
    """What a filtered row carries: the trace, its Verdict, its question's columns and its gold-label audit."""


class FilterReport(StageReport):
    per_teacher: dict[str, dict[str, int]] = Field(default_factory=dict)
    answer_styles: dict[str, int] = Field(default_factory=dict, description="how the final answers were written")
    questions: int = 0
    mean_pass_rate: float | None = None
    selection: dict[str, Any] = Field(default_factory=dict)
    max_tokens: int
    min_reasoning_words: int
    invalid_questions: int = 0
    gold_audit: dict[str, Any] = Field(default_factory=dict, description="the audit's settings")
    gold_suspects: list[str] = Field(default_factory=list, description="ids of the gold-suspect questions")
    gold_suspects_per_source: dict[str, int] = Field(default_factory=dict)

    def details(self) -> list[str]:
        if self.mean_pass_rate is None:
            return []
        lines = [f"questions: {self.questions}, mean pass rate {self.mean_pass_rate:.2f}"]
        if self.gold_suspects:
            per = ", ".join(f"{k} {v}" for k, v in self.gold_suspects_per_source.items())
            lines.append(f"gold-suspect questions (samples agree on another letter): {len(self.gold_suspects)} ({per})"
                         + ("; their traces rejected" if self.gold_audit.get("exclude") else ""))
        return lines


class UnknownQuestion(ValueError):
    """A trace names a question the questions file does not have."""

    def __init__(self, trace_id: str, question_id: str) -> None:
        self.trace_id, self.question_id = trace_id, question_id
        super().__init__(f"trace {trace_id}: question_id {question_id!r} is not in the questions")


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


FILTER_QUESTIONS = FileInput("the Question file the traces were generated from", required=True)


class FilterStage(RowStage[FilterConfig, FilterReport]):
    """Judge every trace against its question's gold letter, check its format, keep the good ones (by the selection
    policy). Bad input (an invalid row, a repeated trace id, a trace whose question is missing) is an InputError
    before anything is written; with `skip_invalid` such rows become rejected rows (`invalid_input`,
    `unknown_question`)."""

    name = STAGE
    Config, Report, Columns = FilterConfig, FilterReport, FilterColumns
    files = {"questions": FILTER_QUESTIONS}
    record = Trace
    normalise_rows = True

    def __init__(self, config: FilterConfig | None = None, *, questions: Mapping[str, Question] | None = None,
                 **options: Any) -> None:
        super().__init__(config, **options)
        self.questions: Mapping[str, Question] = questions or {}
        self._options: dict[str, Options] = {}
        self._invalid_questions = 0

    def prepare(self, batch: Batch) -> None:
        if batch.files.get("questions") is not None:
            self.questions, bad = load_question_records(batch.files["questions"], skip_invalid=batch.skip_invalid)
            self._invalid_questions = len(bad)

    def process(self, batch: Batch) -> Outcome:
        self.prepare(batch)
        unique, duplicates = self._unique(batch)
        rows = [batch.rows[i] for i in unique]
        judgements = self.judge_all(rows, batch.progress)
        outcome = self.select(rows, judgements, batch, unique)
        outcome.rejected = [*duplicates, *outcome.rejected]
        return outcome

    def _unique(self, batch: Batch) -> tuple[list[int], list[Rejected]]:
        """Positions of the first row of each trace id; a repeat would count twice in its question's pass rate."""
        seen: set[str] = set()
        keep, repeated = [], []
        for i, row in enumerate(batch.rows):
            trace_id = row["trace_id"]
            if trace_id in seen:
                if not batch.skip_invalid:
                    raise InputError(batch.path or "<traces>", "duplicate trace_id", record_id=trace_id,
                                     field="trace_id", **batch.where(i))
                repeated.append(Rejected(row=row, reasons=[INVALID_INPUT], detail="duplicate trace_id"))
                continue
            seen.add(trace_id)
            keep.append(i)
        return keep, repeated

    def judge_rows(self, rows: Sequence[dict[str, Any]]) -> list[Judgement]:
        out = []
        for row in rows:
            question = self.questions.get(row["question_id"])
            if question is None:
                verdict = {"reasons": [UNKNOWN_QUESTION], "correct": False, "format_ok": False}
            elif row.get("error") or row.get("completion") is None:
                verdict = {"reasons": [GENERATION_ERROR], "correct": False, "format_ok": False}
            else:
                opts = self._options.get(question.id)
                if opts is None:
                    opts = self._options[question.id] = Options(question.options)
                verdict = judge(row["completion"], opts, question.answer, reasoning_content=row.get("reasoning_content"),
                                finish_reason=row.get("finish_reason"),
                                completion_tokens=(row.get("usage") or {}).get("completion_tokens"),
                                prompt_name=row.get("prompt_name") or "", config=self.config)
            out.append(Judgement(kept=False, columns=verdict, reasons=verdict["reasons"]))
        return out

    def select(self, rows: list[dict[str, Any]], judgements: list[Judgement], batch: Batch,
               positions: list[int]) -> Outcome:
        """Pass rate over each question's samples (failed generations are not samples), then selection."""
        c = self.config
        for row, j, pos in zip(rows, judgements, positions):
            if UNKNOWN_QUESTION in j.reasons and not batch.skip_invalid:
                if batch.path is None:
                    raise UnknownQuestion(row["trace_id"], row["question_id"])
                raise InputError(batch.path, f"question_id {row['question_id']!r} is not in "
                                 f"{batch.files.get('questions')} (use --skip-invalid to reject such traces instead)",
                                 record_id=row["trace_id"], field="question_id", **batch.where(pos))
        verdicts = [j.columns for j in judgements]
        styles = Counter(v.pop("_style") for v in verdicts if "_style" in v)
        rates = pass_rates([(row["question_id"], None if GENERATION_ERROR in v["reasons"] or UNKNOWN_QUESTION
                             in v["reasons"] else v["correct"]) for row, v in zip(rows, verdicts)])
        suspects = self.audit(rows, verdicts)
        for row, v in zip(rows, verdicts):
            if c.exclude_gold_suspect and row["question_id"] in suspects and v["correct"] and not v["reasons"]:
                v["reasons"] = [GOLD_SUSPECT]
        candidates = [Candidate(i, row["question_id"], estimate_tokens(v["reasoning"] or ""), v["reasoning"] or "",
                                row["trace_id"])
                      for i, (row, v) in enumerate(zip(rows, verdicts))
                      if v["correct"] and v["format_ok"] and not v["reasons"]]
        chosen = select(candidates, policy=c.select, k=c.k, by=c.select_by)
        candidate_ids = {cand.index for cand in candidates}
        kept: list[Any] = []
        rejected: list[Rejected] = []
        teachers: dict[str, Counter[str]] = {}
        for i, (row, verdict) in enumerate(zip(rows, verdicts)):
            if i in candidate_ids and i not in chosen:
                verdict["reasons"] = [NOT_SELECTED]
            verdict["kept"] = i in chosen
            verdict["pass_rate"] = rates.get(row["question_id"])
            audit = suspects.get(row["question_id"])
            verdict["gold_suspect"] = audit.model_dump() if audit is not None else None
            question = self.questions.get(row["question_id"])
            out = {**row, **(question_columns(question) if question is not None else {}), **verdict}
            per_teacher = teachers.setdefault(row["teacher"], Counter())
            per_teacher["in"] += 1
            if verdict["kept"]:
                per_teacher["out"] += 1
                kept.append(FilteredTrace.model_construct(**out))
            else:
                per_teacher.update(verdict["reasons"])
                rejected.append(Rejected(row=out, reasons=list(verdict["reasons"]), detail=_detail(verdict, question)))
        stats = dict(
            per_teacher={name: dict(counts) for name, counts in sorted(teachers.items())},
            answer_styles=dict(styles.most_common()),
            questions=len(rates),
            mean_pass_rate=round(sum(rates.values()) / len(rates), 4) if rates else None,
            selection={"policy": c.select, "k": c.k, "by": c.select_by},
            max_tokens=c.max_tokens,
            min_reasoning_words=c.min_reasoning_words,
            invalid_questions=self._invalid_questions,
            gold_audit={"enabled": c.gold_audit, "min_votes": c.gold_min_votes, "min_share": c.gold_min_share,
                        "exclude": c.exclude_gold_suspect},
            gold_suspects=sorted(suspects),
            gold_suspects_per_source=dict(sorted(Counter(self.questions[q].source for q in suspects).items())),
        )
        return Outcome(kept=kept, rejected=rejected, stats=stats)

    def audit(self, rows: list[dict[str, Any]], verdicts: list[dict[str, Any]]) -> dict[str, Any]:
        """The gold-label audit over every sample with a parsed answer (failed generations do not vote)."""
        if not self.config.gold_audit:
            return {}
        answers = [(row["question_id"], self.questions[row["question_id"]].answer, v.get("predicted"))
                   for row, v in zip(rows, verdicts) if row["question_id"] in self.questions]
        return audit_gold(answers, min_votes=self.config.gold_min_votes, min_share=self.config.gold_min_share)


def _detail(verdict: dict[str, Any], question: Question | None) -> str:
    if question is None:
        return "no such question in the questions file"
    audit = verdict.get("gold_suspect")
    suspect = f" (gold suspect: {audit['votes'][audit['suspect']]} of {audit['samples']} samples say " \
              f"{audit['suspect']})" if audit else ""
    if WRONG_ANSWER in verdict["reasons"]:
        return f"predicted {verdict['predicted']}, gold {question.answer}{suspect}"
    return "; ".join(REASONS.get(r, r) for r in verdict["reasons"]) + suspect


def filter_traces(traces: Iterable[Trace], questions: Mapping[str, Question] | Iterable[Question], *,
                  skip_invalid: bool = False, **options: Any) -> tuple[list[FilteredTrace], list[Rejected], FilterReport]:
    """`FilterStage` over records: (kept rows, rejected rows, report). Options are FilterConfig's."""
    qmap = questions if isinstance(questions, Mapping) else {q.id: q for q in questions}
    stage = FilterStage(**options, questions=qmap)
    rows = [t.row() for t in traces]
    outcome = stage.process(Batch(rows=rows, locs=list(range(len(rows))), path=None, files={},
                                  skip_invalid=skip_invalid))
    from curate.stage import Tally

    tally = Tally()
    tally.add(outcome.kept, outcome.rejected)
    return outcome.kept, outcome.rejected, FilterReport(stage=STAGE, **tally.counts(), **outcome.stats)


def run_filter(input: str | os.PathLike[str], questions: str | os.PathLike[str], output: str | os.PathLike[str],
               **options: Any) -> FilterReport:
    """Read traces and questions, filter, write the kept rows (and rejected rows and the report when asked)."""
    return FilterStage.invoke(input, output, questions=questions, **options)
