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
CORPUS_STAGES = ("review", "scrub", "decontaminate", "dedupe", "verify", "filter")


def subject_of(question: dict[str, Any]) -> str:
    """A question's subject for per-subject figures: MedMCQA subject, MedQA exam step, else its source."""
    meta = question.get("meta") or {}
    return str(meta.get("subject_name") or meta.get("subject") or meta.get("exam_step") or "(none)")


def questions_by_id(run: RunDir) -> dict[str, dict[str, Any]]:
    return {q["id"]: q for q in run.rows("sources") or []}


def funnel(run: RunDir) -> list[dict[str, Any]]:
    """Per stage in run order: status, rows in/out, rejected, reasons (each rejected row once, by its primary reason)
    and the further reasons rejected rows also had (`other_reasons`, from the stage's report), the rows it could not
    finish (`incomplete`: a failed stage keeps its counts), wall time."""
    out = []
    for name in run.order:
        entry = run.stage(name)
        counts = entry.get("counts") or {}
        report = run.report(name) if entry.get("report") else None
        out.append({"stage": name, "status": run.status(name),
                    "rows_in": counts.get("rows_in"), "rows_out": counts.get("rows_out", (entry.get("output") or {}).get("rows")),
                    "rejected": counts.get("rejected"), "reasons": counts.get("reasons") or {},
                    "other_reasons": dict(report.other_reasons) if report is not None else {},
                    "incomplete": int(entry.get("incomplete") or 0), "error": entry.get("error"),
                    "wall_s": entry.get("wall_s")})
    return out


def stage_rows(run: RunDir, name: str) -> list[dict[str, Any]] | None:
    """A stage's output rows; for a stage that failed with unfinished rows (it wrote what it finished, and the
    manifest kept its counts), the file it wrote."""
    rows = run.rows(name) if run.done(name) else None
    entry = run.stage(name)
    if rows is None and run.status(name) == "failed" and entry.get("counts"):
        from curate.pipeline.stages import stage_named

        path = run.path / stage_named(name).output
        if path.is_file():
            from curate.io import read_rows

            rows = read_rows(path)
    return rows


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
        result["overall"].update(method=overall.method, coverage=overall.coverage)
    result["strata"] = {s.stratum: rate(s.reviewed, s.rate, s.interval, s.errors)
                        for s in report.error_rate.per_stratum if s.reviewed}
    answer = report.agreement.get("answer_correct")
    result.update(kappa=answer.fleiss_kappa if answer else None, reviewers=report.reviewers, rows_in=report.rows_in,
                  rejected=report.rejected,
                  judge_agreement={k: v.model_dump() for k, v in report.judge_agreement.items()},
                  gold_review=report.gold_review.model_dump())
    return result


def review_coverage_text(overall: dict[str, Any]) -> str:
    """How the corpus error-rate interval was computed and how much of the corpus it speaks for (card and report)."""
    method = overall.get("method") or "stratified estimate"
    coverage = overall.get("coverage")
    if coverage is None:
        return method
    text = f"{method}. The reviewed strata hold {100 * coverage:.1f}% of the corpus"
    if coverage < 1:
        text += f"; the {100 * (1 - coverage):.1f}% in strata never reviewed is outside the estimate"
    return text


def token_use(run: RunDir) -> dict[str, Any] | None:
    """Traces, errors, tokens in/out and cost per teacher (prices from the config's [prices.TEACHER]); a prompt is
    counted once per request, however many samples it was asked for."""
    if not run.done("generate"):
        return None
    prices = (run.manifest.get("config") or {}).get("prices") or {}
    table: dict[str, Counter[str]] = defaultdict(Counter)
    traces = run.rows("generate") or []
    for row in traces:
        c = table[str(row.get("teacher"))]
        c["traces"] += 1
        c["errors"] += 1 if row.get("error") else 0
    for request in requests_of(traces):  # the samples of one request (n > 1) paid its prompt once
        c = table[request["teacher"]]
        c["prompt_tokens"] += request["prompt_tokens"]
        c["completion_tokens"] += request["completion_tokens"]
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


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) by linear interpolation, or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def requests_of(traces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The answered teacher requests behind the traces, in the order they were queued (the trace file's): the samples
    one request answered (`n` > 1) are adjacent rows of one question and teacher sharing its latency, and each carries
    the request's whole prompt_tokens (paid once). A trace without a latency is a request of its own."""
    out: list[dict[str, Any]] = []
    for t in traces:
        if t.get("error"):
            continue
        latency, usage = t.get("latency_s"), t.get("usage") or {}
        tokens = int(usage.get("completion_tokens") or 0)
        key = (t.get("question_id"), t.get("teacher"), latency)
        last = out[-1] if out else None
        if latency is not None and last is not None and last["key"] == key:
            last["completion_tokens"] += tokens
            last["samples"] += 1
        else:
            out.append({"key": key, "teacher": str(t.get("teacher")), "latency_s": latency,
                        "prompt_tokens": int(usage.get("prompt_tokens") or 0), "completion_tokens": tokens,
                        "samples": 1})
    return out


def generation(run: RunDir) -> dict[str, Any] | None:
    """The teacher calls: requests, responses, errors by kind (final errors, and failed attempts that were retried),
    latency per request (quantiles and every value), completion tokens per second per request in the order sent,
    the overall throughput (from the generate report), finish reasons. None when generate wrote no report."""
    report = run.report("generate") if run.stage("generate").get("report") else None
    if report is None:
        return None
    traces = stage_rows(run, "generate") or []
    requests = [r for r in requests_of(traces) if r["latency_s"] is not None]
    latencies = [r["latency_s"] for r in requests]
    finish = Counter(str(t.get("finish_reason")) for t in traces if not t.get("error"))
    wall = report.generation_s or None
    return {"status": run.status("generate"), "incomplete": report.incomplete, "rows_out": report.rows_out,
            "requests": report.requests, "responses": report.responses, "generated": report.generated,
            "from_cache": report.from_cache, "failed": report.failed,
            "errors_by_kind": dict(report.errors_by_kind), "failed_attempts_by_kind": dict(report.failed_attempts_by_kind),
            "generation_s": report.generation_s, "requests_per_s": report.requests_per_s,
            "tokens_per_s": report.completion_tokens / wall if wall else None,
            "prompt_tokens": report.prompt_tokens, "completion_tokens": report.completion_tokens,
            "latency": {"values": latencies, **{name: percentile(latencies, q) for name, q in
                                                (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))}},
            "request_tokens_per_s": [r["completion_tokens"] / r["latency_s"] if r["latency_s"] > 0 else None
                                     for r in requests],
            "finish_reasons": dict(finish.most_common()), "traces": len(traces)}


# ---------------------------------------------------------------- example traces (PHI-free)

#: Characters of each text an example shows: the start of the reasoning and its end (where the answer is).
HEAD_CHARS, TAIL_CHARS, QUESTION_CHARS, OPTION_CHARS, DETAIL_CHARS = 700, 300, 600, 160, 300


def clip(text: str | None, head: int, tail: int = 0) -> str | None:
    """`text` cut to about head + tail characters at word boundaries, saying how much was left out."""
    if text is None or len(text) <= (head + tail) * 5 // 4 + 20:  # cutting a few characters helps no one
        return text
    start, end = text[:head], text[len(text) - tail:] if tail else ""
    if " " in start:  # no word cut in two
        start = start.rsplit(None, 1)[0]
    if " " in end:
        end = end.split(None, 1)[-1]
    left_out = len(text) - len(start) - len(end)
    return f"{start} … [{left_out:,} characters left out] …" + (f" {end}" if end else "")


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    """The texts an example shows: question, context, options, the reasoning (the raw output when the filter could
    not find any), the stage's detail."""
    return {"question": row.get("question"), "context": row.get("context"), "options": row.get("options"),
            "reasoning": row.get("reasoning") or row.get("completion"), "detail": row.get("detail") or None}


def _scrub_verified(row: dict[str, Any]) -> bool:
    """The row's texts are exactly what the scrub stage wrote (its hash over them matches)."""
    from curate.scrub.runner import text_hash

    return bool(row.get("scrub_hash")) and row.get("scrub_hash") == text_hash(row) and bool(row.get("reasoning"))


def _scrub_options(run: RunDir) -> dict[str, Any]:
    """The run's scrub engine settings (redacting, one process): what the report scrubs examples with."""
    section = (run.manifest.get("config") or {}).get("scrub") or {}
    keep = ("entities", "allow_no_ner", "ner_model", "model", "tagger_threshold")
    return {**{k: section[k] for k in keep if section.get(k) is not None}, "policy": "redact", "workers": 1}


def scrub_examples(run: RunDir, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """Each row's shown texts, PHI-free: those scrub wrote (checked by their hash) as they are, everything else (the
    texts of rows rejected before scrub, every stage's detail) through the scrub engine now. Returns (texts per row,
    None) or ([], why) when the engine cannot be built."""
    shown = [_shown(r) for r in rows]
    verified = [_scrub_verified(r) for r in rows]
    todo = [{"question": s["question"], "context": s["context"], "options": s["options"], "reasoning": s["reasoning"],
             "text": s["detail"]} if not ok else {"text": s["detail"]} for s, ok in zip(shown, verified)]
    if not any(v for t in todo for v in t.values()):
        return shown, None
    from curate.scrub.runner import scrub_rows

    try:
        scrubbed, _, _ = scrub_rows(todo, **_scrub_options(run))
    except Exception as exc:  # no NER model, a broken install: show nothing rather than unscrubbed text
        return [], f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    out = []
    for s, ok, clean in zip(shown, verified, scrubbed):
        texts = dict(s) if ok else {k: clean.get(k) for k in ("question", "context", "options", "reasoning")}
        texts["detail"] = clean.get("text")
        out.append(texts)
    return out, None


def _example(row: dict[str, Any], texts: dict[str, Any], stage: str | None) -> dict[str, Any]:
    options = texts.get("options") if isinstance(texts.get("options"), dict) else {}
    return {"trace_id": row.get("trace_id"), "question_id": row.get("question_id"), "source": source_of(row),
            "teacher": row.get("teacher"), "stage": stage, "reasons": list(row.get("reasons") or []) if stage else [],
            "gold": row.get("gold"), "predicted": row.get("predicted") or row.get("answer"),
            "question": clip(texts.get("question"), QUESTION_CHARS),
            "context": clip(texts.get("context"), QUESTION_CHARS // 2),
            "options": {k: clip(v, OPTION_CHARS) for k, v in options.items() if v is not None},
            "reasoning": clip(texts.get("reasoning"), HEAD_CHARS, TAIL_CHARS),
            "detail": clip(texts.get("detail"), DETAIL_CHARS)}


def example_traces(run: RunDir, *, kept: int = 3, per_reason: int = 2) -> dict[str, Any]:
    """A few kept traces (from the curated corpus, sources in turn) and, per stage, a few rejected ones for each
    primary reason; every text PHI-free (see `scrub_examples`), long texts cut (`clip`)."""
    questions = questions_by_id(run)
    picked: list[tuple[dict[str, Any], str | None]] = []
    stage = corpus_stage(run)
    if stage is not None:
        by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in join_questions(run.rows(stage) or [], questions):
            by_source[source_of(row)].append(row)
        rounds = [rows[i] for i in range(max(map(len, by_source.values()), default=0))
                  for _, rows in sorted(by_source.items()) if i < len(rows)]
        picked += [(row, None) for row in rounds[:kept]]
    for name in run.order:
        by_reason: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in join_questions(run.rows(name, "rejected") or [], questions):
            if row.get("question") or row.get("reasoning") or row.get("completion"):
                by_reason[(row.get("reasons") or ["unspecified"])[0]].append(row)
        for rows in by_reason.values():  # one of each source first, then the rest, in file order
            seen: set[str] = set()
            first, rest = [], []
            for row in rows:
                (rest if source_of(row) in seen else first).append(row)
                seen.add(source_of(row))
            picked += [(row, name) for row in (first + rest)[:per_reason]]
    texts, unavailable = scrub_examples(run, [row for row, _ in picked])
    result: dict[str, Any] = {"kept": [], "rejected": {}, "unavailable": unavailable}
    for (row, name), shown in zip(picked, texts):
        example = _example(row, shown, name)
        if name is None:
            result["kept"].append(example)
        else:
            result["rejected"].setdefault(name, {}).setdefault(example["reasons"][0] if example["reasons"] else
                                                               "unspecified", []).append(example)
    return result


def verification(run: RunDir) -> dict[str, Any]:
    """The judges' check of the reasoning (`verify`): verified rows per source and reason, each judge with its prompt
    hash, tokens and cost (prices from the config's [prices.JUDGE]), and the judges' agreement."""
    status = run.status("verify")
    report = run.report("verify") if status == "done" else None
    if report is None:
        return {"status": status}
    prices = (run.manifest.get("config") or {}).get("prices") or {}
    judges = []
    for j in report.judges:
        entry: dict[str, Any] = j.model_dump()
        price = prices.get(j.model)
        if price:
            entry["cost"] = (j.prompt_tokens / 1000 * price["cost_per_1k_input"]
                             + j.completion_tokens / 1000 * price["cost_per_1k_output"])
        judges.append(entry)
    per_source = {name: {"rows_in": c.rows_in, "verified": report.verified_per_source.get(name, 0),
                         "rejected": c.rejected, "reasons": c.reasons} for name, c in report.per_source.items()}
    costs = [j.get("cost") for j in judges]
    return {"status": status, "rows_in": report.rows_in, "verified": report.verified, "rejected": report.rejected,
            "flagged": report.flagged, "mode": report.mode, "rule": report.rule, "reasons": report.reasons,
            "per_source": per_source, "judges": judges, "tokens": report.prompt_tokens + report.completion_tokens,
            "tokens_per_1k_rows": report.tokens_per_1k_rows,
            "cost": sum(costs) if costs and all(c is not None for c in costs) else None,
            "agreement": {k: v.model_dump() for k, v in report.agreement.items()}}


def gold_audit(run: RunDir) -> dict[str, Any] | None:
    """The filter's gold-label audit: the questions whose samples agree on another letter (ids only), per source."""
    report = run.report("filter") if run.done("filter") else None
    if report is None or not report.gold_audit.get("enabled"):
        return None
    return {"settings": report.gold_audit, "ids": report.gold_suspects, "per_source": report.gold_suspects_per_source}
