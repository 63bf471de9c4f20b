"""The filter stage end to end: verdicts, canonical text, pass rate, selection, the report, files and the CLI."""

from __future__ import annotations

import json
import re

import pytest

from curate.filter import UnknownQuestion, filter_traces, run_filter
from curate.io import InputError, read_rows, write_rows
from curate.records import FilteredTrace, Question, Trace, canonical_text

REASONING = ("The patient takes a loop diuretic and has muscle weakness with flattened T waves. Loop diuretics waste "
             "potassium in the thick ascending limb, so low potassium is the most likely disturbance here.")


def question(qid: str, answer: str, source: str = "medqa") -> Question:
    return Question(id=qid, source=source, split="test", question=f"Question {qid}?",
                    options={"A": "Hyperkalemia", "B": "Hypokalemia", "C": "Hypernatremia", "D": "Hyponatremia"},
                    answer=answer)


def trace(qid: str, index: int, completion: str | None, **kw) -> Trace:
    return Trace(trace_id=f"{qid}-{index}", question_id=qid, sample_index=index, teacher=kw.pop("teacher", "t"),
                 prompt_name=kw.pop("prompt_name", "mcq"), prompt_hash="h", completion=completion, **kw)


def sample_set() -> tuple[list[Question], list[Trace]]:
    questions = [question("q1", "B"), question("q2", "A", source="medmcqa")]
    traces = [
        trace("q1", 0, f"<think>\n{REASONING} So the answer is B.\n</think>\n\nB"),
        trace("q1", 1, f"{REASONING} Therefore, the answer is (C)."),
        trace("q1", 2, None, error="HTTP 500 after 3 retries"),
        trace("q2", 0, f"{REASONING} Wait, the question asks about hyperkalemia.\n\nAnswer: A"),
        trace("q2", 1, f"<think>\n{REASONING} Hmm, let me reconsider the", finish_reason="length"),
    ]
    return questions, traces


def test_every_trace_gets_a_verdict_and_kept_rows_carry_the_canonical_text():
    questions, traces = sample_set()
    kept, rejected, report = filter_traces(traces, questions)

    assert [r.trace_id for r in kept] == ["q1-0", "q2-0"]
    assert all(isinstance(r, FilteredTrace) and r.kept and r.correct and r.format_ok and r.reasons == [] for r in kept)
    first = kept[0]
    assert first.predicted == first.answer == "B"
    assert first.reasoning == f"{REASONING} So the answer is B."
    assert first.text == canonical_text(first.reasoning, "B") == f"<think>\n{first.reasoning}\n</think>\n<answer>B</answer>"
    # gpt-style text without <think>: the whole response is the reasoning, in the same canonical form.
    assert kept[1].text.startswith("<think>\nThe patient") and kept[1].text.endswith("</think>\n<answer>A</answer>")

    by_id = {r.row["trace_id"]: r for r in rejected}
    assert by_id["q1-1"].reasons == ["wrong_answer"] and by_id["q1-1"].row["predicted"] == "C"
    assert by_id["q1-1"].detail == "predicted C, gold B"
    assert by_id["q1-2"].reasons == ["generation_error"]
    assert set(by_id["q2-1"].reasons) >= {"truncated", "unclosed_think"} and by_id["q2-1"].row["predicted"] is None
    for r in rejected:
        assert r.row["kept"] is False and "format_ok" in r.row and "pass_rate" in r.row

    # Pass rate: correct / samples; the failed generation is not a sample.
    assert first.pass_rate == 0.5 and by_id["q1-2"].row["pass_rate"] == 0.5
    assert kept[1].pass_rate == 0.5

    assert (report.rows_in, report.rows_out, report.rejected) == (5, 2, 3)
    assert report.reasons["wrong_answer"] == 1 and report.reasons["generation_error"] == 1
    assert report.per_source["medqa"].rows_in == 3 and report.per_source["medqa"].rows_out == 1
    assert report.per_source["medmcqa"].reasons["truncated"] == 1
    assert report.per_teacher["t"]["in"] == 5


def correct_samples(reasonings: list[str]) -> tuple[list[Trace], list[Question]]:
    return [trace("q", i, f"{text}\nSo the answer is B.") for i, text in enumerate(reasonings)], [question("q", "B")]


SAMPLES = [
    REASONING + " " + "Potassium is lost with the diuretic and the ECG shows it clearly in this case. " * 3,  # long
    REASONING + " " + "Potassium is lost with the diuretic and the ECG shows it clearly in this case. " * 3 + "Yes.",
    REASONING,  # shortest
    "Thiazide and loop diuretics both cause renal potassium wasting; weakness plus U waves means hypokalemia, "
    "while sodium disorders would present with confusion or seizures instead, which this patient lacks. Magnesium "
    "should be checked too.",
]


def test_select_all_keeps_every_correct_sample():
    kept, rejected, _ = filter_traces(*correct_samples(SAMPLES))
    assert len(kept) == 4 and not rejected


def test_select_k_shortest():
    kept, rejected, report = filter_traces(*correct_samples(SAMPLES), select="k", k=2, select_by="shortest")
    assert sorted(r.trace_id for r in kept) == ["q-2", "q-3"]
    assert all(r.reasons == ["not_selected"] for r in rejected)
    assert report.reasons == {"not_selected": 2}


def test_select_k_diverse_prefers_different_samples():
    # Shortest first (q-2), then the one least like it: the distinct wording (q-3), never the near-duplicate pair.
    kept, _, _ = filter_traces(*correct_samples(SAMPLES), select="k", k=2, select_by="diverse")
    assert sorted(r.trace_id for r in kept) == ["q-2", "q-3"]
    kept3, _, _ = filter_traces(*correct_samples(SAMPLES), select="k", k=3, select_by="diverse")
    ids = {r.trace_id for r in kept3}
    assert {"q-2", "q-3"} < ids and not {"q-0", "q-1"} <= ids  # only one of the two near-duplicates


@pytest.mark.parametrize("kwargs", [{"select": "some"}, {"select": "k"}, {"select_by": "random"}])
def test_bad_selection_is_a_clear_error(kwargs):
    with pytest.raises(ValueError, match="select"):
        filter_traces(*correct_samples(SAMPLES), **kwargs)


def test_trace_of_an_unknown_question_names_the_trace():
    questions, traces = sample_set()
    traces.append(trace("q9", 0, "Answer: B"))
    with pytest.raises(UnknownQuestion, match="q9-0"):
        filter_traces(traces, questions)
    kept, rejected, report = filter_traces(traces, questions, skip_invalid=True)
    assert report.reasons["unknown_question"] == 1 and rejected[-1].row["trace_id"] == "q9-0"


def test_worker_processes_give_the_same_result():
    questions, base = sample_set()
    traces = [trace(t.question_id, i, t.completion, error=t.error, finish_reason=t.finish_reason)
              for i, t in enumerate(base * 1200)]  # 6000 traces: above the size where a pool is used
    one = filter_traces(traces, questions)
    two = filter_traces(traces, questions, workers=2)
    assert [r.row() for r in one[0]] == [r.row() for r in two[0]]
    assert [(r.row, r.reasons) for r in one[1]] == [(r.row, r.reasons) for r in two[1]]
    assert one[2].reasons == two[2].reasons and one[2].answer_styles == two[2].answer_styles


# ---------------------------------------------------------------- files and CLI


def write_inputs(tmp_path, suffix: str) -> tuple:
    questions, traces = sample_set()
    q_path, t_path = tmp_path / f"q{suffix}", tmp_path / f"traces{suffix}"
    write_rows(questions, q_path)
    write_rows(traces, t_path)
    return q_path, t_path


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_run_filter_writes_kept_rejected_and_report(tmp_path, suffix):
    q_path, t_path = write_inputs(tmp_path, suffix)
    out, rej, rep = tmp_path / f"kept{suffix}", tmp_path / f"rejected{suffix}", tmp_path / "filter.json"
    report = run_filter(t_path, q_path, out, rejected=rej, report=rep)
    kept = read_rows(out)
    assert [r["trace_id"] for r in kept] == ["q1-0", "q2-0"]
    assert kept[0]["text"].endswith("<answer>B</answer>") and kept[0]["params"] == {}
    FilteredTrace.model_validate(kept[0])  # what later stages read back
    rejected = read_rows(rej)
    assert {r["trace_id"]: r["rejected_by"] for r in rejected} == {"q1-1": "filter", "q1-2": "filter", "q2-1": "filter"}
    on_disk = json.loads(rep.read_text())
    assert on_disk["stage"] == "filter" and on_disk["rows_out"] == 2 == report.rows_out


def test_unknown_question_in_files_fails_before_writing(tmp_path):
    q_path, t_path = write_inputs(tmp_path, ".jsonl")
    with open(t_path, "a") as fh:
        fh.write(json.dumps(trace("q9", 0, "Answer: B").row()) + "\n")
    out = tmp_path / "kept.jsonl"
    with pytest.raises(InputError) as err:
        run_filter(t_path, q_path, out)
    assert "q9-0" in str(err.value) and "question_id" in str(err.value) and str(t_path) in str(err.value)
    assert not out.exists() and not list(tmp_path.glob(".kept*"))
    report = run_filter(t_path, q_path, out, skip_invalid=True)
    assert report.reasons["unknown_question"] == 1 and out.exists()


def test_duplicate_trace_id_is_an_error(tmp_path):
    q_path, t_path = write_inputs(tmp_path, ".jsonl")
    first = t_path.read_text().splitlines()[0]
    with open(t_path, "a") as fh:
        fh.write(first + "\n")
    with pytest.raises(InputError, match=r"id=q1-0\) field 'trace_id': duplicate trace_id"):
        run_filter(t_path, q_path, tmp_path / "kept.jsonl")
    report = run_filter(t_path, q_path, tmp_path / "kept.jsonl", skip_invalid=True)
    assert report.reasons["invalid_input"] == 1 and report.rows_out == 2


def test_invalid_trace_row_is_located(tmp_path):
    q_path, t_path = write_inputs(tmp_path, ".jsonl")
    lines = t_path.read_text().splitlines()
    bad = json.loads(lines[1])
    bad["sample_index"] = -1
    lines[1] = json.dumps(bad)
    t_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"traces\.jsonl:2 .*sample_index"):
        run_filter(t_path, q_path, tmp_path / "kept.jsonl")
    report = run_filter(t_path, q_path, tmp_path / "kept.jsonl", skip_invalid=True)
    assert report.reasons["invalid_input"] == 1 and report.rows_in == 5


def test_cli_filter_writes_files_and_prints_the_summary(tmp_path, cli):
    q_path, t_path = write_inputs(tmp_path, ".parquet")
    out, rep = tmp_path / "kept.parquet", tmp_path / "filter.json"
    proc = cli("filter", "-i", t_path, "--questions", q_path, "-o", out, "--rejected", tmp_path / "rej.parquet",
               "--report", rep, "--select", "k", "--k", "1", "--select-by", "diverse")
    assert proc.returncode == 0, proc.stderr
    assert "kept 2 of 5" in proc.stderr and "wrong_answer" in proc.stderr and "medmcqa" in proc.stderr
    assert len(read_rows(out)) == 2 and json.loads(rep.read_text())["selection"]["k"] == 1


def test_cli_bad_option_is_one_clear_line(tmp_path, cli):
    q_path, t_path = write_inputs(tmp_path, ".jsonl")
    proc = cli("filter", "-i", t_path, "--questions", q_path, "-o", tmp_path / "k.jsonl", "--select", "k")
    assert proc.returncode == 2 and "--select k needs --k" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("filter", "-i", tmp_path / "missing.jsonl", "--questions", q_path, "-o", tmp_path / "k.jsonl")
    assert proc.returncode == 2 and "missing.jsonl" in proc.stderr and "file not found" in proc.stderr
    assert not (tmp_path / "k.jsonl").exists()


# ---------------------------------------------------------------- real teacher output


@pytest.mark.shared_data
def test_real_traces_kept_rows_are_verified_and_canonical(shared_data):
    from curate.filter.devset import dev_records, read_dev_rows

    questions, traces = dev_records(read_dev_rows(shared_data / "traces" / "dev_traces.jsonl.gz"))
    kept, rejected, report = filter_traces(traces, questions)
    assert report.rows_in == len(traces) == len(kept) + len(rejected)
    assert len(kept) > 1000
    shape = re.compile(r"\A<think>\n.+\n</think>\n<answer>[A-E]</answer>\Z", re.S)
    for row in kept:
        assert row.predicted == questions[row.question_id].answer
        assert shape.match(row.text) and "<think>" not in row.reasoning and "</think>" not in row.reasoning
    # Every model's truncated QwQ-style outputs are caught, never kept.
    assert report.reasons["unclosed_think"] > 100
    assert all(not r.row["kept"] for r in rejected)


def test_run_filter_options_are_named_so_callers_can_check_them(tmp_path):
    # The options are FilterConfig's fields: a misspelt one is refused by name before any file is read (`curate run`
    # checks its [filter] section with the same class).
    with pytest.raises(ValueError, match="selct: unknown option"):
        run_filter(tmp_path / "missing.jsonl", tmp_path / "missing.jsonl", tmp_path / "o.jsonl", selct="k")
    with pytest.raises(ValueError, match="select"):  # a bad policy fails before any file is read
        run_filter(tmp_path / "missing.jsonl", tmp_path / "missing.jsonl", tmp_path / "o.jsonl", select="some")


def test_rows_carry_the_question_columns_for_later_stages():
    """dedupe, decontaminate, scrub, review and publish read the question from the row itself (and scrub must see
    the question text that gets published), so filter adds it, with the gold letter as `gold`."""
    questions, traces = sample_set()
    kept, rejected, _ = filter_traces(traces, questions)
    row = kept[1].row()
    assert (row["source"], row["split"], row["question"], row["gold"], row["answer"]) == \
        ("medmcqa", "test", "Question q2?", "A", "A")
    assert row["options"] == questions[1].options and row["context"] is None and row["meta"] == {}
    wrong = next(r.row for r in rejected if r.row["trace_id"] == "q1-1")
    assert (wrong["gold"], wrong["answer"], wrong["predicted"]) == ("B", "C", "C")
