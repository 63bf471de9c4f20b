"""Source loaders: native release files and Hub-shaped rows (written by the tests), bad input, and the real files."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from curate.io import InputError, read_records
from curate.records import Question
from sources import SOURCES, load_source

MEDQA_ROW = {"question": "A 45-year-old man has chest pain. Next step?", "answer": "ECG",
             "options": {"A": "ECG", "B": "CT", "C": "MRI", "D": "Discharge"}, "meta_info": "step2&3",
             "answer_idx": "A", "metamap_phrases": ["chest pain"]}
MEDMCQA_ROW = {"id": "abc-1", "question": "Drug of choice for absence seizures?", "opa": "Phenytoin",
               "opb": "Ethosuximide", "opc": "Carbamazepine", "opd": "Gabapentin", "cop": 2, "choice_type": "single",
               "exp": "Ethosuximide.", "subject_name": "Pharmacology", "topic_name": "Antiepileptics"}
PQAL = {"12345": {"QUESTION": "Does aspirin help?", "CONTEXTS": ["Background text.", "Results text."],
                  "LABELS": ["BACKGROUND", "RESULTS"], "MESHES": ["Aspirin"], "YEAR": "2001",
                  "final_decision": "yes", "LONG_ANSWER": "Yes."},
        "67890": {"QUESTION": "Is X linked to Y?", "CONTEXTS": ["Only context."], "LABELS": ["METHODS"],
                  "MESHES": [], "YEAR": "2010", "final_decision": "maybe", "LONG_ANSWER": "Unclear."}}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_hub_parquet(folder, rows):
    """A local Hub export, as `datasets` writes it (`Dataset.to_parquet`)."""
    import datasets

    folder.mkdir()
    datasets.Dataset.from_list(rows).to_parquet(str(folder / "train-00000-of-00001.parquet"))
    return folder


def test_registry_lists_every_source():
    assert set(SOURCES) == {"medqa", "medmcqa", "pubmedqa", "custom"}


# ------------------------------------------------------------------ medqa


def test_medqa_native_four_and_five_options(tmp_path):
    four = write_jsonl(tmp_path / "test.jsonl", [MEDQA_ROW, {**MEDQA_ROW, "answer_idx": "B", "answer": "CT"}])
    result = load_source("medqa", str(four))
    assert [q.id for q in result.questions] == ["medqa:test:0", "medqa:test:1"]
    assert [q.answer for q in result.questions] == ["A", "B"]
    assert result.questions[0].meta["exam_step"] == "step2&3"
    five_row = {**MEDQA_ROW, "options": {**MEDQA_ROW["options"], "E": "Echo"}}
    five = write_jsonl(tmp_path / "five.jsonl", [five_row])
    (q,) = load_source("medqa", str(five), split="test").questions
    assert q.id == "medqa:test:5opt-0" and list(q.options) == list("ABCDE")


def test_medqa_hub_rows(tmp_path):
    folder = write_hub_parquet(tmp_path / "hub", [MEDQA_ROW, {**MEDQA_ROW, "answer_idx": "D", "answer": "Discharge"}])
    result = load_source("medqa", str(folder), hub_format=True, split="train")
    assert [(q.id, q.answer) for q in result.questions] == [("medqa:train:0", "A"), ("medqa:train:1", "D")]


def test_medqa_without_network_fails_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError, match="hf://GBaker/MedQA-USMLE-4-options") as error:
        load_source("medqa", None, split="test")
    assert "give the source a local file (`path = FILE`" in str(error.value)


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ({k: v for k, v in MEDQA_ROW.items() if k != "answer_idx"}, "field 'answer_idx': required field is missing"),
        ({**MEDQA_ROW, "answer_idx": "F"}, "answer letter 'F' is not among the options"),
        ({**MEDQA_ROW, "options": {}}, "field 'options'"),
        ({**MEDQA_ROW, "answer": "CT"}, "differs from option A"),
    ],
)
def test_medqa_bad_rows_are_located(tmp_path, row, fragment):
    path = write_jsonl(tmp_path / "test.jsonl", [MEDQA_ROW, row])
    with pytest.raises(InputError) as err:
        load_source("medqa", str(path))
    assert fragment in str(err.value) and err.value.line == 2


# ------------------------------------------------------------------ medmcqa


def test_medmcqa_native_is_one_based_and_keeps_meta(tmp_path):
    multi = {**MEDMCQA_ROW, "id": "abc-2", "choice_type": "multi", "opd": "ethosuximide ", "cop": 4}
    result = load_source("medmcqa", str(write_jsonl(tmp_path / "dev.json", [MEDMCQA_ROW, multi])))
    first, second = result.questions
    assert first.id == "medmcqa:dev:abc-1" and first.answer == "B"
    assert first.meta["subject_name"] == "Pharmacology" and first.meta["exp"] == "Ethosuximide."
    assert first.meta["multi_answer"] is False and first.meta["duplicated_options"] is False
    assert second.answer == "D" and second.meta["multi_answer"] is True and second.meta["duplicated_options"] is True


def test_medmcqa_native_json_array(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps([MEDMCQA_ROW]))
    (q,) = load_source("medmcqa", str(path)).questions
    assert q.split == "train" and q.answer == "B"


def test_medmcqa_hub_rows_are_zero_based_and_test_split_is_rejected(tmp_path):
    rows = [{**MEDMCQA_ROW, "cop": 1}, {**MEDMCQA_ROW, "id": "t-9", "cop": -1}]
    result = load_source("medmcqa", str(write_hub_parquet(tmp_path / "hub", rows)), hub_format=True, split="validation")
    assert [(q.id, q.answer) for q in result.questions] == [("medmcqa:dev:abc-1", "B")]
    assert [r.reasons for r in result.rejected] == [["no_gold_answer"]]


def test_medmcqa_zero_based_cop_in_native_file_is_caught(tmp_path):
    path = write_jsonl(tmp_path / "dev.jsonl", [{**MEDMCQA_ROW, "cop": 0}])
    with pytest.raises(InputError, match=r"dev\.jsonl:1 \(id=medmcqa:dev:abc-1\) field 'cop': expected 1\.\.4.*0-based"):
        load_source("medmcqa", str(path))


def test_medmcqa_one_based_cop_in_hub_rows_is_caught(tmp_path):
    folder = write_hub_parquet(tmp_path / "hub", [{**MEDMCQA_ROW, "cop": 4}])
    with pytest.raises(InputError, match="1-based"):
        load_source("medmcqa", str(folder), hub_format=True)


def test_medmcqa_empty_option(tmp_path):
    path = write_jsonl(tmp_path / "dev.jsonl", [{**MEDMCQA_ROW, "opc": ""}])
    with pytest.raises(InputError, match="field 'opc': option text is empty"):
        load_source("medmcqa", str(path))


def test_skip_invalid_keeps_good_rows_and_rejects_bad_ones(tmp_path):
    path = write_jsonl(tmp_path / "dev.jsonl", [MEDMCQA_ROW, {**MEDMCQA_ROW, "id": "bad", "cop": 9}])
    result = load_source("medmcqa", str(path), skip_invalid=True)
    assert len(result.questions) == 1 and result.rejected[0].reasons == ["invalid_input"]
    assert "bad" in result.rejected[0].detail


# ------------------------------------------------------------------ pubmedqa


def test_pubmedqa_native_splits_by_ground_truth(tmp_path):
    (tmp_path / "ori_pqal.json").write_text(json.dumps(PQAL))
    (tmp_path / "test_ground_truth.json").write_text(json.dumps({"67890": "maybe"}))
    result = load_source("pubmedqa", str(tmp_path))
    by_id = {q.id: q for q in result.questions}
    assert set(by_id) == {"pubmedqa:train:12345", "pubmedqa:test:67890"}
    q = by_id["pubmedqa:train:12345"]
    assert q.options == {"A": "yes", "B": "no", "C": "maybe"} and q.answer == "A" and q.meta["pmid"] == "12345"
    assert q.context == "BACKGROUND: Background text.\nRESULTS: Results text."
    only_test = load_source("pubmedqa", str(tmp_path / "ori_pqal.json"), split="test").questions
    assert [q.id for q in only_test] == ["pubmedqa:test:67890"] and only_test[0].answer == "C"


def test_pubmedqa_label_disagreeing_with_ground_truth(tmp_path):
    (tmp_path / "ori_pqal.json").write_text(json.dumps(PQAL))
    (tmp_path / "test_ground_truth.json").write_text(json.dumps({"67890": "no"}))
    with pytest.raises(InputError, match="disagrees with test_ground_truth.json"):
        load_source("pubmedqa", str(tmp_path))


def test_pubmedqa_test_split_needs_ground_truth(tmp_path):
    (tmp_path / "ori_pqal.json").write_text(json.dumps(PQAL))
    with pytest.raises(InputError, match="test_ground_truth.json: file not found"):
        load_source("pubmedqa", str(tmp_path), split="test")


def test_pubmedqa_hub_rows(tmp_path):
    rows = [{"pubid": 111, "question": "Q1?", "context": {"contexts": ["c1", "c2"], "labels": ["A", "B"],
             "meshes": ["m"]}, "long_answer": "l", "final_decision": "no"},
            {"pubid": 222, "question": "Q2?", "context": {"contexts": ["c"], "labels": ["A"], "meshes": []},
             "long_answer": "l", "final_decision": None}]
    result = load_source("pubmedqa", str(write_hub_parquet(tmp_path / "hub", rows)), hub_format=True,
                         config="pqa_labeled")
    (q,) = result.questions
    assert q.id == "pubmedqa:pqa_labeled:111" and q.answer == "B" and q.context == "A: c1\nB: c2"
    assert result.rejected[0].reasons == ["no_gold_answer"]


# ------------------------------------------------------------------ custom


def test_custom_csv_with_option_columns_and_text_answers(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("qid,stem,o1,o2,o3,gold,topic\n7,Which drug?,Aspirin,Heparin,Warfarin,heparin,cardio\n")
    result = load_source("custom", str(path), mapping=["id=qid", "question=stem", "A=o1", "B=o2", "C=o3",
                                                        "answer=gold", "topic=topic"], answer_format="text", source_name="ward")
    (q,) = result.questions
    assert (q.id, q.source, q.answer, q.meta) == ("ward:train:7", "ward", "B", {"topic": "cardio"})


def test_custom_jsonl_with_list_options_and_index_answers(tmp_path):
    path = write_jsonl(tmp_path / "mine.jsonl", [{"q": "Pick", "choices": ["x", "y"], "label": 1}])
    (q,) = load_source("custom", str(path), mapping={"question": "q", "options": "choices", "answer": "label"},
                       answer_format="index1").questions
    assert q.options == {"A": "x", "B": "y"} and q.answer == "A"


def test_custom_bad_mapping_and_bad_answer(tmp_path):
    path = write_jsonl(tmp_path / "mine.jsonl", [{"q": "Pick", "choices": ["x", "y"], "label": 5}])
    with pytest.raises(InputError, match="missing mapping for 'answer'"):
        load_source("custom", str(path), mapping=["question=q", "options=choices"])
    with pytest.raises(InputError, match=r"mine\.jsonl:1 .*field 'label': index 5 is outside"):
        load_source("custom", str(path), mapping=["question=q", "options=choices", "answer=label"],
                    answer_format="index0")


# ------------------------------------------------------------------ CLI


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (json.dumps(MEDQA_ROW) + "\n" + json.dumps(MEDQA_ROW)[:30] + "\n", "test.jsonl:2: invalid JSON"),
        (json.dumps(MEDQA_ROW).encode() + b"\n" + b'{"question": "\xff"}\n', "test.jsonl:2: not valid UTF-8"),
        (json.dumps({**MEDQA_ROW, "answer_idx": "Q"}) + "\n", "field 'answer_idx'"),
    ],
)
def test_cli_bad_input_gives_clear_error_and_no_output(tmp_path, cli, content, fragment):
    src = tmp_path / "test.jsonl"
    src.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "q.parquet"
    proc = cli("sources", "pull", "medqa", "--path", src, "-o", out)
    assert proc.returncode == 2
    assert fragment in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [src]


def test_cli_pull_writes_report_and_rejected(tmp_path, cli):
    src = write_jsonl(tmp_path / "dev.jsonl", [MEDMCQA_ROW, {**MEDMCQA_ROW, "id": "x", "cop": 7}])
    out, rejected, report = tmp_path / "q.jsonl", tmp_path / "rej.jsonl", tmp_path / "report.json"
    cli("sources", "pull", "medmcqa", "--path", src, "-o", out, "--skip-invalid", "--rejected", rejected,
        "--report", report, check=True)
    assert len(read_records(out, Question)[0]) == 1
    assert json.loads(rejected.read_text())["reasons"] == ["invalid_input"]
    assert json.loads(report.read_text())["reasons"] == {"invalid_input": 1}


def test_cli_help_starts_without_heavy_imports(cli):
    import subprocess
    import sys

    code = ("import sys; from curate.cli import build_app; build_app(); "
            "heavy = [m for m in ('torch', 'transformers', 'presidio_analyzer', 'argilla', 'vllm', 'datasets', 'spacy')"
            " if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
    assert cli("--help").returncode == 0


# ------------------------------------------------------------------ real files


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["test.4_options.jsonl", "test.jsonl"])
def test_real_medqa(shared_data, name):
    path = shared_data / "benchmarks" / "medqa" / name
    questions = load_source("medqa", str(path)).questions
    assert len(questions) == 1273 and len({q.id for q in questions}) == 1273
    raw = [json.loads(line) for line in path.read_text().splitlines()]
    assert [q.answer for q in questions] == [r["answer_idx"] for r in raw]
    assert {len(q.options) for q in questions} == ({4} if "4_options" in name else {5})


@pytest.mark.shared_data
def test_real_medmcqa(shared_data):
    path = shared_data / "benchmarks" / "medmcqa" / "dev.jsonl"
    result = load_source("medmcqa", str(path))
    assert len(result.questions) == 4183 and not result.rejected
    raw = [json.loads(line) for line in path.read_text().splitlines()]
    assert [q.answer for q in result.questions] == ["ABCD"[r["cop"] - 1] for r in raw]


@pytest.mark.shared_data
def test_real_pubmedqa(shared_data):
    folder = shared_data / "benchmarks" / "pubmedqa"
    questions = load_source("pubmedqa", str(folder / "ori_pqal.json")).questions
    assert Counter(q.split for q in questions) == {"test": 500, "train": 500}
    truth = json.loads((folder / "test_ground_truth.json").read_text())
    letters = {"yes": "A", "no": "B", "maybe": "C"}
    tests = [q for q in questions if q.split == "test"]
    assert {q.meta["pmid"] for q in tests} == set(truth)
    assert all(q.answer == letters[truth[q.meta["pmid"]]] and q.id.endswith(q.meta["pmid"]) for q in tests)


@pytest.mark.shared_data
def test_newcomer_pull_then_inspect(shared_data, tmp_path, cli):
    out = tmp_path / "q.parquet"
    cli("sources", "pull", "medqa", "--path", shared_data / "benchmarks/medqa/test.4_options.jsonl", "-o", out,
        check=True)
    proc = cli("inspect", out, check=True)
    assert "1273 rows" in proc.stdout and "medqa" in proc.stdout and "test" in proc.stdout
