"""Record schemas and the file I/O every stage uses: round trips, atomic writes, located errors."""

from __future__ import annotations

import json

import pytest

from curate.io import InputError, read_records, read_rows, write_rows
from curate.records import Question, Trace, canonical_text, make_trace_id

MEDQA = {"id": "medqa:test:0", "source": "medqa", "split": "test", "question": "Q?", "options": {"A": "a", "B": "b",
         "C": "c", "D": "d"}, "answer": "B", "meta": {"exam_step": "step1"}}
FIVE = {**MEDQA, "id": "medqa:test:5opt-0", "options": {**MEDQA["options"], "E": "e"}, "meta": {"n": 5}}
PUBMED = {"id": "pubmedqa:test:1", "source": "pubmedqa", "split": "test", "question": "Does X?", "context": "ctx",
          "options": {"A": "yes", "B": "no", "C": "maybe"}, "answer": "C", "meta": {"pmid": "1", "meshes": ["a"]}}


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_round_trip_keeps_heterogeneous_options_and_meta(tmp_path, suffix):
    path = tmp_path / f"q{suffix}"
    write_rows([Question(**MEDQA), Question(**FIVE), Question(**PUBMED)], path)
    questions, rejected = read_records(path, Question)
    assert not rejected
    assert [q.options for q in questions] == [MEDQA["options"], FIVE["options"], PUBMED["options"]]
    assert questions[2].meta == PUBMED["meta"] and questions[2].context == "ctx"
    assert questions[0].context is None


def test_extra_columns_from_later_stages_pass_through(tmp_path):
    path = tmp_path / "q.parquet"
    write_rows([{**MEDQA, "dup_of": None, "contaminated_by": {"benchmark": "medqa:test", "item_id": "x"}}], path)
    (q,), _ = read_records(path, Question)
    assert q.row()["contaminated_by"] == {"benchmark": "medqa:test", "item_id": "x"}


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"answer": "F"}, None, "not among the option letters"),
        ({"options": {}}, "options", "at least 2 options"),
        ({"options": {"A": "a", "C": "c"}}, "options", "consecutive"),
        ({"options": {"A": "a", "B": " "}}, "options", "option B is empty"),
        ({"question": "  "}, "question", "non-empty"),
    ],
)
def test_invalid_question_is_located(tmp_path, change, field, fragment):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps(MEDQA) + "\n" + json.dumps({**MEDQA, "id": "medqa:test:1", **change}) + "\n")
    with pytest.raises(InputError) as err:
        read_records(path, Question)
    assert err.value.line == 2 and err.value.record_id == "medqa:test:1"
    assert fragment in str(err.value)
    if field:
        assert err.value.field == field
    assert str(path) in str(err.value)


def test_missing_field_is_named(tmp_path):
    path = tmp_path / "q.jsonl"
    row = dict(MEDQA)
    del row["answer"]
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(InputError, match=r"q\.jsonl:1 \(id=medqa:test:0\) field 'answer': required field is missing"):
        read_records(path, Question)


def test_skip_invalid_turns_errors_into_rejected_rows(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps(MEDQA) + "\n" + json.dumps({**MEDQA, "answer": "Z"}) + "\n")
    questions, rejected = read_records(path, Question, skip_invalid=True)
    assert len(questions) == 1 and rejected[0].reasons == ["invalid_input"] and ":2" in rejected[0].detail


def test_truncated_json_line_and_bad_bytes(tmp_path):
    truncated = tmp_path / "t.jsonl"
    truncated.write_text(json.dumps(MEDQA) + "\n" + json.dumps(MEDQA)[:40] + "\n")
    with pytest.raises(InputError, match=r"t\.jsonl:2: invalid JSON"):
        read_rows(truncated)
    bad = tmp_path / "b.jsonl"
    bad.write_bytes(json.dumps(MEDQA).encode() + b"\n" + b'{"question": "caf\xe9"}\n')
    with pytest.raises(InputError, match=r"b\.jsonl:2: not valid UTF-8"):
        read_rows(bad)


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="unknown table format"):
        write_rows([MEDQA], tmp_path / "q.csv")
    with pytest.raises(InputError, match="file not found"):
        read_rows(tmp_path / "absent.parquet")


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_failed_write_leaves_nothing_and_keeps_old_file(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    write_rows([MEDQA], path)
    before = path.read_bytes()

    def rows():
        yield MEDQA
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_rows(rows(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_trace_id_is_stable_and_sensitive_to_every_part():
    base = make_trace_id("medqa:test:0", "qwen", "abc", {"temperature": 0.7, "top_p": 1.0}, 0)
    assert base == make_trace_id("medqa:test:0", "qwen", "abc", {"top_p": 1.0, "temperature": 0.7}, 0)
    variants = {
        make_trace_id("medqa:test:1", "qwen", "abc", {"temperature": 0.7, "top_p": 1.0}, 0),
        make_trace_id("medqa:test:0", "llama", "abc", {"temperature": 0.7, "top_p": 1.0}, 0),
        make_trace_id("medqa:test:0", "qwen", "abd", {"temperature": 0.7, "top_p": 1.0}, 0),
        make_trace_id("medqa:test:0", "qwen", "abc", {"temperature": 0.8, "top_p": 1.0}, 0),
        make_trace_id("medqa:test:0", "qwen", "abc", {"temperature": 0.7, "top_p": 1.0}, 1),
    }
    assert base not in variants and len(variants) == 5


def test_trace_round_trip(tmp_path):
    trace = Trace(trace_id="t1", question_id="medqa:test:0", sample_index=0, teacher="m", prompt_name="mcq",
                  prompt_hash="h", params={"temperature": 0.7}, completion="<think>x</think><answer>B</answer>",
                  finish_reason="stop", usage={"prompt_tokens": 10, "completion_tokens": 5}, latency_s=0.2)
    write_rows([trace], tmp_path / "t.parquet")
    (back,), _ = read_records(tmp_path / "t.parquet", Trace)
    assert back == trace


def test_canonical_text():
    assert canonical_text("  step 1\nstep 2 ", "C") == "<think>\nstep 1\nstep 2\n</think>\n<answer>C</answer>"


def test_options_read_back_from_a_parquet_struct_column_drop_the_letters_a_row_lacks(tmp_path):
    """Issue 21: a Parquet struct column holds every row's letters, so the demo's real PubMedQA questions (A-C)
    written as a struct beside its MedQA ones (A-D), as `curate publish` writes them, read back with D = null; every
    record reading `options` drops the empty slots instead of refusing `options.D` (the trainer did)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate.records import QuestionColumns
    from sources import load_source
    from tests.pipeline_support import DEMO

    medqa = load_source("medqa", str(DEMO / "medqa" / "test.4_options.jsonl"), limit=2).questions
    pubmedqa = load_source("pubmedqa", str(DEMO / "pubmedqa" / "ori_pqal.json"), split="test", limit=2).questions
    rows = [{k: v for k, v in q.row().items() if k != "meta"} for q in [*medqa, *pubmedqa]]
    path = tmp_path / "struct.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    read = pq.read_table(path).to_pylist()
    assert read[2]["options"]["D"] is None  # the Parquet struct's union of letters
    questions, rejected = read_records(path, Question)
    assert not rejected and [q.options for q in questions] == [q.options for q in [*medqa, *pubmedqa]]
    assert QuestionColumns.model_validate(read[2]).options == pubmedqa[0].options
