"""Dedupe: hand-made duplicates and rewrites are clustered, distinct questions sharing boilerplate are not, traces go
with their question, and on real MedQA items planted near-duplicates are found. Everything runs for real (numpy
MinHash, rapidfuzz, real files, the real CLI in a subprocess); nothing is mocked."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from curate.dedupe import DedupeConfig, dedupe, find_duplicates, near_duplicate_traces, run_dedupe
from curate.io import InputError, read_rows, write_rows
from curate.minhash import band_keys, candidate_pairs, signatures
from curate.ngrams import Vocab, gram_hashes
from curate.textnorm import normalize, option_overlap, question_text
from tests.perturb import PERTURBATIONS, change_words, embed, reorder_options, reorder_sentences, surface, truncate

VIGNETTE = ("A 34-year-old woman comes to the emergency department because of fever, chills, and a productive cough "
            "with rust-colored sputum for 3 days. Her temperature is 39.4 C, pulse is 112/min, and respirations are "
            "26/min. Crackles are heard over the right lower lobe, and a chest x-ray shows a lobar consolidation. "
            "Which of the following is the most likely causal organism?")
OPTIONS = {"A": "Streptococcus pneumoniae", "B": "Mycoplasma pneumoniae", "C": "Legionella pneumophila",
           "D": "Staphylococcus aureus"}
BOILER_1 = ("A 61-year-old man is brought to the physician because of progressive memory loss and difficulty "
            "managing his finances over the past year. He has hypertension treated with lisinopril. Mini-mental "
            "state examination score is 22/30. Which of the following is the most likely diagnosis?")
BOILER_2 = ("A 7-year-old boy is brought to the physician because of a pruritic rash on his flexural surfaces that "
            "has waxed and waned since infancy. His father has asthma. Which of the following is the most likely "
            "diagnosis?")
SHORT_BOILER = "Which of the following is the most likely diagnosis?"


def q(qid: str, question: str, options: dict[str, str] | None = None, **extra) -> dict:
    return {"id": qid, "source": "hand", "split": "train", "question": question, "context": None,
            "options": dict(options or OPTIONS), "answer": "A", "meta": {}, **extra}


def hand_made() -> list[dict]:
    rng = random.Random(7)
    base = q("base", VIGNETTE)
    return [
        base,
        {**surface(base, rng), "id": "surface"},
        {**reorder_options(base, rng), "id": "reordered"},
        {**change_words(base, rng, 1), "id": "one_word"},
        {**change_words(base, rng, 3), "id": "three_words"},
        {**truncate(base, rng, 0.85), "id": "truncated"},
        {**embed(base, rng), "id": "embedded"},
        q("boiler1", BOILER_1, {"A": "Alzheimer disease", "B": "Vascular dementia", "C": "Lewy body dementia",
                                "D": "Frontotemporal dementia"}),
        q("boiler2", BOILER_2, {"A": "Atopic dermatitis", "B": "Psoriasis", "C": "Contact dermatitis",
                                "D": "Seborrheic dermatitis"}),
        # Same boilerplate stem, different options: distinct questions.
        q("short1", SHORT_BOILER, {"A": "Gout", "B": "Pseudogout", "C": "Septic arthritis", "D": "Osteoarthritis"}),
        q("short2", SHORT_BOILER, {"A": "Migraine", "B": "Cluster headache", "C": "Tension headache",
                                   "D": "Subarachnoid hemorrhage"}),
    ]


# ---------------------------------------------------------------- normalisation


def test_normalize_ignores_case_whitespace_and_punctuation():
    assert normalize("  Which of the FOLLOWING,  is   true?!") == "which of the following is true"
    assert normalize("Ｆｕｌｌｗｉｄｔｈ") == "fullwidth"  # NFKC
    assert normalize(None) == ""


def test_question_key_ignores_option_order_but_not_content():
    a = q("a", "What is X?", {"A": "One", "B": "Two"})
    b = q("b", "what is x", {"A": "two ", "B": "ONE."})
    c = q("c", "What is X?", {"A": "One", "B": "Three"})
    assert question_text(a).key == question_text(b).key
    assert question_text(a).key != question_text(c).key
    assert option_overlap(("one", "two"), ("two", "one")) == 1.0
    assert option_overlap(("one", "three"), ("one", "two")) == 0.5


# ---------------------------------------------------------------- MinHash / LSH


def test_minhash_estimates_jaccard():
    """Signature agreement estimates the Jaccard similarity of the shingle sets (128 permutations: +-0.12)."""
    rng = np.random.default_rng(0)
    universe = rng.integers(0, 2**62, size=400, dtype=np.uint64)
    for shared in (50, 100, 150):
        a = universe[:200]
        b = np.concatenate([universe[:shared], universe[200 : 200 + 200 - shared]])
        true = shared / (400 - shared)
        hashes = np.concatenate([a, b])
        owner = np.repeat([0, 1], [len(a), len(b)])
        sig = signatures(hashes, owner, 2, num_perm=128, seed=3)
        estimate = float((sig[0] == sig[1]).mean())
        assert abs(estimate - true) < 0.12, (shared, true, estimate)


def test_lsh_proposes_near_duplicates_without_all_pairs():
    """2,000 random documents with 20 planted near-copies: all copies are proposed, and the candidate count stays
    near the number of planted pairs (no all-pairs: 2,000^2/2 = 2M)."""
    rng = random.Random(1)
    words = [f"w{i}" for i in range(5000)]
    docs = [" ".join(rng.choice(words) for _ in range(60)) for _ in range(2000)]
    planted = []
    for k in range(20):
        src = docs[k * 50].split()
        src[rng.randrange(60)] = "changed"
        planted.append((k * 50, len(docs)))
        docs.append(" ".join(src))
    vocab = Vocab()
    ids, offsets = vocab.encode([d.split() for d in docs])
    sig = signatures(*gram_hashes(ids, offsets, 2, whole_if_short=True), len(docs), num_perm=64)
    pairs = {tuple(p) for p in candidate_pairs(band_keys(sig, 16)).tolist()}
    assert set(planted) <= pairs
    assert len(pairs) < 100


def test_gram_hashes_short_documents():
    vocab = Vocab()
    ids, offsets = vocab.encode([["a", "b", "c"], ["d"], []])
    hashes, owner = gram_hashes(ids, offsets, 2, whole_if_short=True)
    assert owner.tolist() == [0, 0, 1]  # two bigrams, one whole-doc shingle, nothing for the empty doc
    hashes, owner = gram_hashes(ids, offsets, 2, whole_if_short=False)
    assert owner.tolist() == [0, 0]


# ---------------------------------------------------------------- questions


def test_hand_made_duplicates_cluster_and_boilerplate_does_not():
    rows = hand_made()
    result = dedupe(rows)
    kept = [r["id"] for r in result.kept]
    assert kept == ["base", "boiler1", "boiler2", "short1", "short2"]
    by_id = {r.row["id"]: r for r in result.rejected}
    assert set(by_id) == {"surface", "reordered", "one_word", "three_words", "truncated", "embedded"}
    for rid, r in by_id.items():
        assert r.row["dup_of"] == "base", rid
        assert 0.9 <= r.row["dup_score"] <= 1.0
    assert by_id["surface"].reasons == ["exact_duplicate"]
    assert by_id["reordered"].reasons == ["exact_duplicate"]
    assert by_id["three_words"].reasons == ["near_duplicate"]
    assert by_id["embedded"].reasons == ["near_duplicate"]
    assert result.stats["exact_duplicates"] == 2 and result.stats["near_duplicates"] == 4


def test_copy_with_its_sentences_moved_is_a_near_duplicate():
    """Issue 14: the same vignette with its sentences in another order (question first) keeps its words, not their
    order: the in-order ratio misses it, the word-order-free one (`reorder_threshold`) does not. The distinct
    boilerplate questions stay apart."""
    rows = hand_made()
    moved = {**reorder_sentences(rows[0], random.Random(2)), "id": "moved"}
    assert moved["question"] != VIGNETTE and sorted(moved["question"].split()) == sorted(VIGNETTE.split())
    result = dedupe([rows[0], moved, *rows[7:]])
    assert [(r.row["id"], r.row["dup_of"], r.reasons) for r in result.rejected] == [("moved", "base", ["near_duplicate"])]
    assert result.rejected[0].row["dup_score"] == 1.0
    changed = {**change_words(moved, random.Random(3), 2), "id": "changed"}
    assert [r.row["id"] for r in dedupe([rows[0], changed]).rejected] == ["changed"]
    strict = dedupe([rows[0], changed], options=DedupeConfig(reorder_threshold=1.0))
    assert strict.rejected == []


def test_representative_is_first_in_input_order():
    rows = list(reversed(hand_made()))
    result = dedupe(rows)
    kept = {r["id"] for r in result.kept}
    assert "embedded" in kept and "base" not in kept  # embedded now comes first among its cluster
    assert {r.row["dup_of"] for r in result.rejected} == {"embedded"}


def test_threshold_is_configurable():
    rows = hand_made()
    strict = dedupe(rows, options=DedupeConfig(threshold=0.999))
    # Exact ones, the pure truncation and the pure embedding (the shorter stem lies unchanged in the longer: 1.0).
    assert {r.row["id"] for r in strict.rejected} == {"surface", "reordered", "truncated", "embedded"}


def test_find_duplicates_on_plain_strings():
    clusters = find_duplicates(["the same text here", "a different one", "the same text here", "the same text hare"])
    assert clusters.rep.tolist() == [0, 1, 0, 0]
    assert clusters.kind == [None, None, "exact_duplicate", "near_duplicate"]


# ---------------------------------------------------------------- traces


def traces_for(question_ids: list[str], reasoning: dict[str, list[str]]) -> list[dict]:
    rows = []
    for qid in question_ids:
        for k, text in enumerate(reasoning[qid]):
            rows.append({"trace_id": f"{qid}-t{k}", "question_id": qid, "sample_index": k, "teacher": "t",
                         "prompt_name": "p", "prompt_hash": "h", "reasoning": text, "kept": True})
    return rows


REASONING = {
    "base": ["The lobar consolidation and rust-colored sputum point to pneumococcus, the commonest cause.",
             "the lobar consolidation and rust colored sputum point to pneumococcus; the commonest cause",
             "Atypical organisms give patchy infiltrates; a lobar pattern with high fever favours S. pneumoniae."],
    "one_word": ["Pneumococcus.", "Streptococcus pneumoniae it is."],
    "boiler1": ["Gradual memory loss with preserved function early on suggests Alzheimer disease."],
}


def test_traces_go_with_their_question_and_near_identical_traces_are_dropped(tmp_path):
    questions = {r["id"]: r for r in hand_made()}
    rows = traces_for(["base", "one_word", "boiler1"], REASONING)
    result = dedupe(rows, questions=questions)
    kept = [r["trace_id"] for r in result.kept]
    assert kept == ["base-t0", "base-t2", "boiler1-t0"]
    by_id = {r.row["trace_id"]: r for r in result.rejected}
    assert by_id["base-t1"].reasons == ["near_duplicate_trace"] and by_id["base-t1"].row["dup_of"] == "base-t0"
    for tid in ("one_word-t0", "one_word-t1"):  # the whole duplicate question goes, pointing at the kept trace
        assert by_id[tid].reasons == ["near_duplicate"] and by_id[tid].row["dup_of"] == "base-t0"
    off = dedupe(rows, questions=questions, options=DedupeConfig(trace_dedupe=False))
    assert [r["trace_id"] for r in off.kept] == ["base-t0", "base-t1", "base-t2", "boiler1-t0"]


def test_near_duplicate_traces_are_compared_with_kept_ones_only():
    matches = near_duplicate_traces(["alpha beta gamma delta", "alpha beta gamma delta!", None, "something else"], 0.9)
    assert matches[0] is None and matches[1] == (0, 1.0) and matches[2] is None and matches[3] is None


def test_trace_rows_need_their_questions(tmp_path):
    rows = traces_for(["base"], REASONING)
    write_rows(rows, tmp_path / "traces.jsonl")
    with pytest.raises(InputError, match="--questions"):
        run_dedupe(tmp_path / "traces.jsonl", tmp_path / "out.jsonl")
    write_rows([q("other", "Something else entirely?")], tmp_path / "questions.jsonl")
    with pytest.raises(InputError, match="question_id 'base' is not in the Question file") as err:
        run_dedupe(tmp_path / "traces.jsonl", tmp_path / "out.jsonl", questions=tmp_path / "questions.jsonl")
    assert err.value.record_id == "base-t0" and err.value.field == "question_id"
    assert not (tmp_path / "out.jsonl").exists()


def test_run_dedupe_writes_output_rejected_and_report(tmp_path):
    write_rows(hand_made(), tmp_path / "q.parquet")
    report = run_dedupe(tmp_path / "q.parquet", tmp_path / "u.parquet", rejected=tmp_path / "d.jsonl",
                        report=tmp_path / "r.json")
    assert [r["id"] for r in read_rows(tmp_path / "u.parquet")] == ["base", "boiler1", "boiler2", "short1", "short2"]
    rejected = read_rows(tmp_path / "d.jsonl")
    assert {r["dup_of"] for r in rejected} == {"base"} and all(r["rejected_by"] == "dedupe" for r in rejected)
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["rows_in"] == 11 and saved["rows_out"] == 5 and saved["reasons"] == report.reasons
    assert saved["reasons"] == {"near_duplicate": 4, "exact_duplicate": 2}


def test_cli_dedupe(tmp_path, cli):
    write_rows(hand_made(), tmp_path / "q.jsonl")
    proc = cli("dedupe", "-i", tmp_path / "q.jsonl", "-o", tmp_path / "u.jsonl", "--rejected", tmp_path / "d.jsonl",
               "--report", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stderr
    assert "kept 5 of 11 rows" in proc.stderr and "exact duplicates: 2" in proc.stderr
    assert len(read_rows(tmp_path / "u.jsonl")) == 5
    bad = cli("dedupe", "-i", tmp_path / "missing.jsonl", "-o", tmp_path / "x.jsonl")
    assert bad.returncode == 2 and "file not found" in bad.stderr and not (tmp_path / "x.jsonl").exists()


# ---------------------------------------------------------------- real data


@pytest.mark.shared_data
def test_planted_near_duplicates_of_medqa_items_are_found(shared_data):
    """MedQA test plus rewritten copies of 400 of its items: >= 99% of copies point at their original, and no
    original is rejected except as a duplicate of a MedQA item it really repeats."""
    from sources import load_source

    originals = [x.row() for x in load_source("medqa", shared_data / "benchmarks/medqa/test.4_options.jsonl").questions]
    rng = random.Random(11)
    kinds = ["surface", "reorder_options", "change_1_word", "change_3_words", "truncate", "reorder_sentences"]
    copies = []
    for k, src in enumerate(rng.sample(originals, 400)):
        copy = PERTURBATIONS[kinds[k % len(kinds)]](dict(src), rng)
        copies.append({**copy, "id": f"copy-of-{src['id']}", "copy_of": src["id"]})
    result = dedupe(originals + copies)
    rejected = {r.row["id"]: r.row for r in result.rejected}
    found = sum(1 for c in copies if c["id"] in rejected)
    recall = found / len(copies)
    assert recall >= 0.99, recall
    # A copy's representative is its own original (or the MedQA item that original itself duplicates).
    originals_rejected = {rid for rid in rejected if not rid.startswith("copy-of-")}
    assert len(originals_rejected) <= 5, originals_rejected
    wrong = [c for c in copies if c["id"] in rejected and rejected[c["id"]]["dup_of"] != c["copy_of"]
             and c["copy_of"] not in originals_rejected]
    assert len(wrong) <= 2, wrong[:2]


def test_short_stems_with_the_same_options_are_not_merged(monkeypatch):
    """Found in MedMCQA dev: the options dominate the full text of a short question, so the stems themselves must be
    nearly as similar. Without that rule (STEM_SLACK = 1) the two are merged."""
    import curate.dedupe as dd

    sinus = {"A": "Inferior meatus", "B": "Middle meatus", "C": "Superior meatus", "D": "Sphenoethmoidal recess"}
    rows = [q("maxillary", "The maxillary sinus drains into the", sinus),
            q("frontal", "The frontal paranasal sinus drains into the:", sinus)]
    assert [r["id"] for r in dedupe(rows).kept] == ["maxillary", "frontal"]
    monkeypatch.setattr(dd, "STEM_SLACK", 1.0)
    assert [r["id"] for r in dedupe(rows).kept] == ["maxillary"]


def test_same_input_same_output(tmp_path, cli):
    """No salted hashes or set order anywhere: two processes (different PYTHONHASHSEED) write identical files."""
    # three copies of every row, each its own record (a repeated id is refused by every stage)
    write_rows([{**row, "id": f"{row['id']}-{copy}"} for copy in range(3) for row in hand_made()], tmp_path / "q.jsonl")
    for k, seed in ((1, "1"), (2, "2")):
        proc = cli("dedupe", "-i", tmp_path / "q.jsonl", "-o", tmp_path / f"u{k}.jsonl", "--rejected",
                   tmp_path / f"d{k}.jsonl", env={"PYTHONHASHSEED": seed})
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "u1.jsonl").read_bytes() == (tmp_path / "u2.jsonl").read_bytes()
    assert (tmp_path / "d1.jsonl").read_bytes() == (tmp_path / "d2.jsonl").read_bytes()
