"""The judge (`curate verify`) against the clinicians, and the gold-suspect review: real verify over a real judge
server on loopback (the replay server), then `review apply` with a reviews file in the shape `curate review pull`
writes (no Argilla server needed to apply it)."""

from __future__ import annotations

import pytest

from curate.generate.replay import replay_server
from curate.io import read_rows, write_rows
from curate.verify import run_verify
from review.apply import apply_reviews
from review.stats import cohen_kappa, cohen_kappa_interval
from review.verdict import GOLD_WRONG
from tests.review_data import write_corpus
from tests.verify_support import write_judge

JUDGE_KINDS = ["unsafe", "wrong_step", "agree", "agree", "agree", "wrong_step", "unsafe", "agree", "agree", "agree"]
# What both clinicians say about rows 0-7: (unsafe, reasoning rating)
CLINICIANS = [("yes", 4), ("no", 2), ("no", 4), ("no", 1), ("no", 5), ("no", 4), ("no", 4), ("no", 5)]


def review(trace_id, reviewer, unsafe="no", rating=4, **extra):
    return {"trace_id": trace_id, "reviewer": reviewer, "reviewer_id": reviewer, "answer_correct": "correct",
            "reasoning_sound": rating, "clinically_unsafe": unsafe, "phi_present": "no", "comment": None,
            "gold_correct": None, "question_id": None, "gold_question": "no", **extra}


@pytest.fixture
def judged(tmp_path):
    """The review test corpus verified in flag mode (every row kept with the judge's verdict)."""
    corpus, qs = write_corpus(tmp_path, n=10)
    rows = read_rows(corpus)
    for row in rows:
        row["gold"] = "A"
    recording = write_judge(tmp_path / "judge.jsonl.gz", rows, lambda i, row: JUDGE_KINDS[i])
    with replay_server(traces=recording, models=["judge"]) as server:
        run_verify(corpus, tmp_path / "verified.jsonl", judges=["judge"], base_urls=[server.url], mode="flag",
                   questions=qs)
    return tmp_path / "verified.jsonl", qs


def test_review_apply_reports_judge_against_clinicians_per_criterion(tmp_path, judged):
    verified, qs = judged
    reviews = [review(f"trace-{i:04d}", who, unsafe, rating) for i, (unsafe, rating) in enumerate(CLINICIANS)
               for who in ("alice", "bob")]
    write_rows(reviews, tmp_path / "reviews.jsonl")
    report = apply_reviews(verified, tmp_path / "reviews.jsonl", tmp_path / "out.jsonl", mode="flag", questions=qs)
    # the judge, from its verdicts: unsafe rows support the answer (sound) and flag advice; wrong-step rows are unsound
    judge = {"verdict": [False, False, True, True, True, False, False, True],
             "reasoning_sound": [True, False, True, True, True, False, True, True],
             "clinically_unsafe": [True, False, False, False, False, False, True, False]}
    # the clinicians: row 0 unsafe, rows 1 and 3 rated unsound (2, 1): those rows rejected
    clinicians = {"verdict": [False, False, True, False, True, True, True, True],
                  "reasoning_sound": [True, False, True, False, True, True, True, True],
                  "clinically_unsafe": [True, False, False, False, False, False, False, False]}
    assert set(report.judge_agreement) == set(judge)
    for criterion in judge:
        entry = report.judge_agreement[criterion]
        assert entry.items == 8
        assert entry.kappa == pytest.approx(cohen_kappa(judge[criterion], clinicians[criterion]))
        assert entry.interval == pytest.approx(cohen_kappa_interval(judge[criterion], clinicians[criterion]))
        assert entry.interval[0] <= entry.kappa <= entry.interval[1]
        assert entry.percent_agreement == pytest.approx(
            sum(a == b for a, b in zip(judge[criterion], clinicians[criterion])) / 8)
        assert (entry.judge_yes, entry.clinicians_yes) == (sum(judge[criterion]), sum(clinicians[criterion]))


def test_rows_without_a_judge_verdict_give_no_agreement(tmp_path):
    corpus, qs = write_corpus(tmp_path, n=4)
    write_rows([review("trace-0000", "alice")], tmp_path / "reviews.jsonl")
    report = apply_reviews(corpus, tmp_path / "reviews.jsonl", tmp_path / "out.jsonl", questions=qs)
    assert report.judge_agreement == {} and report.gold_review.reviewed == 0


def test_a_gold_answer_clinicians_find_wrong_removes_its_questions_rows(tmp_path):
    corpus, qs = write_corpus(tmp_path, n=6)
    gold = {"question_id": "medqa:test:0", "gold_question": "yes"}
    reviews = [review("trace-0001", "alice"),
               review("suspect-trace", "alice", gold_correct="no", **gold),
               review("suspect-trace", "bob", gold_correct="no", **gold),
               review("other-suspect", "alice", gold_correct="yes", question_id="medmcqa:test:1", gold_question="yes"),
               review("split-suspect", "alice", gold_correct="yes", question_id="pubmedqa:test:2", gold_question="yes"),
               review("split-suspect", "bob", gold_correct="no", question_id="pubmedqa:test:2", gold_question="yes")]
    write_rows(reviews, tmp_path / "reviews.jsonl")
    report = apply_reviews(corpus, tmp_path / "reviews.jsonl", tmp_path / "out.jsonl",
                           rejected=tmp_path / "rej.jsonl", questions=qs)
    assert report.gold_review.model_dump() == {"reviewed": 3, "key_wrong": ["medqa:test:0"],
                                               "key_right": ["medmcqa:test:1"], "unsure": ["pubmedqa:test:2"]}
    (dropped,) = read_rows(tmp_path / "rej.jsonl")
    assert dropped["trace_id"] == "trace-0000" and dropped["reasons"] == [GOLD_WRONG]
    assert report.reviews_without_row == 0  # the gold-suspect records are not rows of the corpus, by design
    assert report.reviewed_rows == 1  # and they are not part of the sample's error rate


def test_gold_suspect_items_are_one_trace_per_question_that_chose_the_other_letter(tmp_path):
    from curate.filter import FilterStage
    from review.dataset import GOLD_CHECK, record_for
    from review.push import gold_suspect_items
    from tests.test_filter_gold import _question, _trace

    suspect, sound = _question("1"), _question("2")
    write_rows([suspect, sound], tmp_path / "q.parquet")
    traces = [_trace(suspect, i, x) for i, x in enumerate("CCCB")] + [_trace(sound, i, "B") for i in range(4)]
    traces[1].completion = traces[1].completion.replace("The patient", "In short, the patient")  # a longer one
    write_rows(traces, tmp_path / "t.parquet")
    FilterStage(workers=1).run(tmp_path / "t.parquet", tmp_path / "k.parquet", rejected=tmp_path / "r.parquet",
                               questions=tmp_path / "q.parquet")
    (item,) = gold_suspect_items(tmp_path / "r.parquet")
    assert item["question_id"] == suspect.id and item["final_answer"] == "C" and item["gold"] == "B"
    assert item["trace_id"] == f"{suspect.id}#0"  # the shortest of the traces that chose C (ties: by id)
    record = record_for(item)
    assert "It says **B**, but 3 of 4 teacher samples chose **C**" in record.fields[GOLD_CHECK]
    assert record.metadata["gold_question"] == "yes" and record.metadata["question_id"] == suspect.id
    plain = record_for({**item, "gold_suspect": None})
    assert GOLD_CHECK not in plain.fields and plain.metadata["gold_question"] == "no"


def test_the_card_shows_judge_against_clinicians_and_the_gold_review():
    from curate.publish.card import gold_review_lines, judge_versus_clinicians

    table = judge_versus_clinicians({"verdict": {"items": 8, "kappa": 0.47, "interval": (0.1, 0.9),
                                                 "percent_agreement": 0.75, "judge_yes": 4, "clinicians_yes": 5}})
    assert "| verdict | 8 | 0.47 | 0.10–0.90 | 75.0% | 4 | 5 |" in table
    assert judge_versus_clinicians({}) == ""
    lines = gold_review_lines({"reviewed": 2, "key_wrong": ["medqa:test:7"], "key_right": ["x"], "unsure": []})
    assert "answer key found wrong: 1 (`medqa:test:7`" in lines
