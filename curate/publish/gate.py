"""The publish gate: the rows themselves are checked, whatever the run's manifest or the columns say.

- answers: every row's canonical training text ends in its gold letter (`<answer>X</answer>`, X = gold);
- PHI: every published text column is scanned again with the scrub engine; any finding refuses, naming the rows and
  the types, never the values. Rows scrub wrote with the surrogate policy carry realistic fake values, which any
  scan finds: they are checked instead by the hash scrub stamped on their texts (`scrub_hash`: the text is exactly
  what scrub wrote);
- benchmarks: no row is an item of a known evaluation split (MedQA test, MedMCQA dev, PubMedQA test, and whatever
  else the run decontaminated against), by its id or by a near match of its question, unless the dataset is declared
  an evaluation set (the demo is one): the card then says so, and pushing to the Hub is refused.

A failed check refuses to publish; `force` publishes anyway and the card lists what it overrode, with counts.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

#: The splits the field evaluates on: never training data, whatever a run's config listed.
KNOWN_EVALUATION_SPLITS = ("medqa:test", "medmcqa:dev", "pubmedqa:test")
#: The columns a published row carries text in (the student prompt is built from question and options; the
#: training target `completion` from the reasoning).
PUBLISHED_TEXT = ("question", "context", "options", "reasoning", "reasoning_content", "teacher_completion", "completion")
CANONICAL = re.compile(r"<think>\n.*\n</think>\n<answer>([A-Z])</answer>", re.S)
SHOWN_IDS = 10


class Check(BaseModel):
    """One check's outcome: what was checked, and the rows that failed it (ids only)."""

    name: str
    checked: int = 0
    failed: int = 0
    rows: list[str] = Field(default_factory=list, description=f"ids of the first {SHOWN_IDS} failing rows")
    kinds: dict[str, int] = Field(default_factory=dict, description="what failed, counted (PHI types, benchmarks)")
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def describe(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in self.kinds.items())
        return (f"{self.failed} of {self.checked} rows {self.note}" + (f" ({kinds})" if kinds else "")
                + (f": {', '.join(self.rows)}" + (" ..." if self.failed > len(self.rows) else "") if self.rows else ""))


class GateReport(BaseModel):
    answers: Check
    phi: Check
    benchmarks: Check
    benchmarks_checked: list[str] = Field(default_factory=list)
    evaluation_set: bool = False

    @property
    def failed(self) -> list[Check]:
        return [c for c in (self.answers, self.phi, self.benchmarks) if not c.ok]


def _id(row: dict[str, Any], index: int) -> str:
    return str(row.get("trace_id") or row.get("id") or f"row {index}")


def _fail(check: Check, row_id: str, *kinds: str) -> None:
    check.failed += 1
    if len(check.rows) < SHOWN_IDS:
        check.rows.append(row_id)
    for kind in kinds:
        check.kinds[kind] = check.kinds.get(kind, 0) + 1


def check_answers(rows: list[dict[str, Any]]) -> Check:
    """The training target each published row carries (`completion`) ends in its gold letter."""
    check = Check(name="answers", checked=len(rows), note="whose final answer is not their gold letter")
    for i, row in enumerate(rows):
        match = CANONICAL.fullmatch(row.get("completion") or "")
        gold = row.get("gold")
        if match is None:
            _fail(check, _id(row, i), "no canonical <think>/<answer> text")
        elif gold is None:
            _fail(check, _id(row, i), "no gold letter")
        elif match.group(1) != gold:
            _fail(check, _id(row, i), "answer is not gold")
    return check


def check_phi(rows: list[dict[str, Any]], *, workers: int = 0, ner_model: str | None = None) -> Check:
    """Scan the published text columns with the scrub engine (all entity types)."""
    from curate.scrub.runner import ScrubConfig, ScrubStage, text_hash
    from curate.stage import Batch

    check = Check(name="phi", checked=len(rows), note="with PHI found by a scan of their published text")
    scan, positions = [], []
    for i, row in enumerate(rows):
        if row.get("scrub_policy") == "surrogate" and row.get("scrub_hash"):
            if row["scrub_hash"] != text_hash(row):
                _fail(check, _id(row, i), "text changed since surrogate scrub")
            continue
        scan.append({name: row.get(name) for name in PUBLISHED_TEXT if row.get(name) is not None})
        positions.append(i)
    if scan:
        config = ScrubConfig(workers=workers, **({"ner_model": ner_model} if ner_model else {}))
        stage = ScrubStage(config)
        outcome = stage.process(Batch(rows=scan, locs=list(range(len(scan))), path=None, files={}))
        for i, scanned in zip(positions, outcome.kept):
            if scanned["phi_found"]:
                _fail(check, _id(rows[i], i), *sorted(scanned["phi_found"]))
    return check


def check_benchmarks(rows: list[dict[str, Any]], specs: list[str], paths: dict[str, str] | None) -> tuple[Check, list[str]]:
    """Rows that are items of the benchmark splits `specs`: by id, and by a near match of their question."""
    from curate.decontaminate import BenchmarkIndex, load_benchmarks, parse_benchmark
    from curate.io import InputError
    from curate.textnorm import question_text

    check = Check(name="benchmarks", checked=len(rows), note="that are benchmark evaluation items")
    splits = {"{}:{}".format(*parse_benchmark(s)) for s in specs}
    loaded: dict[str, list[dict[str, Any]]] = {}
    missing = []
    for spec in sorted(splits):
        try:
            loaded.update(load_benchmarks([spec], paths))
        except (InputError, ValueError) as exc:
            missing.append(f"{spec} ({str(exc).splitlines()[0][:160]})")
    if missing:
        check.note += "; could not be checked against " + "; ".join(missing)
        check.failed = check.checked
        check.kinds = {"benchmark file unavailable": len(missing)}
        return check, sorted(loaded)
    matches = BenchmarkIndex(loaded).match([question_text(r) for r in rows]) if loaded else [None] * len(rows)
    for i, (row, match) in enumerate(zip(rows, matches)):
        by_id = ":".join(str(row.get("question_id") or row.get("id") or "").split(":")[:2])
        if by_id in splits:
            _fail(check, _id(row, i), by_id)
        elif match is not None:
            _fail(check, _id(row, i), match.benchmark)
    return check, sorted(loaded)


def run_gate(rows: list[dict[str, Any]], *, evaluation_set: bool, benchmarks: list[str],
             benchmark_paths: dict[str, str] | None, workers: int = 0) -> GateReport:
    answers = check_answers(rows)
    phi = check_phi(rows, workers=workers)
    if evaluation_set:
        bench, checked = Check(name="benchmarks", note="declared an evaluation set: not checked"), []
    else:
        bench, checked = check_benchmarks(rows, sorted({*KNOWN_EVALUATION_SPLITS, *benchmarks}), benchmark_paths)
    return GateReport(answers=answers, phi=phi, benchmarks=bench, benchmarks_checked=checked,
                      evaluation_set=evaluation_set)


def overridden(report: GateReport) -> list[str]:
    """What `force` published anyway, one line per failed check (for the card)."""
    return [check.describe() for check in report.failed]


__all__ = ["KNOWN_EVALUATION_SPLITS", "Check", "GateReport", "overridden", "run_gate"]
