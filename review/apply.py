"""`review.apply_reviews`: turn clinicians' verdicts into decisions on the corpus and an estimate of its error rate.

Reviewed rows that are rejected are dropped (to the rejected side file, with reason codes) or flagged; every row gets
a `review` column (the decision and its votes, or null when the row was not reviewed). The report gives the
inter-annotator agreement, the error rate per stratum with 95% Wilson intervals and the stratified corpus estimate,
and per-reviewer counts; where the rows carry a judge's verdict (`curate verify`), how often the judge and the
clinicians agree, per criterion (Cohen's kappa with a 95% bootstrap interval); where clinicians answered whether a
gold-suspect question's answer key is right, the questions whose key they found wrong, whose rows are rejected
(`review_gold_wrong`): their "correct" traces agree with a wrong key.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, field_validator

from curate.io import InputError, Rejected, iter_rows, location
from curate.question_rows import load_questions
from curate.records import ReviewColumns, ReviewDecision
from curate.stage import Batch, FileInput, Outcome, Stage, StageConfig, StageReport, option
from review.dataset import ANSWER_CORRECT, GOLD_CORRECT, GOLD_QUESTION, PHI, REASONING_SOUND, UNSAFE
from review.items import STRATA_KEYS, strata_fields, stratum_of
from review.push import strata_option
from review.stats import StratumCount, agreement, cohen_kappa, cohen_kappa_interval, stratified_rate, wilson_interval
from review.verdict import CLINICALLY_UNSAFE, GOLD_WRONG, REASONING_UNSOUND, REASONS, RULES, decide, findings

REQUIRED_REVIEW_COLUMNS = ("trace_id", "reviewer", ANSWER_CORRECT, REASONING_SOUND, UNSAFE, PHI)


class Rate(BaseModel):
    reviewed: int
    errors: int
    rate: float | None
    interval: tuple[float, float] | None


class StratumRate(Rate):
    stratum: str
    population: int


class CorpusRate(BaseModel):
    """The stratified estimate over the reviewed strata (`coverage`: share of the corpus in them)."""

    estimate: float | None
    interval: tuple[float, float] | None
    effective_n: float | None
    reviewed: int
    coverage: float | None
    method: str | None = None  # how the interval was computed (shown on the card and the report)


class ErrorRates(BaseModel):
    overall: CorpusRate
    per_stratum: list[StratumRate]
    per_reason: dict[str, Rate]


class PairKappa(BaseModel):
    raters: list[str]
    items: int
    kappa: float | None


class Agreement(BaseModel):
    items: int
    fleiss_kappa: float | None
    percent_agreement: float | None
    cohen_kappa: list[PairKappa]


class JudgeClinicianAgreement(BaseModel):
    """The judge (`curate verify`) against the clinicians' decision on one criterion, over the reviewed rows that
    carry a verdict."""

    items: int
    kappa: float | None
    interval: tuple[float, float] | None = None
    percent_agreement: float | None
    judge_yes: int = 0
    clinicians_yes: int = 0


class GoldReview(BaseModel):
    """Clinicians on the gold-suspect questions: is the answer key right? (majority of their answers)"""

    reviewed: int = 0
    key_wrong: list[str] = []
    key_right: list[str] = []
    unsure: list[str] = []


class ReviewApplyConfig(StageConfig):
    mode: Literal["drop", "flag"] = option("drop", "drop rejected rows (to --rejected) or flag them")
    rule: Literal[RULES] = option("majority", "majority: most reviewers must agree (safety: any one); any: one is enough")  # type: ignore[valid-type]
    stratify: list[str] = option(default_factory=lambda: list(STRATA_KEYS), help="strata keys among source, subject, "
                                 "difficulty, as the sample was pushed (repeat or comma-separate; '' for none)")

    @field_validator("stratify", mode="before")
    @classmethod
    def _strata(cls, value: Any) -> list[str]:
        return strata_option(value)


class ReviewReport(StageReport):
    mode: str
    rule: str
    stratify: list[str]
    reviewed_rows: int
    rejected_by_review: int
    reviews_without_row: int
    error_rate: ErrorRates
    agreement: dict[str, Agreement]
    reviewers: dict[str, dict[str, int]]
    judge_agreement: dict[str, JudgeClinicianAgreement] = {}
    gold_review: GoldReview = GoldReview()

    def summary(self) -> str:
        return (f"{self.reviewed_rows} reviewed rows, {self.rejected_by_review} rejected "
                f"({'dropped' if self.mode == 'drop' else 'flagged'}); {self.rows_out} of {self.rows_in} rows")


def read_reviews(path: str | os.PathLike[str]) -> dict[str, list[dict[str, Any]]]:
    """Reviews file (from `pull`) -> {trace_id: [response rows]}; located errors for missing columns or duplicates."""
    path = Path(path)
    by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for loc, row in iter_rows(path):
        where = location(path, loc)
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


def clinician_labels(decision: dict[str, Any]) -> dict[str, bool]:
    """The clinicians' yes/no on what a judge also says: the row is accepted; its reasoning is sound (a majority does
    not find it unsound, as the decision counts); it is unsafe (any one reviewer, as the decision counts)."""
    n, votes = decision["n_reviewers"], decision["votes"]
    return {"verdict": decision["verdict"] == "accepted", "reasoning_sound": 2 * votes[REASONING_UNSOUND] < n,
            "clinically_unsafe": votes[CLINICALLY_UNSAFE] > 0}


def judge_labels(verify: dict[str, Any]) -> dict[str, bool | None]:
    """The judges' yes/no on the same criteria, from a row's `verify` column (None: the judges gave no verdict)."""
    return {"verdict": verify.get("passed"), "reasoning_sound": verify.get("reasoning_sound"),
            "clinically_unsafe": verify.get("clinically_unsafe")}


def judge_agreement(pairs: dict[str, list[tuple[bool, bool]]]) -> dict[str, dict[str, Any]]:
    """Per criterion: Cohen's kappa of (judge, clinicians) with its 95% bootstrap interval and percent agreement."""
    out = {}
    for criterion, labelled in pairs.items():
        judge, clinicians = [j for j, _ in labelled], [c for _, c in labelled]
        out[criterion] = {"items": len(labelled), "kappa": cohen_kappa(judge, clinicians),
                          "interval": cohen_kappa_interval(judge, clinicians),
                          "percent_agreement": sum(j == c for j, c in labelled) / len(labelled) if labelled else None,
                          "judge_yes": sum(judge), "clinicians_yes": sum(clinicians)}
    return out


def gold_review(reviews: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per gold-suspect question reviewed: the majority answer to "is the gold answer right?" (ties: unsure)."""
    answers: dict[str, list[str]] = defaultdict(list)
    for responses in reviews.values():
        for response in responses:
            if response.get(GOLD_CORRECT) in ("yes", "no", "unsure"):
                answers[str(response.get("question_id") or response["trace_id"])].append(response[GOLD_CORRECT])
    result: dict[str, Any] = {"reviewed": len(answers), "key_wrong": [], "key_right": [], "unsure": []}
    for qid, given in sorted(answers.items()):
        counts = Counter(given)
        top = counts.most_common()
        tied = len(top) > 1 and top[0][1] == top[1][1]
        label = "unsure" if tied else top[0][0]
        result[{"no": "key_wrong", "yes": "key_right", "unsure": "unsure"}[label]].append(qid)
    return result


REVIEWS_INPUT = FileInput("reviews file from `curate review pull`", required=True)
QUESTIONS_INPUT = FileInput("questions file, for subjects the rows do not carry")


class ReviewApplyStage(Stage[ReviewApplyConfig, ReviewReport]):
    """Apply the reviews (a `pull` file) to the curated file that was sampled. `stratify` must be the keys the sample
    was pushed with: the error rate is estimated per stratum and weighted by its share of the input."""

    name = "review"
    Config, Report, Columns = ReviewApplyConfig, ReviewReport, ReviewColumns
    files = {"reviews": REVIEWS_INPUT, "questions": QUESTIONS_INPUT}

    def process(self, batch: Batch) -> Outcome:
        c = self.config
        keys = tuple(c.stratify)
        by_trace = read_reviews(batch.files["reviews"])
        question_rows = load_questions(batch.files["questions"]) if batch.files["questions"] else None
        kept: list[dict[str, Any]] = []
        dropped: list[Rejected] = []
        decisions: dict[str, dict[str, Any]] = {}
        population: Counter[str] = Counter()
        stratum_by_trace: dict[str, str] = {}
        gold = gold_review(by_trace)
        key_wrong = set(gold["key_wrong"])
        pairs: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
        for row in batch.rows:
            question = (question_rows or {}).get(row.get("question_id"))
            stratum = stratum_of(strata_fields(row, question), keys)
            population[stratum] += 1
            trace_id = row.get("trace_id")
            responses = by_trace.get(trace_id) if trace_id is not None else None
            review = None
            if responses:
                review = ReviewDecision(**decide(responses, c.rule), stratum=stratum).model_dump(mode="json")
                decisions[trace_id] = review
                stratum_by_trace[trace_id] = stratum
            out = {**row, "review": review}
            if review is not None and isinstance(row.get("verify"), dict):
                for criterion, judged in judge_labels(row["verify"]).items():
                    if judged is not None:
                        pairs[criterion].append((bool(judged), clinician_labels(review)[criterion]))
            if row.get("question_id") in key_wrong and c.mode == "drop":
                dropped.append(Rejected(row=out, reasons=[GOLD_WRONG], detail="clinicians found this question's "
                                        "answer key wrong (gold-suspect review)"))
            elif review is not None and review["verdict"] == "rejected" and c.mode == "drop":
                dropped.append(Rejected(row=out, reasons=review["reasons"], detail="; ".join(review["comments"])))
            else:
                kept.append(out)
        statistics = review_statistics(decisions, by_trace, dict(population), stratum_by_trace)
        return Outcome(kept=kept, rejected=dropped, stats=dict(
            mode=c.mode, rule=c.rule, stratify=list(keys), reviewed_rows=len(decisions),
            rejected_by_review=sum(1 for d in decisions.values() if d["verdict"] == "rejected"),
            reviews_without_row=len({t for t, responses in by_trace.items() if t not in decisions
                                     and not any(r.get(GOLD_QUESTION) == "yes" for r in responses)}), **statistics,
            judge_agreement=judge_agreement(pairs), gold_review=gold))


def apply_reviews(input: str | os.PathLike[str], reviews: str | os.PathLike[str], output: str | os.PathLike[str],
                  **options: Any) -> ReviewReport:
    """Apply the reviews in `reviews` to the curated file `input`; write `output` (and the rejected file and report
    when asked). Options are ReviewApplyConfig's, plus `questions` (subjects the rows do not carry)."""
    return ReviewApplyStage.invoke(input, output, reviews=reviews, **options)
