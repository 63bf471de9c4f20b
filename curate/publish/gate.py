"""The publish gate: the rows themselves are checked, whatever the run's manifest or the columns say.

- answers: every row's canonical training text ends in its gold letter (`<answer>X</answer>`, X = gold), the gold
  letter is one of the row's options, and where the question file is known the gold letter is the question's own
  (a row whose `gold` was edited to match a wrong answer is refused, by id);
- PHI: every string the published files will contain is scanned again with the scrub engine, whatever its column,
  nested values and their keys included (only the identifiers and codes of `curate.records.NOT_TEXT` are passed over); any finding
  refuses, naming the rows and the types, never the values. Rows scrub wrote with the surrogate policy carry
  realistic fake values, which any scan finds: the columns scrub wrote are checked instead by the hash it stamped
  on them (`scrub_hash` over `scrub_columns`: the text is exactly what scrub wrote); their other strings are
  scanned;
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
#: The columns publish derives from others (`hub_row`): for a surrogate-scrubbed row they are what scrub wrote when
#: every column they come from (those the row has) is one scrub hashed.
DERIVED_FROM = {"prompt": ("question", "context", "options"),
                "messages": ("question", "context", "options", "text", "reasoning"),
                "completion": ("text", "reasoning"), "teacher_completion": ("completion",)}
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


def check_answers(rows: list[dict[str, Any]], known_gold: list[str | None] | None = None) -> Check:
    """The training target each published row carries (`completion`) ends in its gold letter; the gold letter is
    one of its options and, where the question file gives one (`known_gold`), the question's own."""
    check = Check(name="answers", checked=len(rows), note="whose final answer is not their gold letter")
    for i, row in enumerate(rows):
        match = CANONICAL.fullmatch(row.get("completion") or "")
        gold, expected = row.get("gold"), known_gold[i] if known_gold else None
        options = row.get("options")
        if expected is not None and gold is not None and gold != expected:
            _fail(check, _id(row, i), "gold differs from the question file")
        elif match is None:
            _fail(check, _id(row, i), "no canonical <think>/<answer> text")
        elif gold is None:
            _fail(check, _id(row, i), "no gold letter")
        elif isinstance(options, dict) and options.get(gold) is None:
            _fail(check, _id(row, i), "gold is not one of the options")
        elif match.group(1) != gold:
            _fail(check, _id(row, i), "answer is not gold")
    return check


def scrub_covered(row: dict[str, Any], source: dict[str, Any]) -> set[str]:
    """The published columns of a surrogate-scrubbed row that are exactly what scrub wrote (its hash over the
    columns it scanned matches the row as read), with the columns publish derived from them only; else none."""
    from curate.scrub.runner import HASHED_TEXT, text_hash

    if source.get("scrub_policy") != "surrogate" or source.get("scrub_hash") != text_hash(source):
        return set()
    hashed = set(source.get("scrub_columns") or HASHED_TEXT)
    covered = hashed - {"completion"}  # publish moved the raw output to teacher_completion: the name holds the target
    for name, parts in DERIVED_FROM.items():
        if all(p in hashed for p in parts if source.get(p) is not None) and name in row:
            covered.add(name)
    return covered


def keys_in(value: Any) -> list[str]:
    """The keys of every object nested in a value: a published struct's field names are published text too."""
    if isinstance(value, dict):
        return [k for key, item in value.items() for k in (str(key), *keys_in(item))]
    if isinstance(value, list | tuple):
        return [k for item in value for k in keys_in(item)]
    return []


def check_phi(rows: list[dict[str, Any]], sources: list[dict[str, Any]] | None = None, *, workers: int = 0,
              ner_model: str | None = None) -> Check:
    """Scan every string of the published rows with the scrub engine (all entity types), each distinct string once.
    `sources` are the rows as read (before publish added and moved columns): a surrogate-scrubbed row's texts are
    checked by its scrub hash over them."""
    from curate.scrub.runner import ScrubConfig, ScrubStage, scan_columns, text_hash, text_units
    from curate.stage import Batch

    check = Check(name="phi", checked=len(rows), note="with PHI found by a scan of their published text")
    sources = sources or rows
    texts: dict[str, int] = {}
    per_row: list[set[int]] = []
    for i, (row, source) in enumerate(zip(rows, sources)):
        if source.get("scrub_policy") == "surrogate" and source.get("scrub_hash") and \
                source["scrub_hash"] != text_hash(source):
            _fail(check, _id(row, i), "text changed since surrogate scrub")
            per_row.append(set())
            continue
        covered = scrub_covered(row, source)
        columns = [name for name in scan_columns(row) if name not in covered]
        found = [text for _, text in text_units(row, columns)] + [k for name in columns for k in keys_in(row[name])]
        per_row.append({texts.setdefault(text, len(texts)) for text in found})
    if texts:
        config = ScrubConfig(workers=workers, columns=["text"], **({"ner_model": ner_model} if ner_model else {}))
        scan = [{"text": text} for text in texts]
        outcome = ScrubStage(config).process(Batch(rows=scan, locs=list(range(len(scan))), path=None, files={}))
        found = [scanned["phi_found"] for scanned in outcome.kept]
        for i, ids in enumerate(per_row):
            kinds = sorted({kind for t in ids for kind in found[t]})
            if kinds:
                _fail(check, _id(rows[i], i), *kinds)
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
             benchmark_paths: dict[str, str] | None, workers: int = 0, known_gold: list[str | None] | None = None,
             sources: list[dict[str, Any]] | None = None) -> GateReport:
    """Every check of the published rows; `known_gold` is each row's gold letter from the question file (None where
    unknown), `sources` the rows as read (for the surrogate-scrub hash)."""
    answers = check_answers(rows, known_gold)
    phi = check_phi(rows, sources, workers=workers)
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
