"""From rows to review items, from responses to decisions, and `apply_reviews` on real files (no server needed:
a reviews file is what `curate review pull` writes)."""

from __future__ import annotations

import json

import pytest

from curate.io import InputError, read_rows, write_rows
from curate.question_rows import load_questions
from review.apply import apply_reviews
from review.items import review_items
from review.verdict import decide, findings
from tests.review_data import write_corpus


def test_review_items_join_questions_and_derive_strata(tmp_path):
    corpus, qs = write_corpus(tmp_path, n=6)
    items = {it["trace_id"]: it for it in review_items(corpus, load_questions(qs))}
    first = items["trace-0000"]
    assert first["question"].startswith("Case 0:") and first["options"]["A"] == "Apixaban"
    assert first["gold"] == "A" and first["final_answer"] == "A" and first["filter_correct"] is True
    assert (first["source"], first["subject"], first["difficulty"]) == ("medqa", "Medicine", "easy")
    assert "Marker-0000" in first["reasoning"]
    assert items["trace-0002"]["context"].startswith("Abstract 2") and items["trace-0002"]["difficulty"] == "hard"
    assert items["trace-0003"]["filter_correct"] is False and items["trace-0003"]["final_answer"] == "B"
    assert items["trace-0001"]["phi_found"] is None  # scrub did not run on these rows


def test_review_items_errors_name_file_line_id_and_field(tmp_path):
    corpus, qs = write_corpus(tmp_path, n=3)
    with pytest.raises(InputError) as missing_questions:
        list(review_items(corpus))
    assert missing_questions.value.line == 1 and missing_questions.value.field == "question"
    rows = read_rows(corpus)
    rows[1]["question_id"] = "medqa:test:999"
    write_rows(rows, corpus)
    with pytest.raises(InputError) as unknown:
        list(review_items(corpus, load_questions(qs)))
    assert (unknown.value.line, unknown.value.record_id, unknown.value.field) == (2, "trace-0001", "question_id")


def test_rows_carrying_their_question_need_no_questions_file(tmp_path):
    path = tmp_path / "self.jsonl"
    write_rows([{"trace_id": "t1", "question": "Q?", "options": {"A": "x", "B": "y"}, "gold": "B", "answer": "B",
                 "reasoning": "because", "source": "mine", "meta": {"subject": "Cardiology"}, "phi_found": {"PERSON": 1}}], path)
    (item,) = review_items(path)
    assert (item["gold"], item["subject"], item["difficulty"], item["phi_found"]) == ("B", "Cardiology", "unknown", True)


def response(reviewer, answer="correct", rating=4, unsafe="no", phi="no", comment=None):
    return {"reviewer": reviewer, "answer_correct": answer, "reasoning_sound": rating, "clinically_unsafe": unsafe,
            "phi_present": phi, "comment": comment}


def test_findings_and_decisions():
    assert findings(response("a")) == []
    assert findings(response("a", "incorrect", 2, "yes", "yes")) == [
        "review_answer_incorrect", "review_reasoning_unsound", "review_clinically_unsafe", "review_phi_present"]
    assert findings(response("a", "unsure", 3)) == []
    # Majority: 1 of 3 says incorrect -> accepted; 2 of 3 -> rejected; a 1-1 tie -> rejected (when in doubt, leave out).
    assert decide([response("a", "incorrect"), response("b"), response("c")])["verdict"] == "accepted"
    two_of_three = decide([response("a", "incorrect"), response("b", "incorrect"), response("c")])
    assert two_of_three["reasons"] == ["review_answer_incorrect"]
    assert decide([response("a", "incorrect"), response("b")])["verdict"] == "rejected"
    # Safety needs one reviewer only; "any" makes every finding count.
    assert decide([response("a", unsafe="yes"), response("b"), response("c")])["reasons"] == ["review_clinically_unsafe"]
    assert decide([response("a", rating=1), response("b"), response("c")], rule="any")["reasons"] == ["review_reasoning_unsound"]
    decision = decide([response("a", rating=2, comment="dose is wrong"), response("b", rating=5)])
    assert decision["reasoning_sound_mean"] == 3.5 and decision["comments"] == ["dose is wrong"]
    with pytest.raises(ValueError):
        decide([response("a")], rule="lenient")


def _reviews(tmp_path, suffix=".jsonl"):
    # trace-0000 (medqa/Medicine/easy): both accept. trace-0003 (medqa/Pharmacology/easy): both say incorrect.
    # trace-0001 (medmcqa/Pharmacology/medium): one says unsafe. trace-0002 (pubmedqa/Medicine/hard): one reviewer, ok.
    rows = [
        {"trace_id": "trace-0000", **response("alice")}, {"trace_id": "trace-0000", **response("bob")},
        {"trace_id": "trace-0003", **response("alice", "incorrect", 2, comment="B is wrong")},
        {"trace_id": "trace-0003", **response("bob", "incorrect", 3)},
        {"trace_id": "trace-0001", **response("alice")}, {"trace_id": "trace-0001", **response("bob", unsafe="yes")},
        {"trace_id": "trace-0002", **response("alice")},
        {"trace_id": "trace-9999", **response("alice")},  # a trace no longer in the corpus
    ]
    path = tmp_path / f"reviews{suffix}"
    write_rows(rows, path)
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_apply_drops_rejected_rows_and_reports(tmp_path, suffix):
    corpus, qs = write_corpus(tmp_path, n=12, suffix=suffix)
    reviews = _reviews(tmp_path, suffix)
    out, rejected, report = tmp_path / f"out{suffix}", tmp_path / f"rejected{suffix}", tmp_path / "report.json"
    result = apply_reviews(corpus, reviews, out, rejected=rejected, report=report, questions=qs)
    kept = {r["trace_id"]: r for r in read_rows(out)}
    dropped = {r["trace_id"]: r for r in read_rows(rejected)}
    assert set(dropped) == {"trace-0001", "trace-0003"} and len(kept) == 10
    # Both say incorrect; ratings 2 and 3 are a 1-1 tie on "unsound", and ties reject.
    assert dropped["trace-0003"]["reasons"] == ["review_answer_incorrect", "review_reasoning_unsound"]
    assert dropped["trace-0001"]["reasons"] == ["review_clinically_unsafe"]
    assert dropped["trace-0003"]["detail"] == "B is wrong"
    assert kept["trace-0000"]["review"]["verdict"] == "accepted" and kept["trace-0000"]["review"]["n_reviewers"] == 2
    assert kept["trace-0005"]["review"] is None  # not reviewed
    assert isinstance(dropped["trace-0001"]["review"], dict)  # object column survives Parquet (JSON_COLUMNS)
    assert (result.rows_in, result.rows_out, result.rejected) == (12, 10, 2)
    extra = json.loads(report.read_text())
    assert extra["reviewed_rows"] == 4 and extra["reviews_without_row"] == 1
    # Strata over 12 rows (source by i%3, subject by i%2, difficulty by i%3): 6 strata of 2 rows each.
    strata = {s["stratum"]: s for s in extra["error_rate"]["per_stratum"]}
    assert strata["medqa/Pharmacology/easy"] == {"stratum": "medqa/Pharmacology/easy", "population": 2, "reviewed": 1,
                                                 "errors": 1, "rate": 1.0, "interval": [pytest.approx(0.20654, abs=1e-4), 1.0]}
    assert strata["medqa/Medicine/easy"]["rate"] == 0.0 and strata["pubmedqa/Pharmacology/hard"]["reviewed"] == 0
    # Four reviewed strata of 2 rows each, equal weights: (0 + 1 + 1 + 0) / 4 = 0.5; coverage 8 of 12 rows.
    overall = extra["error_rate"]["overall"]
    assert overall["estimate"] == pytest.approx(0.5) and overall["coverage"] == pytest.approx(8 / 12)
    # answer_correct over items rated twice: (c,c), (i,i), (c,c) -> perfect agreement, kappa 1.
    assert extra["agreement"]["answer_correct"]["fleiss_kappa"] == pytest.approx(1.0)
    # clinically_unsafe: (no,no) (no,no) (no,yes): P = 1,1,0 -> 2/3; no 5/6, yes 1/6 -> P_e 26/36;
    # kappa = (2/3 - 26/36) / (10/36) = -0.2.
    assert extra["agreement"]["clinically_unsafe"]["fleiss_kappa"] == pytest.approx(-0.2)
    # alice reviewed 5 traces, one of which (trace-9999) is not in the corpus: statistics count the 4 that are.
    assert extra["reviewers"]["alice"] == {"submitted": 4, "problem_found": 1, "review_answer_incorrect": 1,
                                           "review_reasoning_unsound": 1}
    assert extra["reviewers"]["bob"]["submitted"] == 3 and extra["reviewers"]["bob"]["review_clinically_unsafe"] == 1


def test_apply_flag_mode_keeps_every_row(tmp_path):
    corpus, qs = write_corpus(tmp_path, n=12)
    result = apply_reviews(corpus, _reviews(tmp_path), tmp_path / "out.jsonl", mode="flag", questions=qs)
    rows = {r["trace_id"]: r for r in read_rows(tmp_path / "out.jsonl")}
    assert len(rows) == 12 and result.rejected == 0
    assert rows["trace-0003"]["review"]["verdict"] == "rejected"
    assert rows["trace-0003"]["review"]["reasons"] == ["review_answer_incorrect", "review_reasoning_unsound"]


def test_apply_bad_reviews_file_writes_nothing(tmp_path):
    corpus, _ = write_corpus(tmp_path, n=3)
    bad = tmp_path / "reviews.jsonl"
    bad.write_text('{"trace_id": "trace-0000", "reviewer": "alice"}\n')
    out = tmp_path / "out.jsonl"
    with pytest.raises(InputError) as error:
        apply_reviews(corpus, bad, out, rejected=tmp_path / "rej.jsonl")
    assert error.value.line == 1 and error.value.field == "answer_correct"
    dup = tmp_path / "dup.jsonl"
    write_rows([{"trace_id": "t", **response("alice")}, {"trace_id": "t", **response("alice")}], dup)
    with pytest.raises(InputError, match="appears twice"):
        apply_reviews(corpus, dup, out)
    assert not out.exists() and not (tmp_path / "rej.jsonl").exists()


def test_cli_apply(tmp_path, cli):
    corpus, qs = write_corpus(tmp_path, n=12)
    reviews = _reviews(tmp_path)
    proc = cli("review", "apply", "-i", corpus, "--reviews", reviews, "-o", tmp_path / "out.parquet",
               "--questions", qs, "--report", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stderr
    assert "4 reviewed rows, 2 rejected (dropped)" in proc.stdout
    assert "medqa/Pharmacology/easy" in proc.stdout and "estimated corpus error rate: 50.0%" in proc.stdout
    assert len(read_rows(tmp_path / "out.parquet")) == 10
    bad = cli("review", "apply", "-i", corpus, "--reviews", tmp_path / "missing.jsonl", "-o", tmp_path / "o2.jsonl")
    assert bad.returncode == 2 and "missing.jsonl" in bad.stderr and "file not found" in bad.stderr
    assert not (tmp_path / "o2.jsonl").exists()
