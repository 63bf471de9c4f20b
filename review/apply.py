"""`review.apply_reviews`: turn clinicians' verdicts into decisions on the corpus and an estimate of its error rate.

Reviewed rows that are rejected are dropped (to the rejected side file, with reason codes) or flagged; every row gets
a `review` column (the decision and its votes, or null when the row was not reviewed). The report gives the
inter-annotator agreement, the error rate per stratum with 95% Wilson intervals and the stratified corpus estimate,
and per-reviewer counts.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curate.io import InputError, Rejected, iter_rows, write_rows
from curate.stage_report import StageCounter, StageReport
from review.dataset import ANSWER_CORRECT, PHI, REASONING_SOUND, UNSAFE
from review.items import load_questions, strata_fields, stratum_of
from review.push import parse_strata
from review.stats import StratumCount, agreement, stratified_rate, wilson_interval
from review.verdict import REASONS, decide, findings

MODES = ("drop", "flag")
REQUIRED_REVIEW_COLUMNS = ("trace_id", "reviewer", ANSWER_CORRECT, REASONING_SOUND, UNSAFE, PHI)


def read_reviews(path: str | os.PathLike[str]) -> dict[str, list[dict[str, Any]]]:
    """Reviews file (from `pull`) -> {trace_id: [response rows]}; located errors for missing columns or duplicates."""
    path = Path(path)
    by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for loc, row in iter_rows(path):
        where = {"line": loc} if path.suffix in (".jsonl", ".json") else {"row": loc}
        for column in REQUIRED_REVIEW_COLUMNS:
            if column not in row:
                raise InputError(path, "required field is missing", field=column, record_id=row.get("trace_id"), **where)
        key = (str(row["trace_id"]), str(row["reviewer"]))
        if key in seen:
            raise InputError(path, f"reviewer {key[1]!r} appears twice for this trace", record_id=key[0], **where)
        seen.add(key)
        by_trace[key[0]].append(row)
    return dict(by_trace)


def _rate(errors: int, n: int) -> dict[str, Any]:
    return {"reviewed": n, "errors": errors, "rate": errors / n if n else None, "interval": wilson_interval(errors, n)}


def review_statistics(
    decisions: dict[str, dict[str, Any]],
    reviews: dict[str, list[dict[str, Any]]],
    population: dict[str, int],
    stratum_by_trace: dict[str, str],
) -> dict[str, Any]:
    """Agreement, error rates (per stratum, stratified overall, per reason) and per-reviewer counts."""
    errors_by_stratum: Counter[str] = Counter()
    reviewed_by_stratum: Counter[str] = Counter()
    for trace_id, decision in decisions.items():
        stratum = stratum_by_trace[trace_id]
        reviewed_by_stratum[stratum] += 1
        errors_by_stratum[stratum] += decision["verdict"] == "rejected"
    strata = [StratumCount(name, population[name], reviewed_by_stratum[name], errors_by_stratum[name])
              for name in sorted(population)]
    per_stratum = [{"stratum": s.name, "population": s.population, **_rate(s.errors, s.reviewed)} for s in strata]
    n = len(decisions)
    per_reason = {reason: _rate(sum(reason in d["reasons"] for d in decisions.values()), n) for reason in REASONS}

    ratings: dict[str, dict[str, dict[str, Any]]] = {q: {} for q in (ANSWER_CORRECT, REASONING_SOUND, UNSAFE, PHI)}
    ratings["problem_found"] = {}
    reviewers: dict[str, Counter[str]] = defaultdict(Counter)
    for trace_id in decisions:
        for response in reviews[trace_id]:
            reviewer = str(response["reviewer"])
            found = findings(response)
            for question in (ANSWER_CORRECT, REASONING_SOUND, UNSAFE, PHI):
                ratings[question].setdefault(trace_id, {})[reviewer] = response.get(question)
            ratings["problem_found"].setdefault(trace_id, {})[reviewer] = bool(found)
            counts = reviewers[reviewer]
            counts["submitted"] += 1
            counts["problem_found"] += bool(found)
            counts.update(found)
    return {
        "error_rate": {"overall": stratified_rate(strata), "per_stratum": per_stratum, "per_reason": per_reason},
        "agreement": {question: agreement(by_trace) for question, by_trace in ratings.items()},
        "reviewers": {name: dict(counts) for name, counts in sorted(reviewers.items())},
    }


def apply_reviews(
    input: str | os.PathLike[str],
    reviews: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    mode: str = "drop",
    rule: str = "majority",
    rejected: str | os.PathLike[str] | None = None,
    report: str | os.PathLike[str] | None = None,
    questions: str | os.PathLike[str] | None = None,
    stratify: str | Sequence[str] | None = None,
) -> StageReport:
    """Apply the reviews in `reviews` (a `pull` file) to the curated file `input`; write `output` and the report.

    `stratify` must be the keys the sample was pushed with (default source,subject,difficulty): the error rate is
    estimated per stratum and weighted by each stratum's share of `input`. `questions` supplies subjects when the
    rows do not carry them.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}")
    keys = parse_strata(stratify)
    by_trace = read_reviews(reviews)
    question_rows = load_questions(questions) if questions else None
    counter = StageCounter("review")
    kept: list[dict[str, Any]] = []
    dropped: list[Rejected] = []
    decisions: dict[str, dict[str, Any]] = {}
    population: Counter[str] = Counter()
    stratum_by_trace: dict[str, str] = {}
    for _, row in iter_rows(input):
        question = (question_rows or {}).get(row.get("question_id"))
        strata = strata_fields(row, question)
        stratum = stratum_of(strata, keys)
        population[stratum] += 1
        counter.seen(strata["source"])
        trace_id = row.get("trace_id")
        responses = by_trace.get(trace_id) if trace_id is not None else None
        review = None
        if responses:
            review = {**decide(responses, rule), "stratum": stratum}
            decisions[trace_id] = review
            stratum_by_trace[trace_id] = stratum
        out = {**row, "review": review}
        if review is not None and review["verdict"] == "rejected" and mode == "drop":
            counter.dropped(review["reasons"], strata["source"])
            dropped.append(Rejected(row=out, reasons=review["reasons"], detail="; ".join(review["comments"])))
        else:
            counter.kept(strata["source"])
            kept.append(out)
    statistics = review_statistics(decisions, by_trace, dict(population), stratum_by_trace)
    flagged = sum(1 for d in decisions.values() if d["verdict"] == "rejected")
    result = counter.report(
        mode=mode,
        rule=rule,
        stratify=list(keys),
        reviewed_rows=len(decisions),
        rejected_by_review=flagged,
        reviews_without_row=len(set(by_trace) - set(decisions)),
        **statistics,
    )
    write_rows(kept, output)
    if rejected is not None:
        write_rows([r.as_row("review") for r in dropped], rejected)
    if report is not None:
        result.write(report)
    return result
