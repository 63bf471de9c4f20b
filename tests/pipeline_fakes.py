"""Stand-ins for the stages that land on other branches (generate, filter, dedupe, decontaminate, scrub, review),
for testing the runner, the report and the dataset card before those branches merge.

Each has the file-level signature of the team brief, writes the columns DESIGN.md says that stage adds, a
StageReport and a rejected side file, and is deterministic (same input, same bytes), as the real stages are. Every
call is appended to `CALLS` (and to the file named by $CURATE_FAKE_LOG, for subprocess tests) so tests can see which
stages ran. The sources stage and publish are the real ones.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from curate.io import Rejected, read_rows, write_rows
from curate.pipeline.stages import STAGES
from curate.records import canonical_text, make_trace_id, stable_hash
from curate.stage_report import StageCounter

CALLS: list[str] = []


def _log(name: str) -> None:
    CALLS.append(name)
    if os.environ.get("CURATE_FAKE_LOG"):
        with open(os.environ["CURATE_FAKE_LOG"], "a") as fh:
            fh.write(name + "\n")


def _bucket(*parts: Any, n: int = 100) -> int:
    return int(stable_hash(*parts), 16) % n


def _finish(counter: StageCounter, kept: list[dict], dropped: list[Rejected], output: Path, rejected: Path | None,
            report: Path | None, stage: str, **extra: Any):
    write_rows(kept, output)
    if rejected is not None:
        write_rows([r.as_row(stage) for r in dropped], rejected)
    result = counter.report(**extra)
    if report is not None:
        result.write(report)
    return result


# ---------------------------------------------------------------- generate

WORDS = ("the patient presents with findings consistent with an inflammatory process so we weigh each option "
         "against the history the examination and the laboratory values before choosing").split()


def fake_generate(input: Path, output: Path, *, teacher: str, backend: str = "openai", base_urls: list[str] | None = None,
                  prompt: str | None = None, samples: int = 1, temperature: float = 0.7, top_p: float = 1.0,
                  max_tokens: int = 2048, seed: int | None = None, concurrency: int = 64, cache_dir: Path | None = None,
                  report: Path | None = None, **more: Any):
    _log("generate")
    if os.environ.get("CURATE_FAKE_SLOW_STAGE") == "generate":
        Path(os.environ["CURATE_FAKE_MARK"]).write_text("started")
        time.sleep(120)
    counter = StageCounter("generate")
    params = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens, "seed": seed}
    prompt_name = prompt or "mcq"
    prompt_hash = stable_hash("template", prompt_name)
    rows = []
    for q in read_rows(input):
        for i in range(samples):
            counter.seen(q["source"])
            b = _bucket(q["id"], i, seed)
            letters = sorted(q["options"])
            letter = q["answer"] if b < 70 else letters[(letters.index(q["answer"]) + 1) % len(letters)]
            n_words = 20 + _bucket(q["id"], i, "len", n=120) + (60 if q["source"] == "pubmedqa" else 0)
            reasoning = " ".join(WORDS[(k * 7 + b) % len(WORDS)] for k in range(n_words))
            if b % 4 == 0:
                reasoning = f"Dr. Smith saw the patient on 03/14/2021. {reasoning}"
            truncated = 90 <= b < 96
            completion = f"<think>\n{reasoning}" if truncated else f"<think>\n{reasoning}\n</think>\n<answer>{letter}</answer>"
            rows.append({
                "trace_id": make_trace_id(q["id"], teacher, prompt_hash, params, i), "question_id": q["id"],
                "sample_index": i, "teacher": teacher, "prompt_name": prompt_name, "prompt_hash": prompt_hash,
                "params": params, "completion": completion, "reasoning_content": None,
                "finish_reason": "length" if truncated else "stop",
                "usage": {"prompt_tokens": 40 + len(q["question"].split()) * 2, "completion_tokens": int(n_words * 1.3) + 8},
                "latency_s": None, "error": None})
            counter.kept(q["source"])
    return _finish(counter, rows, [], output, None, report, "generate", teacher=teacher, backend=backend)


# ---------------------------------------------------------------- filter

ANSWER = re.compile(r"<answer>([A-Z])</answer>")
THINK = re.compile(r"<think>\n(.*?)\n</think>", re.S)


def fake_filter(input: Path, questions: Path, output: Path, *, rejected: Path | None = None, report: Path | None = None,
                **options: Any):
    _log("filter")
    if os.environ.get("CURATE_FAKE_SLOW_STAGE") == "filter":
        Path(os.environ["CURATE_FAKE_MARK"]).write_text("started")
        time.sleep(120)
    min_words = int(options.get("min_words", 0))
    by_id = {q["id"]: q for q in read_rows(questions)}
    counter = StageCounter("filter")
    kept, dropped = [], []
    traces = read_rows(input)
    correct_by_q: dict[str, list[bool]] = {}
    for t in traces:
        m = ANSWER.search(t["completion"] or "")
        correct_by_q.setdefault(t["question_id"], []).append(bool(m) and m.group(1) == by_id[t["question_id"]]["answer"])
    for t in traces:
        q = by_id[t["question_id"]]
        counter.seen(q["source"])
        m, think = ANSWER.search(t["completion"] or ""), THINK.search(t["completion"] or "")
        predicted = m.group(1) if m else None
        reasons = []
        if t["finish_reason"] == "length" or think is None:
            reasons.append("truncated")
        if predicted is None:
            reasons.append("unparsable")
        elif predicted != q["answer"]:
            reasons.append("wrong_answer")
        reasoning = think.group(1) if think else None
        if reasoning is not None and len(reasoning.split()) < min_words:
            reasons.append("too_short")
        flags = correct_by_q[t["question_id"]]
        row = {**t, "source": q["source"], "split": q["split"], "question": q["question"], "options": q["options"],
               "context": q["context"], "meta": q["meta"], "predicted": predicted,
               "correct": predicted == q["answer"], "format_ok": think is not None and m is not None, "reasons": reasons,
               "reasoning": reasoning, "answer": predicted, "pass_rate": sum(flags) / len(flags),
               "text": canonical_text(reasoning, predicted) if reasoning and predicted else None, "kept": not reasons}
        if reasons:
            dropped.append(Rejected(row=row, reasons=reasons))
            counter.dropped(reasons, q["source"])
        else:
            kept.append(row)
            counter.kept(q["source"])
    return _finish(counter, kept, dropped, output, rejected, report, "filter")


# ---------------------------------------------------------------- dedupe, decontaminate, scrub


def fake_dedupe(input: Path, output: Path, *, rejected: Path | None = None, report: Path | None = None,
                threshold: float = 0.9, **options: Any):
    _log("dedupe")
    if os.environ.get("CURATE_FAKE_FAIL") == "dedupe":
        raise RuntimeError("simulated crash in dedupe")
    counter = StageCounter("dedupe")
    kept, dropped, first = [], [], {}
    for row in read_rows(input):
        counter.seen(row["source"])
        if row["question_id"] in first and _bucket(row["trace_id"], n=3) == 0:
            dropped.append(Rejected(row={**row, "dup_of": first[row["question_id"]]}, reasons=["near_duplicate_trace"]))
            counter.dropped(["near_duplicate_trace"], row["source"])
            continue
        first.setdefault(row["question_id"], row["trace_id"])
        kept.append({**row, "dup_of": None})
        counter.kept(row["source"])
    return _finish(counter, kept, dropped, output, rejected, report, "dedupe", threshold=threshold)


def fake_decontaminate(input: Path, output: Path, *, benchmarks: list[str], benchmark_paths: dict[str, str] | None = None,
                       rejected: Path | None = None, report: Path | None = None, **options: Any):
    _log("decontaminate")
    counter = StageCounter("decontaminate")
    kept, dropped, per_benchmark = [], [], dict.fromkeys(benchmarks, 0)
    for row in read_rows(input):
        counter.seen(row["source"])
        b = _bucket(row["question_id"], n=len(benchmarks) * 4)
        if b < len(benchmarks):
            hit = {"benchmark": benchmarks[b], "item_id": f"{benchmarks[b]}:{b}", "method": "ngram", "score": 1.0}
            per_benchmark[benchmarks[b]] += 1
            dropped.append(Rejected(row={**row, "contaminated_by": hit}, reasons=["contaminated"]))
            counter.dropped(["contaminated"], row["source"])
            continue
        kept.append({**row, "contaminated_by": None})
        counter.kept(row["source"])
    return _finish(counter, kept, dropped, output, rejected, report, "decontaminate", per_benchmark=per_benchmark)


def fake_scrub(input: Path, output: Path, *, policy: str = "redact", entities: list[str] | None = None,
               rejected: Path | None = None, report: Path | None = None, allow_no_ner: bool = False, **options: Any):
    _log("scrub")
    counter = StageCounter("scrub")
    kept, dropped, totals = [], [], {}
    for row in read_rows(input):
        counter.seen(row["source"])
        text = row["reasoning"] or ""
        found = {"PERSON": text.count("Dr. Smith"), "DATE_TIME": text.count("03/14/2021")}
        found = {k: v for k, v in found.items() if v}
        for k, v in found.items():
            totals[k] = totals.get(k, 0) + v
        if found and policy == "drop":
            dropped.append(Rejected(row={**row, "phi_found": found}, reasons=["phi"]))
            counter.dropped(["phi"], row["source"])
            continue
        reasoning = text.replace("Dr. Smith", "<PERSON>").replace("03/14/2021", "<DATE>")
        kept.append({**row, "reasoning": reasoning, "text": canonical_text(reasoning, row["answer"]), "phi_found": found})
        counter.kept(row["source"])
    return _finish(counter, kept, dropped, output, rejected, report, "scrub", entities=totals, policy=policy)


def wilson(errors: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = errors / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def fake_review(input: Path, output: Path, *, dataset: str | None, api_url: str | None, sample: int, stratify: list[str],
                reviewers_per_record: int, seed: int, reviews: Path | None, work_dir: Path, rejected: Path | None = None,
                report: Path | None = None, **options: Any):
    _log("review")
    counter = StageCounter("review")
    kept, dropped, strata = [], [], {}
    for index, row in enumerate(read_rows(input)):
        counter.seen(row["source"])
        verdict = None
        if index < sample:
            ok = _bucket(row["trace_id"], "review", n=10) != 0
            verdict = {"answer_correct": ok, "reasoning_sound": 4 if ok else 2, "unsafe": False, "phi": False,
                       "reviewers": ["clinician-1"]}
            s = strata.setdefault(row["source"], {"errors": 0, "n": 0})
            s["n"] += 1
            s["errors"] += 0 if ok else 1
            if not ok:
                dropped.append(Rejected(row={**row, "review": verdict}, reasons=["review_rejected"]))
                counter.dropped(["review_rejected"], row["source"])
                continue
        kept.append({**row, "review": verdict})
        counter.kept(row["source"])
    for s in strata.values():
        s["rate"] = s["errors"] / s["n"]
        s["low"], s["high"] = wilson(s["errors"], s["n"])
    errors, n = sum(s["errors"] for s in strata.values()), sum(s["n"] for s in strata.values())
    low, high = wilson(errors, n)
    overall = {"errors": errors, "n": n, "rate": errors / n if n else 0.0, "low": low, "high": high}
    return _finish(counter, kept, dropped, output, rejected, report, "review", dataset=dataset, error_rate=overall,
                   strata=strata, kappa=0.81, reviewers={"clinician-1": n})


FAKES = {"generate": fake_generate, "filter": fake_filter, "dedupe": fake_dedupe, "decontaminate": fake_decontaminate,
         "scrub": fake_scrub, "review": fake_review}


def fake_stages(**overrides: Any):
    """The real stage table with the not-yet-merged stages' entries replaced by these fakes."""
    entries = {**FAKES, **overrides}
    return tuple(replace(s, entry=entries[s.name]) if s.name in entries else s for s in STAGES)


# ---------------------------------------------------------------- synthetic source files and config


def write_source_files(folder: Path) -> dict[str, Path]:
    """Small native-format MedQA, MedMCQA and PubMedQA files (made up; the real ones are in ../shared/data)."""
    folder.mkdir(parents=True, exist_ok=True)
    organs = ["heart", "liver", "kidney", "lung", "brain", "pancreas", "spleen", "thyroid", "skin", "bone", "colon", "eye"]
    (folder / "medqa").mkdir(exist_ok=True)
    medqa = folder / "medqa" / "test.jsonl"
    with open(medqa, "w") as fh:
        for i, organ in enumerate(organs):
            options = {"A": f"{organ} infarction", "B": f"{organ} abscess", "C": f"{organ} carcinoma", "D": f"{organ} cyst"}
            answer = "ABCD"[i % 4]
            fh.write(json.dumps({"question": f"A {30 + i}-year-old presents with pain over the {organ}. "
                                 f"Which is the most likely diagnosis for case {i}?",
                                 "options": options, "answer": options[answer], "answer_idx": answer,
                                 "meta_info": "step1" if i % 2 else "step2&3"}) + "\n")
    medmcqa = folder / "dev.jsonl"
    subjects = ["Anatomy", "Pharmacology", "Pathology"]
    with open(medmcqa, "w") as fh:
        for i, organ in enumerate(organs[:9]):
            fh.write(json.dumps({"id": f"mm{i}", "question": f"Blood supply of the {organ} in variant {i} comes from:",
                                 "opa": "artery one", "opb": "artery two", "opc": "artery three", "opd": "artery four",
                                 "cop": 1 + i % 4, "choice_type": "single", "exp": None,
                                 "subject_name": subjects[i % 3], "topic_name": None}) + "\n")
    pubmed = folder / "pubmedqa"
    pubmed.mkdir(exist_ok=True)
    data, truth = {}, {}
    for i, organ in enumerate(organs[:6]):
        pmid = str(1000 + i)
        decision = ("yes", "no", "maybe")[i % 3]
        data[pmid] = {"QUESTION": f"Does treatment {i} improve {organ} outcomes?", "CONTEXTS": [f"We studied {organ} {i}."],
                      "LABELS": ["METHODS"], "MESHES": [], "YEAR": "2001", "final_decision": decision,
                      "LONG_ANSWER": "It depends."}
        if i % 2:
            truth[pmid] = decision
    (pubmed / "ori_pqal.json").write_text(json.dumps(data))
    (pubmed / "test_ground_truth.json").write_text(json.dumps(truth))
    return {"medqa": medqa, "medmcqa": medmcqa, "pubmedqa": pubmed / "ori_pqal.json"}


def config_text(files: dict[str, Path], run_dir: Path, *, extra: str = "", review: bool = True,
                decontaminate: bool = True, filter_options: str = "", concurrency: int = 8) -> str:
    return f"""
[run]
dir = "{run_dir}"
seed = 7

[[sources]]
name = "medqa"
path = "{files['medqa']}"

[[sources]]
name = "medmcqa"
path = "{files['medmcqa']}"

[[sources]]
name = "pubmedqa"
path = "{files['pubmedqa']}"

[generate]
teacher = "replay-teacher"
base_urls = ["http://127.0.0.1:9/v1"]
samples = 2
concurrency = {concurrency}

[filter]
{filter_options}

[decontaminate]
enabled = {str(decontaminate).lower()}
benchmarks = ["medqa:test", "medmcqa:dev", "pubmedqa:test"]

[review]
enabled = {str(review).lower()}
dataset = "spot-check"
sample = 12

[publish]
repo_id = "acme/medical-cot"

[prices."replay-teacher"]
cost_per_1k_input = 0.5
cost_per_1k_output = 1.5
{extra}
"""


def build_run(folder: Path, *, until: str | None = None, **config_options: Any) -> Path:
    """A finished (or, with `until`, partial) run directory made by the real runner over these stand-ins."""
    from curate.pipeline import parse_config, run_pipeline
    from curate.pipeline.config import tomllib

    files = write_source_files(folder / "src")
    run_dir = folder / "run"
    config = parse_config(tomllib.loads(config_text(files, run_dir, **config_options)))
    run_pipeline(config, stages=fake_stages(), until=until, echo=lambda _: None)
    return run_dir
