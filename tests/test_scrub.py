"""scrub: real presidio with the offline spaCy model and the clinical recognizers; no mocks.

The "no NER model" case is produced by naming a spaCy model package that is not installed (`--ner-model`), so the
real import fails: the narrowest boundary there is, and nothing is faked.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from curate.io import InputError, read_rows, write_rows
from curate.scrub import run_scrub, scrub_rows
from curate.scrub.engine import EngineConfig, NoNerModel, Scrubber
from curate.scrub.entities import ENTITIES
from tests.support.synthetic_phi import REQUIRED_KINDS, format_table, recall_table, synthetic_phi_notes

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

#: >= 50 eponyms, drug names and medical phrases that must come out unchanged.
MEDICAL_TERMS = [
    "Parkinson disease", "Graves disease", "Graves", "Cushing syndrome", "Hodgkin lymphoma", "Down syndrome",
    "a 45-year-old man", "Addison disease", "Alzheimer disease", "Crohn disease", "Hashimoto thyroiditis",
    "Huntington disease", "Kawasaki disease", "Marfan syndrome", "Turner syndrome", "Klinefelter syndrome",
    "Guillain-Barré syndrome", "Wilson disease", "Bell palsy", "Raynaud phenomenon", "Sjögren syndrome",
    "Tourette syndrome", "Wernicke encephalopathy", "Kaposi sarcoma", "Burkitt lymphoma", "Ewing sarcoma",
    "Wilms tumor", "Hirschsprung disease", "Meckel diverticulum", "Zollinger-Ellison syndrome", "Whipple procedure",
    "Barrett esophagus", "Paget disease", "Conn syndrome", "Sheehan syndrome", "Horner syndrome", "Babinski sign",
    "Kernig sign", "Murphy sign", "Virchow node", "Osler nodes", "Janeway lesions", "Kussmaul breathing",
    "Cheyne-Stokes respiration", "Tay-Sachs disease", "Gaucher disease", "von Willebrand disease",
    "Wolff-Parkinson-White syndrome", "Lasix", "Coumadin", "Tylenol", "Zoloft", "Lipitor", "Plavix", "Humira",
    "Keytruda", "metformin", "lisinopril", "atorvastatin", "warfarin", "heparin", "Gram stain", "Apgar score",
    "Glasgow Coma Scale",
]


@pytest.fixture(scope="session")
def scrubber() -> Scrubber:
    """One engine for the session (building it loads spaCy and presidio: seconds)."""
    return Scrubber.build(EngineConfig(entities=tuple(ENTITIES)))


def test_synthetic_phi_recall_per_kind(scrubber):
    # A seed other than the one the recognizers were developed on (13): fresh names, dates, formats.
    notes = synthetic_phi_notes(240, seed=2026)
    table = recall_table(notes, scrubber.find([n.text for n in notes]))
    print("\n" + format_table(table))
    for kind in REQUIRED_KINDS:
        assert table[kind]["n"] >= 50, kind
        assert table[kind]["recall"] >= 0.98, (kind, table[kind])
    for kind, row in table.items():  # the other Safe Harbor kinds too, with a looser bar
        assert kind == "_keep" or row["recall"] >= 0.9, (kind, row)
    assert table["_keep"]["found"] == 0, "medical phrases in the notes were touched"


def test_medical_language_is_not_altered(scrubber):
    assert len(MEDICAL_TERMS) >= 50
    templates = ["The patient was diagnosed with {} last year.", "{} was considered in the differential.",
                 "Options: {} | hypertension | asthma"]
    texts = [t.format(term) for term in MEDICAL_TERMS for t in templates]
    changed = [(text, out) for text, (out, _) in zip(texts, scrubber.scrub_texts(texts)) if out != text]
    assert changed == []


def test_dates_years_and_ages(scrubber):
    texts = ["She was admitted on March 3, 2021 and again on 04/15/2022.", "He had a stroke in 2019.",
             "A 92-year-old woman and a 45-year-old man.", "Aged 97, he lives alone.", "DOB 1931-07-02."]
    out = [t for t, _ in scrubber.scrub_texts(texts)]
    assert out[0] == "She was admitted on <DATE> and again on <DATE>."
    assert out[1] == texts[1]  # a bare year is not PHI
    assert out[2] == "A <AGE>-year-old woman and a 45-year-old man."
    assert out[3] == "Aged <AGE>, he lives alone."
    assert out[4] == "DOB <DATE>."


def _trace_rows():
    note = ("Mr. Harold Finch, MRN 4829101, seen 03/14/2022 at 12 Oak Street, Springfield, IL 62704. "
            "Call (217) 555-0142 or hfinch@example.com. He has Parkinson disease.")
    return [
        {"trace_id": "t1", "question_id": "custom:test:1", "question": note, "options": {"A": "Graves disease",
         "B": "Dr. Maria Lopez"}, "completion": "<think>Harold Finch, 93 years old, SSN 078-05-1120.</think>",
         "reasoning": None},
        {"trace_id": "t2", "question_id": "custom:test:2", "question": "A 45-year-old man has Cushing syndrome.",
         "options": {"A": "yes", "B": "no"}, "completion": "Hodgkin lymphoma is likely; answer A."},
    ]


PHI_VALUES = ["Harold", "Finch", "4829101", "03/14/2022", "12 Oak Street", "Springfield", "62704", "555-0142",
              "hfinch@example.com", "Maria", "Lopez", "078-05-1120"]


def test_redact_typed_placeholders_and_phi_found():
    kept, rejected, summary = scrub_rows(_trace_rows(), workers=1)
    assert rejected == []
    first, second = kept
    blob = json.dumps(first)
    for value in PHI_VALUES:
        assert value not in blob, value
    assert first["question"].startswith("Mr. <PERSON>, MRN <MRN>, seen <DATE> at <ADDRESS>, <LOCATION>, IL <ZIP>.")
    assert first["options"] == {"A": "Graves disease", "B": "Dr. <PERSON>"}
    assert "<AGE> years old, SSN <SSN>" in first["completion"]
    assert first["phi_found"]["PERSON"] == 3 and first["phi_found"]["SSN"] == 1
    assert second["phi_found"] == {} and second["question"] == _trace_rows()[1]["question"]
    assert summary.rows_with_phi == 1 and summary.findings["PERSON"] == 3


def test_drop_policy_rejects_rows_and_writes_them_redacted(tmp_path):
    src, out, rej, rep = (tmp_path / n for n in ("in.jsonl", "out.parquet", "rej.jsonl", "report.json"))
    write_rows(_trace_rows(), src)
    report = run_scrub(src, out, policy="drop", rejected=rej, report=rep, workers=1)
    assert [r["trace_id"] for r in read_rows(out)] == ["t2"]
    dropped = read_rows(rej)
    assert [r["trace_id"] for r in dropped] == ["t1"] and dropped[0]["reasons"] == ["phi_found"]
    assert not any(v in rej.read_text() for v in PHI_VALUES)
    assert report.rows_in == 2 and report.rows_out == 1 and report.reasons == {"phi_found": 1}


def test_cli_report_counts_types_and_never_values(tmp_path, cli):
    notes = synthetic_phi_notes(20, seed=7)
    rows = [{"trace_id": f"t{i}", "question_id": f"custom:test:{i}", "question": "Which diagnosis fits?",
             "options": {"A": "Graves disease", "B": "Down syndrome"}, "completion": n.text} for i, n in enumerate(notes)]
    src, out, rep = tmp_path / "traces.jsonl", tmp_path / "clean.parquet", tmp_path / "report.json"
    write_rows(rows, src)
    proc = cli("scrub", "-i", src, "-o", out, "--report", rep, "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    report_text = rep.read_text()
    report = json.loads(report_text)
    assert report["stage"] == "scrub" and report["rows_in"] == 20 and report["rows_out"] == 20
    assert set(report["findings"]) >= {"PERSON", "DATE", "PHONE", "EMAIL", "SSN", "MRN"}
    values = {n.text[s:e] for n in notes for s, e, _ in n.spans}
    leaked = [v for v in values if len(v) >= 4 and (v in report_text or v in proc.stdout + proc.stderr)]
    assert leaked == []
    clean = read_rows(out)
    assert all(isinstance(r["phi_found"], dict) and r["phi_found"] for r in clean)
    assert clean[0]["options"] == {"A": "Graves disease", "B": "Down syndrome"}
    assert sum(sum(r["phi_found"].values()) for r in clean) == sum(report["findings"].values())


def test_fail_closed_without_ner_model(tmp_path, cli):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_rows(_trace_rows(), src)
    with pytest.raises(NoNerModel, match="--allow-no-ner"):
        run_scrub(src, out, ner_model="curate_no_such_spacy_model", workers=1)
    assert not out.exists()
    proc = cli("scrub", "-i", src, "-o", out, "--ner-model", "curate_no_such_spacy_model")
    assert proc.returncode == 2 and "no NER model" in proc.stderr and not out.exists()
    # With the explicit flag it runs on patterns only, and says so in the report.
    report = run_scrub(src, out, ner_model="curate_no_such_spacy_model", allow_no_ner=True, workers=1)
    assert report.ner_model is None
    text = out.read_text()
    assert "<SSN>" in text and "<MRN>" in text and "078-05-1120" not in text


def test_bad_input_is_located_and_writes_nothing(tmp_path, cli):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('{"trace_id": "a", "question": "ok"}\n{"trace_id": "b", "question": "x", "options": ["A", "B"]}\n')
    with pytest.raises(InputError) as err:
        run_scrub(src, out, workers=1)
    assert err.value.line == 2 and err.value.field == "options" and err.value.record_id == "b"
    proc = cli("scrub", "-i", src, "-o", out)
    assert proc.returncode == 2 and re.search(r"in\.jsonl:2 \(id=b\) field 'options'", proc.stderr)
    assert not out.exists()
    with pytest.raises(ValueError, match="unknown entity"):
        run_scrub(src, out, entities=["NAMES"], skip_invalid=True, workers=1)


@pytest.mark.slow
def test_parallel_matches_serial():
    rows = [{"trace_id": f"t{i}", "completion": n.text} for i, n in enumerate(synthetic_phi_notes(40, seed=3))]
    serial, _, _ = scrub_rows([dict(r) for r in rows], workers=1, batch_rows=8)
    parallel, _, summary = scrub_rows([dict(r) for r in rows], workers=2, batch_rows=8)
    assert summary.workers == 2
    assert parallel == serial


@pytest.fixture(scope="module")
def scrubbed_benchmark_questions(shared_data):
    """MedQA test + MedMCQA dev (no PHI in them), scrubbed with the default engine: (original rows, kept rows)."""
    from sources import load_source

    bench = shared_data / "benchmarks"
    questions = (load_source("medqa", str(bench / "medqa/test.4_options.jsonl")).questions
                 + load_source("medmcqa", str(bench / "medmcqa/dev.jsonl")).questions)
    rows = [q.row() for q in questions]
    kept, _, summary = scrub_rows([dict(r) for r in rows], workers=2)
    altered = [r for r in kept if r["phi_found"]]
    print(f"\n{len(altered)}/{len(rows)} questions altered ({len(altered) / len(rows):.2%}); {summary.findings}")
    assert len(rows) > 5000
    return rows, kept


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_benchmark_questions_barely_altered(scrubbed_benchmark_questions):
    """A regression guard at the measured figure (78 of 5456 questions, 1.43% with the tagger, 1.26% rules alone:
    historical names in options, cities, ages over 89, a few dates): at most 1.5% change, and a question without
    findings is left exactly as it was."""
    rows, kept = scrubbed_benchmark_questions
    altered = [r for r in kept if r["phi_found"]]
    assert len(altered) <= 0.015 * len(rows)
    for row, original in zip(kept, rows):
        if not row["phi_found"]:
            assert row["question"] == original["question"] and row["options"] == original["options"]


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.xfail(strict=True, reason="issue 13/23 target (at most 1% of benchmark questions altered) not met: 1.43% "
                                       "with the tagger (1.26% rules alone)")
def test_real_benchmark_questions_meet_the_issue_target(scrubbed_benchmark_questions):
    rows, kept = scrubbed_benchmark_questions
    assert sum(1 for r in kept if r["phi_found"]) <= 0.01 * len(rows)


def test_ner_gate_and_overlap_merge():
    from types import SimpleNamespace

    from curate.scrub.engine import candidate_sentences, merge_findings

    # NER runs only where a finding could be believed: a listed first name, two capitalised words, a place cue.
    text = ("The patient presents with dyspnea. Seen by Dr. Smith today. John has asthma.\nno capitals here. "
            "She moved to Springfield. Lives in Lake Mary now. ACE inhibitors help.")
    chosen = [text[s:e].strip() for s, e in candidate_sentences(text)]
    assert chosen == ["John has asthma.", "She moved to Springfield.", "Lives in Lake Mary now."]
    found = [SimpleNamespace(start=0, end=10, entity_type="PHONE", score=0.75),
             SimpleNamespace(start=5, end=14, entity_type="FAX", score=0.95),
             SimpleNamespace(start=20, end=25, entity_type="DATE", score=0.9)]
    # Overlaps become one span covering both, typed by the strongest finding.
    assert merge_findings(found) == [(0, 14, "FAX", 0.95), (20, 25, "DATE", 0.9)]
