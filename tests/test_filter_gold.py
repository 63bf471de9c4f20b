"""The gold-label audit: questions whose samples agree on one letter that is not the gold letter."""

from __future__ import annotations

import pytest

from curate.filter import FilterStage, filter_traces
from curate.filter.gold import audit_gold
from curate.filter.reasons import GOLD_SUSPECT, WRONG_ANSWER
from curate.io import read_rows, write_rows
from curate.records import Question, Trace

REASONING = ("The patient presents with the classic findings described in the stem, and the laboratory values "
             "confirm the suspected mechanism, which rules out the other options one by one.")


def _question(qid: str, gold: str = "B", source: str = "medqa") -> Question:
    return Question(id=f"{source}:test:{qid}", source=source, split="test", question=f"Question {qid}: which is it?",
                    options={"A": "alpha", "B": "beta", "C": "gamma", "D": "delta"}, answer=gold)


def _trace(question: Question, i: int, letter: str | None) -> Trace:
    text = f"<think>\n{REASONING}\n</think>\n" + (f"<answer>{letter}</answer>" if letter else "")
    return Trace(trace_id=f"{question.id}#{i}", question_id=question.id, sample_index=i, teacher=f"t{i}",
                 prompt_name="multiple_choice", prompt_hash="h", completion=text)


def test_audit_thresholds():
    def flags(letters, gold="B", **kw):
        kw = {"min_votes": 3, "min_share": 0.75, **kw}
        return audit_gold([("q", gold, x) for x in letters], **kw)

    assert flags("CCCB")["q"].model_dump() == {"gold": "B", "suspect": "C", "votes": {"B": 1, "C": 3}, "samples": 4}
    assert flags("CCCC")["q"].suspect == "C"
    assert not flags("CCBB")  # a split is not agreement
    assert not flags("CCB")  # 2 votes: under min_votes
    assert not flags("CCCBB")  # 3 of 5 is under 75%
    assert not flags("BBBB") and not flags("")
    assert not flags("CCCBB", min_share=1.0) and flags("CCC", min_share=1.0)  # every sample
    assert flags(["C", "C", "C", None, None])["q"].samples == 3  # unparsed samples do not vote
    assert not flags("CCDD", min_votes=2, min_share=0.5)  # a tie between two wrong letters names neither
    assert flags("CCCCCCCBBB", min_share=0.7)  # 7 of 10 is exactly 0.7 (no float slip)


def test_filter_flags_every_trace_of_a_suspect_question_and_reports_it():
    suspect, sound, other = _question("1"), _question("2"), _question("3", source="medmcqa")
    traces = ([_trace(suspect, i, x) for i, x in enumerate("CCCB")] + [_trace(sound, i, x) for i, x in enumerate("BBBC")]
              + [_trace(other, i, x) for i, x in enumerate("AAAA")])
    kept, rejected, report = filter_traces(traces, [suspect, sound, other], workers=1)
    rows = {r.trace_id: r.model_dump() for r in kept} | {r.row["trace_id"]: r.row for r in rejected}
    assert report.gold_suspects == [other.id, suspect.id]
    assert report.gold_suspects_per_source == {"medmcqa": 1, "medqa": 1}
    assert report.gold_audit == {"enabled": True, "min_votes": 3, "min_share": 0.75, "exclude": False}
    for i in range(4):
        assert rows[f"{suspect.id}#{i}"]["gold_suspect"]["votes"] == {"B": 1, "C": 3}
        assert rows[f"{sound.id}#{i}"]["gold_suspect"] is None
    assert f"{suspect.id}#3" in {r.trace_id for r in kept}  # flagging alone keeps the gold-agreeing sample
    wrong = next(r for r in rejected if r.row["trace_id"] == f"{suspect.id}#0")
    assert wrong.reasons == [WRONG_ANSWER] and "gold suspect: 3 of 4 samples say C" in wrong.detail
    assert any("gold-suspect questions" in line for line in report.details())


def test_exclude_rejects_the_suspect_questions_traces_and_the_audit_can_be_off():
    suspect, sound = _question("1"), _question("2")
    traces = [_trace(suspect, i, x) for i, x in enumerate("CCCB")] + [_trace(sound, i, "B") for i in range(4)]
    kept, rejected, report = filter_traces(traces, [suspect, sound], workers=1, exclude_gold_suspect=True)
    assert {r.question_id for r in kept} == {sound.id}
    assert [r.reasons for r in rejected if r.row["trace_id"] == f"{suspect.id}#3"] == [[GOLD_SUSPECT]]
    assert report.reasons == {WRONG_ANSWER: 3, GOLD_SUSPECT: 1}
    kept, _, report = filter_traces(traces, [suspect, sound], workers=1, gold_audit=False, exclude_gold_suspect=True)
    assert len(kept) == 5 and report.gold_suspects == [] and all(r.gold_suspect is None for r in kept)


def test_the_column_survives_parquet(tmp_path):
    suspect = _question("1")
    write_rows([suspect], tmp_path / "q.parquet")
    write_rows([_trace(suspect, i, x) for i, x in enumerate("CCCB")], tmp_path / "t.parquet")
    FilterStage(workers=1).run(tmp_path / "t.parquet", tmp_path / "k.parquet", rejected=tmp_path / "r.parquet",
                               questions=tmp_path / "q.parquet")
    (row,) = read_rows(tmp_path / "k.parquet")
    assert row["gold_suspect"] == {"gold": "B", "suspect": "C", "votes": {"B": 1, "C": 3}, "samples": 4}
    assert all(r["gold_suspect"]["suspect"] == "C" for r in read_rows(tmp_path / "r.parquet"))


@pytest.mark.shared_data
def test_real_traces_flag_questions_in_every_source(shared_data):
    """The real traces (several models per question): flags per source, each backed by its votes."""
    from curate.filter.devset import dev_records, read_dev_rows

    questions, traces = dev_records(read_dev_rows(shared_data / "traces" / "dev_traces.jsonl.gz"))
    kept, rejected, report = filter_traces(traces, questions, workers=1)
    assert set(report.gold_suspects_per_source) == {"medqa", "medmcqa", "pubmedqa"}
    assert sum(report.gold_suspects_per_source.values()) == len(report.gold_suspects) > 50
    audits = {r.row["question_id"]: r.row["gold_suspect"] for r in rejected if r.row.get("gold_suspect")}
    for qid in report.gold_suspects:
        votes, audit = audits[qid]["votes"], audits[qid]
        assert audit["suspect"] != questions[qid].answer and votes[audit["suspect"]] >= 3
        assert votes[audit["suspect"]] >= 0.75 * audit["samples"]
