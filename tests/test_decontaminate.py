"""Decontaminate: hand-made rewrites of benchmark items are flagged with the right item, distinct questions sharing
boilerplate are not, and on the real benchmark files (when present) self-matching, recall on perturbed copies and
the false-positive rate between distinct banks are measured and asserted. Real files, real sources loaders, real
rapidfuzz and the real CLI in a subprocess. The Hub cannot be reached here: only its error message is tested."""

from __future__ import annotations

import json
import random

import pytest

from curate.decontaminate import BenchmarkIndex, DecontaminateConfig, decontaminate, exposure, run_decontaminate
from curate.io import InputError, read_rows, write_rows
from curate.textnorm import question_text
from tests.perturb import (
    PERTURBATIONS,
    change_words,
    embed,
    perturbed_copies,
    reorder_options,
    reorder_sentences,
    surface,
    truncate,
)

LONG_ITEM = {
    "id": "bench:test:1", "source": "bench", "split": "test", "answer": "A", "meta": {}, "context": None,
    "question": ("A 45-year-old man comes to the physician because of a 3-month history of fatigue and a 5-kg weight "
                 "loss. He drinks two beers daily. His hemoglobin is 9.8 g/dL and mean corpuscular volume is 112 fL. "
                 "A peripheral blood smear shows hypersegmented neutrophils. Serum methylmalonic acid is elevated. "
                 "Which of the following is the most likely cause of this patient's anemia?"),
    "options": {"A": "Vitamin B12 deficiency", "B": "Folate deficiency", "C": "Alcohol toxicity",
                "D": "Myelodysplastic syndrome"},
}
SHORT_ITEM = {
    "id": "bench:test:2", "source": "bench", "split": "test", "answer": "B", "meta": {}, "context": None,
    "question": "Drug of choice for absence seizures in children is:",
    "options": {"A": "Phenytoin", "B": "Ethosuximide", "C": "Carbamazepine", "D": "Phenobarbitone"},
}
CONTEXT_ITEM = {
    "id": "pubmedqa:test:1234", "source": "pubmedqa", "split": "test", "answer": "A", "meta": {},
    "question": "Does early mobilisation reduce length of stay after hip fracture surgery?",
    "context": ("BACKGROUND: Hip fracture is common in older adults. METHODS: We randomised 312 patients to "
                "mobilisation within 24 hours or usual care. RESULTS: Median stay fell from 11 to 8 days."),
    "options": {"A": "yes", "B": "no", "C": "maybe"},
}
BOILERPLATE_ITEM = {
    "id": "bench:test:3", "source": "bench", "split": "test", "answer": "C", "meta": {}, "context": None,
    "question": ("A 23-year-old woman comes to the physician because of a 2-day history of painful urination and "
                 "increased frequency. She is sexually active with one partner. Which of the following is the most "
                 "likely diagnosis?"),
    "options": {"A": "Pyelonephritis", "B": "Urethritis", "C": "Cystitis", "D": "Vaginitis"},
}
BENCH = {"bench:test": [LONG_ITEM, SHORT_ITEM, BOILERPLATE_ITEM], "pubmedqa:test": [CONTEXT_ITEM]}

DISTINCT = [
    # Same boilerplate opening and closing as BOILERPLATE_ITEM and LONG_ITEM, different case and options.
    {"id": "d1", "question": ("A 23-year-old woman comes to the physician because of a 4-week history of joint pain "
                              "and a malar rash. Which of the following is the most likely diagnosis?"),
     "options": {"A": "Systemic lupus erythematosus", "B": "Rheumatoid arthritis", "C": "Dermatomyositis",
                 "D": "Sarcoidosis"}},
    {"id": "d2", "question": "Which of the following is the most likely diagnosis?",
     "options": {"A": "Pyelonephritis", "B": "Urethritis", "C": "Cystitis", "D": "Vaginitis"}},
    {"id": "d3", "question": ("A 45-year-old man comes to the physician because of a 3-month history of cough. "
                              "Which of the following is the most likely cause of this patient's symptoms?"),
     "options": {"A": "Asthma", "B": "GERD", "C": "Postnasal drip", "D": "ACE inhibitor use"}},
    {"id": "d4", "question": "Drug of choice for myoclonic seizures in children is:",
     "options": {"A": "Valproate", "B": "Phenytoin", "C": "Carbamazepine", "D": "Ethosuximide"}},
    {"id": "d5", "question": "Does early mobilisation reduce delirium after cardiac surgery?",
     "context": "BACKGROUND: Delirium after cardiac surgery is frequent. We studied 200 patients in two ICUs.",
     "options": {"A": "yes", "B": "no", "C": "maybe"}},
    # LONG_ITEM's template, half its words and its closing question first (as a sentence-moved rewrite would have
    # it), but other findings and options: another question (word-order-free similarity 0.82).
    {"id": "d6", "question": ("Which of the following is the most likely cause of this patient's anemia? A 45-year-old "
                              "man comes to the physician because of a 3-month history of fatigue and a 5-kg weight "
                              "loss. He has had black stools for a month. His hemoglobin is 9.8 g/dL and mean "
                              "corpuscular volume is 68 fL. A peripheral blood smear shows microcytic hypochromic "
                              "cells. Serum ferritin is low."),
     "options": {"A": "Iron deficiency", "B": "Thalassemia minor", "C": "Anemia of chronic disease",
                 "D": "Sideroblastic anemia"}},
]


def rewrites() -> list[tuple[str, dict, dict]]:
    """(kind of rewrite, benchmark item it came from, training row)."""
    rng = random.Random(3)
    out = []
    for item in (LONG_ITEM, BOILERPLATE_ITEM):
        out += [("surface", item, surface(item, rng)), ("reordered", item, reorder_options(item, rng)),
                ("one_word", item, change_words(item, rng, 1)), ("three_words", item, change_words(item, rng, 3)),
                ("truncated", item, truncate(item, rng, 0.6)), ("embedded", item, embed(item, rng))]
    out += [("short_surface", SHORT_ITEM, surface(SHORT_ITEM, rng)),
            ("short_reordered", SHORT_ITEM, reorder_options(SHORT_ITEM, rng)),
            ("short_embedded", SHORT_ITEM, embed(SHORT_ITEM, rng)),
            ("context_copy", CONTEXT_ITEM, {**CONTEXT_ITEM, "question": CONTEXT_ITEM["question"].upper()}),
            # No options at all: a long vignette is still recognisable.
            ("long_without_options", LONG_ITEM, {**LONG_ITEM, "options": None})]
    out += [("sentences_moved", item, reorder_sentences(item, rng)) for item in (LONG_ITEM, BOILERPLATE_ITEM)]
    return [(name, item, {**row, "id": f"train-{name}-{k}"}) for k, (name, item, row) in enumerate(out)]


@pytest.fixture(scope="module")
def index() -> BenchmarkIndex:
    return BenchmarkIndex(BENCH)


def test_rewrites_of_benchmark_items_are_flagged_with_their_item(index):
    cases = rewrites()
    matches = index.match([question_text(row) for _, _, row in cases])
    for (name, item, _), m in zip(cases, matches):
        assert m is not None and m.item_id == item["id"], (name, m)
        assert m.benchmark == ("pubmedqa:test" if item is CONTEXT_ITEM else "bench:test")
        assert 0 < m.score <= 1
    assert {m.method for m in matches} == {"exact", "ngram", "fuzzy"}


def test_each_rewrite_points_at_the_item_it_came_from(index):
    rng = random.Random(5)
    for item in (LONG_ITEM, BOILERPLATE_ITEM):
        for name, fn in PERTURBATIONS.items():
            m = index.match([question_text(fn(item, rng))])[0]
            assert m is not None and m.item_id == item["id"], (item["id"], name)


def test_rewrite_with_its_sentences_moved_is_flagged(index):
    """Issue 14: the closing question first and the findings shuffled keeps every word and loses the order, so the
    in-order ratio (~0.6) misses it; the word-order-free score confirms it."""
    moved = {**LONG_ITEM, "question": " ".join(
        ["Which of the following is the most likely cause of this patient's anemia?",
         "Serum methylmalonic acid is elevated.", "A peripheral blood smear shows hypersegmented neutrophils.",
         "A 45-year-old man comes to the physician because of a 3-month history of fatigue and a 5-kg weight loss.",
         "His hemoglobin is 9.8 g/dL and mean corpuscular volume is 112 fL.", "He drinks two beers daily."])}
    q = question_text(moved)
    assert index.fuzzy(q, index.items[0], options_agree=True) < 0.7
    m = index.match([q])[0]
    assert m is not None and (m.item_id, m.method, m.score) == (LONG_ITEM["id"], "fuzzy", 1.0)
    strict = BenchmarkIndex(BENCH, DecontaminateConfig(reorder_threshold=1.0))
    # Two words changed as well, and no options (so no same-options slack): 0.98, under a bar of 1.0.
    changed = question_text({**change_words(moved, random.Random(1), 2), "options": None})
    assert index.match([changed])[0] is not None and strict.match([changed])[0] is None


def test_distinct_questions_sharing_boilerplate_are_not_flagged(index):
    matches = index.match([question_text(row) for row in DISTINCT])
    assert matches == [None] * len(DISTINCT), [(r["id"], m) for r, m in zip(DISTINCT, matches) if m]


def test_boilerplate_ngrams_are_left_out_of_the_index():
    """Three items sharing a 13-word opening: that n-gram is boilerplate, so a row sharing only it is clean."""
    opening = "a 30 year old man comes to the emergency department because of sudden onset of"
    items = [{"id": f"b{k}", "question": f"{opening} {tail}", "options": {"A": "x", "B": "y"}}
             for k, tail in enumerate(["chest pain radiating to the back", "severe headache and vomiting",
                                       "shortness of breath after a long flight"])]
    index = BenchmarkIndex({"b": items}, DecontaminateConfig(long_max_df=2))
    assert index.long.dropped_boilerplate > 0
    row = {"question": f"{opening} painless jaundice and dark urine", "options": {"A": "p", "B": "q"}}
    assert index.match([question_text(row)]) == [None]


def test_decontaminate_rows_and_traces(index):
    questions = {row["id"]: row for _, _, row in rewrites()} | {row["id"]: row for row in DISTINCT}
    traces = [{"trace_id": f"{qid}-s{k}", "question_id": qid, "reasoning": "..."}
              for qid in ("train-surface-0", "d1") for k in range(2)]
    result = decontaminate(traces, index, questions=questions)
    assert [r["trace_id"] for r in result.kept] == ["d1-s0", "d1-s1"]
    assert [r.row["trace_id"] for r in result.rejected] == ["train-surface-0-s0", "train-surface-0-s1"]
    assert result.rejected[0].row["contaminated_by"] == {"benchmark": "bench:test", "item_id": "bench:test:1",
                                                         "method": "exact", "score": 1.0}
    assert result.rejected[0].reasons == ["benchmark_contamination"]
    assert result.per_benchmark == {"bench:test": 2}


def test_exposure_runs_the_other_way():
    training = [row for _, _, row in rewrites()][:2] + DISTINCT
    clean, exposed = exposure(training, BENCH)
    assert [r.row["id"] for r in exposed] == ["bench:test:1"]
    assert exposed[0].row["found_count"] == 2
    assert {h["row_id"] for h in exposed[0].row["found_in"]} == {"train-surface-0", "train-reordered-1"}
    assert [r["id"] for r in clean] == ["bench:test:2", "bench:test:3", "pubmedqa:test:1234"]


# ---------------------------------------------------------------- files and CLI


def write_medqa_native(path, items):
    """Benchmark items in jind11 MedQA jsonl (what `sources` reads for medqa)."""
    with open(path, "w") as fh:
        for k, item in enumerate(items):
            fh.write(json.dumps({"realidx": k, "question": item["question"], "options": item["options"],
                                 "answer_idx": item["answer"], "answer": item["options"][item["answer"]]}) + "\n")


def test_run_decontaminate_files_and_report(tmp_path):
    write_medqa_native(tmp_path / "bench.jsonl", [LONG_ITEM, SHORT_ITEM, BOILERPLATE_ITEM])
    train = [row for _, _, row in rewrites()][:6] + DISTINCT
    write_rows(train, tmp_path / "train.parquet")
    report = run_decontaminate(tmp_path / "train.parquet", tmp_path / "clean.parquet", benchmarks=["medqa:test"],
                               benchmark_paths={"medqa:test": str(tmp_path / "bench.jsonl")},
                               rejected=tmp_path / "rej.jsonl", report=tmp_path / "r.json")
    assert [r["id"] for r in read_rows(tmp_path / "clean.parquet")] == [r["id"] for r in DISTINCT]
    rejected = read_rows(tmp_path / "rej.jsonl")
    assert len(rejected) == 6 and {r["contaminated_by"]["item_id"] for r in rejected} == {"medqa:test:0"}
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["per_benchmark"] == {"medqa:test": 6} == report.per_benchmark
    assert saved["reasons"] == {"benchmark_contamination": 6}


def test_hub_benchmark_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("CURATE_BENCHMARK_DIR", raising=False)
    write_rows(DISTINCT, tmp_path / "train.jsonl")
    with pytest.raises(InputError, match=r"--benchmark-path medqa:test=FILE"):
        run_decontaminate(tmp_path / "train.jsonl", tmp_path / "out.jsonl", benchmarks=["medqa:test"])
    assert not (tmp_path / "out.jsonl").exists()


def test_cli_decontaminate_and_reverse(tmp_path, cli):
    write_medqa_native(tmp_path / "bench.jsonl", [LONG_ITEM, SHORT_ITEM, BOILERPLATE_ITEM])
    write_rows([row for _, _, row in rewrites()][:3] + DISTINCT, tmp_path / "train.jsonl")
    common = ["--benchmark", "medqa:test", "--benchmark-path", f"medqa:test={tmp_path / 'bench.jsonl'}"]
    proc = cli("decontaminate", "-i", tmp_path / "train.jsonl", "-o", tmp_path / "clean.jsonl", *common,
               "--rejected", tmp_path / "rej.jsonl", "--report", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stderr
    assert "kept 6 of 9 rows" in proc.stderr and "medqa:test: 3 rows contaminated (1 items)" in proc.stderr
    proc = cli("decontaminate", "--reverse", "-i", tmp_path / "train.jsonl", "-o", tmp_path / "eval.jsonl", *common,
               "--rejected", tmp_path / "exposed.parquet")
    assert proc.returncode == 0, proc.stderr
    exposed = read_rows(tmp_path / "exposed.parquet")  # found_in (a list of objects) survives Parquet
    assert [r["id"] for r in exposed] == ["medqa:test:0"]
    assert [h["row_id"] for h in exposed[0]["found_in"]] == ["train-surface-0", "train-reordered-1", "train-one_word-2"]
    assert len(read_rows(tmp_path / "eval.jsonl")) == 2
    bad = cli("decontaminate", "-i", tmp_path / "train.jsonl", "-o", tmp_path / "x.jsonl", "--benchmark", "medqa:test",
              "--benchmark-path", "medqa:test")
    assert bad.returncode == 2 and "expected SOURCE:SPLIT=FILE" in bad.stderr and not (tmp_path / "x.jsonl").exists()


# ---------------------------------------------------------------- real benchmark files


def _load(shared_data, name, file, **kw):
    from sources import load_source

    return [x.row() for x in load_source(name, shared_data / "benchmarks" / file, skip_invalid=True, **kw).questions]


@pytest.fixture(scope="module")
def real(shared_data):
    return {"medqa": _load(shared_data, "medqa", "medqa/test.4_options.jsonl"),
            "medmcqa": _load(shared_data, "medmcqa", "medmcqa/dev.jsonl"),
            "pubmedqa_test": _load(shared_data, "pubmedqa", "pubmedqa/ori_pqal.json", split="test"),
            "pubmedqa_train": _load(shared_data, "pubmedqa", "pubmedqa/ori_pqal.json", split="train")}


@pytest.mark.shared_data
def test_medqa_test_against_itself_flags_every_item(tmp_path, shared_data):
    path = shared_data / "benchmarks/medqa/test.4_options.jsonl"
    report = run_decontaminate(path, tmp_path / "clean.jsonl", benchmarks=["medqa:test"],
                               benchmark_paths={"medqa:test": str(path)})
    assert report.rows_in == 1273 and report.rows_out == 0 and report.per_benchmark == {"medqa:test": 1273}


#: Measured on these files (see the README section): perturbed-copy recall per bank and kind of rewrite.
#: MedMCQA stems are often 3-10 words: replacing 1-3 of them often asks a different question, so word changes
#: there are measured and held to their measured floor, not to 99%.
RECALL_FLOORS = {("medqa", k): 0.99 for k in PERTURBATIONS} | {
    ("medmcqa", "surface"): 0.99, ("medmcqa", "reorder_options"): 0.99, ("medmcqa", "embed"): 0.99,
    ("medmcqa", "reorder_sentences"): 0.99,
    ("medmcqa", "truncate"): 0.97, ("medmcqa", "change_1_word"): 0.89, ("medmcqa", "change_3_words"): 0.30}


@pytest.mark.shared_data
@pytest.mark.slow
def test_perturbed_copies_recall_and_distinct_banks_false_positive_rate(real):
    index = BenchmarkIndex({"medqa:test": real["medqa"], "medmcqa:dev": real["medmcqa"]})
    key = {it.item_id: it.text.key for it in index.items}
    rng = random.Random(0)
    recalls = {}
    for bank in ("medqa", "medmcqa"):
        items = real[bank]
        for kind, fn in PERTURBATIONS.items():
            pairs = perturbed_copies(items, fn, rng)  # a one-sentence stem cannot have its sentences moved
            matches = index.match([question_text(c) for _, c in pairs])
            # A match of an exact duplicate of the item inside the same bank counts as the item.
            hits = sum(1 for (item, _), m in zip(pairs, matches) if m is not None and key[m.item_id] == key[item["id"]])
            recalls[(bank, kind)] = hits / len(pairs)
    print("\nrecall on perturbed copies:", {f"{b}/{k}": round(v, 4) for (b, k), v in recalls.items()})
    medqa_all = sum(v for (b, _), v in recalls.items() if b == "medqa") / len(PERTURBATIONS)
    assert medqa_all >= 0.99
    for case, floor in RECALL_FLOORS.items():
        assert recalls[case] >= floor, (case, recalls[case])

    # False positives between distinct banks: MedMCQA dev vs MedQA test (both ways) and PubMedQA train vs test.
    rates = {}
    for rows, bench in ((real["medmcqa"], {"medqa:test": real["medqa"]}),
                        (real["medqa"], {"medmcqa:dev": real["medmcqa"]}),
                        (real["pubmedqa_train"], {"pubmedqa:test": real["pubmedqa_test"]})):
        matches = BenchmarkIndex(bench).match([question_text(r) for r in rows])
        rates[next(iter(bench))] = sum(m is not None for m in matches) / len(rows)
    print("false-positive rate on distinct banks:", rates)
    assert all(rate <= 0.001 for rate in rates.values()), rates

    # Same-style distinct questions: MedQA's odd items against its even ones. The 3 flagged are the bank's own
    # near-duplicate items (measured before word-order-free matching too; bench/RESULTS.md ## dedupe).
    odd, even = real["medqa"][1::2], real["medqa"][0::2]
    flagged = sum(m is not None for m in BenchmarkIndex({"medqa:even": even}).match([question_text(r) for r in odd]))
    assert flagged <= 3, flagged


@pytest.mark.shared_data
def test_pubmedqa_context_is_part_of_the_question(real):
    """The same PubMedQA question about its own abstract is flagged; the same wording about another abstract not."""
    index = BenchmarkIndex({"pubmedqa:test": real["pubmedqa_test"][:50]})
    item = real["pubmedqa_test"][0]
    other = real["pubmedqa_test"][60]
    same = {**item, "question": item["question"].lower()}
    moved = {**item, "context": other["context"]}
    matches = index.match([question_text(same), question_text(moved)])
    assert matches[0] is not None and matches[0].item_id == item["id"]
    assert matches[1] is None


def test_long_ngram_made_of_boilerplate_is_no_evidence():
    """Found at 1M synthetic rows: one item's 13-gram 'bilaterally which of the following is the most appropriate
    next step in the management of this' is 12 words of exam boilerplate. With the boilerplate sub-gram filter off
    (sub_max_df huge) the unrelated row is flagged; with it on (default) it is not."""
    closing = "Which of the following is the most appropriate next step in the management of this patient?"
    items = [{"id": f"c{k}", "question": f"{body} {closing}", "options": {"A": f"a{k}", "B": f"b{k}"}}
             for k, body in enumerate([
                 "The patient is given prophylactic labetalol and magnesium sulfate. Examination shows absent deep "
                 "tendon reflexes bilaterally.",
                 "A 3-year-old girl has had a barking cough and stridor for two days.",
                 "A 60-year-old man has crushing chest pain radiating to his jaw for an hour.",
                 "A 25-year-old woman has a painless genital ulcer and inguinal lymph nodes."])]
    row = {"question": "A 32-year-old man presents to the emergency department with fever for two weeks and a dry "
                       "cough. His pulse is 76/min and he had a similar episode last year after travel abroad. "
                       f"Coarse crackles are heard bilaterally. {closing}",
           "options": {"A": "Macrophages", "B": "Pulmonary fibrosis"}}
    assert BenchmarkIndex({"b": items}).match([question_text(row)]) == [None]
    unfiltered = BenchmarkIndex({"b": items}, DecontaminateConfig(sub_max_df=10**9))
    assert unfiltered.match([question_text(row)])[0] is not None
