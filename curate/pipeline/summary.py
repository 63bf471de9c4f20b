"""What happened in a run, as plain numbers: the funnel, pass rates, lengths, contamination, PHI, review, tokens.

One home for these figures: `curate report` draws them and the dataset card prints them, so both always agree.
Each function reads a `RunDir` and returns `None` (or an entry with `status`) when its stage did not run.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from curate.pipeline.rundir import RunDir
from curate.question_rows import join_questions
from curate.records import source_of

#: The stages whose files hold traces with verdicts, latest first: where "the corpus so far" is read from.
CORPUS_STAGES = ("review", "scrub", "decontaminate", "dedupe", "filter")


def subject_of(question: dict[str, Any]) -> str:
    """A question's subject for per-subject figures: MedMCQA subject, MedQA exam step, else its source."""
    meta = question.get("meta") or {}
    return str(meta.get("subject_name") or meta.get("subject") or meta.get("exam_step") or "(none)")


def questions_by_id(run: RunDir) -> dict[str, dict[str, Any]]:
    return {q["id"]: q for q in run.rows("sources") or []}


def funnel(run: RunDir) -> list[dict[str, Any]]:
    """Per stage in run order: status, rows in/out, rejected, reasons, wall time."""
    out = []
    for name in run.order:
        entry = run.stage(name)
        counts = entry.get("counts") or {}
        out.append({"stage": name, "status": run.status(name),
                    "rows_in": counts.get("rows_in"), "rows_out": counts.get("rows_out", (entry.get("output") or {}).get("rows")),
                    "rejected": counts.get("rejected"), "reasons": counts.get("reasons") or {}, "wall_s": entry.get("wall_s")})
    return out


def corpus_stage(run: RunDir) -> str | None:
    """The latest finished stage whose output is the curated corpus."""
    return next((s for s in CORPUS_STAGES if run.done(s) and run.file(s)), None)


def pass_rates(run: RunDir) -> dict[str, Any] | None:
    """Share of traces the filter kept, per source and per subject."""
    if not run.done("filter"):
        return None
    questions = questions_by_id(run)
    by_source: dict[str, Counter[str]] = defaultdict(Counter)
    by_subject: dict[str, Counter[str]] = defaultdict(Counter)
    for kind in ("output", "rejected"):
        for row in join_questions(run.rows("filter", kind) or [], questions):
            verdict = "kept" if kind == "output" else "dropped"
            src = source_of(row)
            by_source[src][verdict] += 1
            by_subject[f"{src} / {subject_of(row)}"][verdict] += 1

    def rates(table: dict[str, Counter[str]]) -> dict[str, dict[str, float]]:
        return {k: {"kept": c["kept"], "total": c["kept"] + c["dropped"], "rate": c["kept"] / (c["kept"] + c["dropped"])}
                for k, c in sorted(table.items())}

    return {"by_source": rates(by_source), "by_subject": rates(by_subject)}


def words(text: str | None) -> int:
    return len(text.split()) if text else 0


def reasoning_lengths(run: RunDir) -> dict[str, dict[str, list[int]]] | None:
    """Reasoning length in words, per source, for kept traces (the corpus) and those the filter dropped."""
    stage = corpus_stage(run)
    if stage is None:
        return None
    questions = questions_by_id(run)
    out: dict[str, dict[str, list[int]]] = {"kept": defaultdict(list), "dropped": defaultdict(list)}
    for row in join_questions(run.rows(stage) or [], questions):
        out["kept"][source_of(row)].append(words(row.get("reasoning")))
    for row in join_questions(run.rows("filter", "rejected") or [], questions):
        out["dropped"][source_of(row)].append(words(row.get("reasoning") or row.get("completion")))
    return {k: dict(v) for k, v in out.items()}


def contamination(run: RunDir) -> dict[str, Any]:
    """Rows dropped as benchmark leaks, per benchmark (from the rejected rows' `contaminated_by`)."""
    status = run.status("decontaminate")
    config = (run.manifest.get("config") or {}).get("decontaminate") or {}
    result: dict[str, Any] = {"status": status, "benchmarks": config.get("benchmarks") or [], "per_benchmark": {},
                              "rejected": 0}
    if status != "done":
        return result
    per: Counter[str] = Counter()
    for row in run.rows("decontaminate", "rejected") or []:
        hits = row.get("contaminated_by")
        for hit in hits if isinstance(hits, list) else [hits]:
            if isinstance(hit, dict):
                per[str(hit.get("benchmark") or "unknown")] += 1
    report = run.report("decontaminate")
    if not per and report is not None:
        per.update({k: v for k, v in report.per_benchmark.items() if v})
    result.update(per_benchmark=dict(per.most_common()),
                  rejected=report.rejected if report is not None else sum(per.values()))
    return result


def phi(run: RunDir) -> dict[str, Any]:
    """PHI findings per entity type (counts only: the found values never leave the scrub stage)."""
    status = run.status("scrub")
    config = (run.manifest.get("config") or {}).get("scrub") or {}
    result: dict[str, Any] = {"status": status, "policy": config.get("policy"), "per_entity": {}, "rows_with_phi": 0,
                              "rows_dropped": 0}
    if status != "done":
        return result
    per: Counter[str] = Counter()
    rows_with = 0
    for kind in ("output", "rejected"):
        for row in run.rows("scrub", kind) or []:
            found = row.get("phi_found") or {}
            if isinstance(found, dict) and any(found.values()):
                rows_with += 1
                per.update({str(k): int(v) for k, v in found.items() if v})
    report = run.report("scrub")
    if not per and report is not None:  # the rows were not readable: the report's counts (never the searched list)
        per.update(report.findings)
    result.update(per_entity=dict(per.most_common()), rows_with_phi=rows_with,
                  rows_dropped=report.rejected if report is not None else 0)
    return result


def review(run: RunDir) -> dict[str, Any]:
    """Clinician review: the estimated error rate with its 95% interval, overall and per reviewed stratum, and the
    agreement on whether the answer is correct (Fleiss' kappa), from the review stage's typed report."""
    status = run.status("review")
    result: dict[str, Any] = {"status": status, "overall": None, "strata": {}, "kappa": None, "reviewers": {}}
    report = run.report("review") if status == "done" else None
    if report is None:
        return result

    def rate(n: int, value: float | None, interval: tuple[float, float] | None, errors: int | None = None) -> dict:
        low, high = interval or (None, None)
        return {"n": n, "errors": errors, "rate": value, "low": low, "high": high}

    overall = report.error_rate.overall
    if overall.estimate is not None:
        result["overall"] = rate(overall.reviewed, overall.estimate, overall.interval)
    result["strata"] = {s.stratum: rate(s.reviewed, s.rate, s.interval, s.errors)
                        for s in report.error_rate.per_stratum if s.reviewed}
    answer = report.agreement.get("answer_correct")
    result.update(kappa=answer.fleiss_kappa if answer else None, reviewers=report.reviewers, rows_in=report.rows_in,
                  rejected=report.rejected)
    return result


def token_use(run: RunDir) -> dict[str, Any] | None:
    """Requests, errors, tokens in/out and cost per teacher (prices from the config's [prices.TEACHER])."""
    if not run.done("generate"):
        return None
    prices = (run.manifest.get("config") or {}).get("prices") or {}
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for row in run.rows("generate") or []:
        c = table[str(row.get("teacher"))]
        usage = row.get("usage") or {}
        c["traces"] += 1
        c["errors"] += 1 if row.get("error") else 0
        c["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
        c["completion_tokens"] += int(usage.get("completion_tokens") or 0)
    teachers = {}
    for teacher, c in sorted(table.items()):
        price = prices.get(teacher)
        entry: dict[str, Any] = dict(c)
        if price:
            entry["cost_input"] = c["prompt_tokens"] / 1000 * price["cost_per_1k_input"]
            entry["cost_output"] = c["completion_tokens"] / 1000 * price["cost_per_1k_output"]
            entry["cost"] = entry["cost_input"] + entry["cost_output"]
        teachers[teacher] = entry
    return {"teachers": teachers, "priced": all("cost" in e for e in teachers.values())}
