"""`curate publish`: the Hub layout, the dataset card, the refusal to publish unsafe data, and no secrets on disk.

The run directory comes from the real runner with every stage real (`tests/pipeline_support.py`: the demo's real
questions and recorded completions, a clinicians' reviews file applied). The Hub cannot be reached here: the
local-dir export writes the same files, and one test replaces `HfApi`'s two calls (the narrowest boundary) to check
what the push sends.
"""

from __future__ import annotations

import re

import pytest
import yaml

from curate.io import InputError, read_rows
from curate.pipeline.rundir import RunDir
from curate.publish import PublishRefused, publish
from tests.pipeline_support import redacted_spans


@pytest.fixture(scope="module")
def run_dir(finished_run):
    return finished_run


def front_matter(card: str) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", card, re.S)
    assert match, card[:300]
    return yaml.safe_load(match.group(1))


def card_table(card: str, heading: str) -> list[list[str]]:
    section = card.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def load_fresh(folder, tmp_path):
    """`datasets.load_dataset` on the folder, with a cache of its own: its default cache can hand back an earlier
    build of another folder with the same layout (seen here), which would let a stale file pass the checks."""
    import datasets

    return datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf-cache"))


def test_local_dir_loads_with_datasets_and_has_trl_columns(run_dir, tmp_path):
    folder = run_dir / "publish"
    assert (folder / "data" / "train-00000-of-00001.parquet").exists()
    ds = load_fresh(folder, tmp_path)
    manifest = RunDir.open(run_dir).manifest
    assert list(ds) == ["train"]
    assert ds["train"].num_rows == manifest["stages"]["publish"]["output"]["rows"] == \
        manifest["stages"]["review"]["counts"]["rows_out"]
    row = ds["train"][0]
    # the student prompt is the teacher's template family (system + user), never the rationalisation prompt
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    assert row["messages"][1]["content"] == row["prompt"] and row["messages"][2]["content"] == row["completion"]
    assert re.fullmatch(r"<think>\n.+\n</think>\n<answer>[A-E]</answer>", row["completion"], re.S)
    assert row["question"] in row["prompt"] and "A. " in row["prompt"] and "<answer>" in row["prompt"]
    assert row["teacher_completion"]
    reviewed = {r["trace_id"]: r for r in read_rows(run_dir / "reviewed.parquet")}
    assert set(ds["train"]["trace_id"]) == set(reviewed)
    assert ds["train"]["completion"] == [reviewed[t]["text"] for t in ds["train"]["trace_id"]]  # the scrubbed text


def test_card_metadata(run_dir):
    meta = front_matter((run_dir / "publish" / "README.md").read_text())
    assert sorted(meta["license"]) == ["apache-2.0", "mit"]  # medmcqa apache-2.0, medqa and pubmedqa mit
    assert meta["language"] == ["en"]
    assert "question-answering" in meta["task_categories"]
    assert meta["size_categories"] == ["n<1K"]
    assert set(meta["source_datasets"]) == {"GBaker/MedQA-USMLE-4-options", "openlifescienceai/medmcqa", "qiaojin/PubMedQA"}
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]
    assert "expert-generated" in meta["annotations_creators"]  # reviewed by clinicians


def test_card_counts_match_the_manifest(run_dir):
    card = (run_dir / "publish" / "README.md").read_text()
    manifest = RunDir.open(run_dir).manifest
    table = card_table(card, "Counts per stage")
    assert [r[0] for r in table] == ["sources", "generate", "filter", "dedupe", "decontaminate", "scrub", "review"]
    for stage, status, rows_in, rows_out, rejected, _ in table:
        counts = manifest["stages"][stage]["counts"]
        assert status == "done"
        assert (int(rows_in), int(rows_out), int(rejected)) == (counts["rows_in"], counts["rows_out"], counts["rejected"])
    published = int(re.search(r"Rows published: \*\*(\d+)\*\*", card).group(1))
    assert published == manifest["stages"]["publish"]["output"]["rows"]


def test_card_body_sections(run_dir):
    card = (run_dir / "publish" / "README.md").read_text()
    rows = read_rows(run_dir / "reviewed.parquet")
    sources = {r[0]: r for r in card_table(card, "Sources")}
    assert set(sources) == {"medqa", "medmcqa", "pubmedqa"}
    assert sources["medmcqa"][3] == "apache-2.0" and sources["medqa"][5] == "test.4_options.jsonl, limit=40"
    assert sum(int(r[1]) for r in sources.values()) == len(rows)
    teachers = card_table(card, "Teacher and prompts")
    assert teachers[0][0] == "demo-recording" and teachers[0][2] == f"`{rows[0]['prompt_hash']}`"
    decon = {r[0]: int(r[1]) for r in card_table(card, "Benchmark decontamination")}
    rejected = read_rows(run_dir / "decontaminate.rejected.parquet")
    assert sum(decon.values()) == len(rejected) > 0
    phi = {r[0]: int(r[1]) for r in card_table(card, "PHI")}
    found: dict[str, int] = {}
    for row in read_rows(run_dir / "scrubbed.parquet"):
        for kind, n in row["phi_found"].items():
            found[kind] = found.get(kind, 0) + n
    assert found and phi == found  # the real scrub found names in the real questions: the card counts them
    spans = redacted_spans(run_dir)
    assert spans and not [s for s in spans if s in card]  # counts only, never the values
    overall = RunDir.open(run_dir).report("review").error_rate.overall
    low, high = overall.interval
    assert f"{100 * low:.1f}%–{100 * high:.1f}%" in card
    assert "## Known limitations" in card and "--force" not in card


def benchmark_files() -> dict[str, str]:
    """Local copies of the three evaluation splits the gate always checks: the demo's files are real (partial)
    copies of MedQA test, MedMCQA dev and PubMedQA test in their native formats."""
    from tests.pipeline_support import DEMO

    return {"medqa:test": str(DEMO / "medqa" / "test.4_options.jsonl"), "medmcqa:dev": str(DEMO / "medmcqa" / "dev.jsonl"),
            "pubmedqa:test": str(DEMO / "pubmedqa" / "ori_pqal.json")}


def own_rows(n: int = 6) -> list[dict]:
    """A team's own verified rows (not benchmark items, no PHI), as a hand-run chain of stages leaves them."""
    rows = []
    for i in range(n):
        gold = "ABCD"[i % 4]
        reasoning = (f"Ward case {i}: heparin given for a clot is reversed by protamine sulfate, which binds it; "
                     "vitamin K reverses warfarin, naloxone reverses opioids, and flumazenil reverses benzodiazepines.")
        rows.append({"trace_id": f"ward-{i}", "question_id": f"ward:train:{i}", "source": "ward", "split": "train",
                     "question": f"Ward drill {i}: which option is the agent that reverses unfractionated heparin?",
                     "options": {letter: ("Protamine sulfate" if letter == gold else f"Distractor {letter}{i}")
                                 for letter in "ABCD"},
                     "gold": gold, "answer": gold, "reasoning": reasoning, "teacher": "t", "prompt_name": "p",
                     "prompt_hash": "h", "text": f"<think>\n{reasoning}\n</think>\n<answer>{gold}</answer>",
                     "completion": f"{reasoning} The answer is {gold}."})
    return rows


@pytest.fixture
def own_file(tmp_path):
    from curate.io import write_rows

    path = tmp_path / "own.parquet"
    write_rows(own_rows(), path)
    return path


def test_own_rows_pass_every_check(own_file, tmp_path):
    folder = publish(own_file, repo_id="acme/x", local_dir=tmp_path / "out", benchmark_paths=benchmark_files())
    card = (folder / "README.md").read_text()
    assert "6 of 6 rows give their gold answer" in card and "PHI found in **0** of 6 rows" in card
    assert "`medmcqa:dev`, `medqa:test`, `pubmedqa:test`" in card and "0 of 6 rows matched" in card
    assert "--force" not in card and "per-stage counts are not available" in card


def test_refuses_rows_whose_answer_is_not_gold(own_file, tmp_path):
    from curate.io import write_rows

    rows = own_rows()
    rows[2]["gold"] = "A" if rows[2]["gold"] != "A" else "B"  # the canonical text's letter is no longer the gold one
    write_rows(rows, own_file)
    with pytest.raises(PublishRefused, match=r"1 of 6 rows whose final answer is not their gold letter .*ward-2"):
        publish(own_file, repo_id="acme/x", local_dir=tmp_path / "out", benchmark_paths=benchmark_files())
    assert not (tmp_path / "out").exists()


def test_refuses_rows_with_phi_naming_rows_and_types_never_values(own_file, tmp_path):
    from curate.io import write_rows

    rows = own_rows()
    rows[4]["reasoning"] += " Seen by John Smith, MRN 4829101, SSN 123-45-6789."
    write_rows(rows, own_file)
    with pytest.raises(PublishRefused) as refused:
        publish(own_file, repo_id="acme/x", local_dir=tmp_path / "out", benchmark_paths=benchmark_files())
    message = str(refused.value)
    assert "1 of 6 rows with PHI found" in message and "ward-4" in message and "SSN" in message and "MRN" in message
    assert "John" not in message and "4829101" not in message and "123-45-6789" not in message
    folder = publish(own_file, repo_id="acme/x", local_dir=tmp_path / "out", benchmark_paths=benchmark_files(), force=True)
    card = (folder / "README.md").read_text()
    assert "Warning: published with `--force`" in card and "PHI found in **1** of 6 rows" in card
    assert "Published with `--force` although 1 of 6 rows with PHI found" in card and "4829101" not in card


def test_refuses_benchmark_items_unless_declared_an_evaluation_set(run_dir, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(PublishRefused, match=r"rows that are benchmark evaluation items \(medqa:test \d+"):
        publish(run_dir / "scrubbed.parquet", repo_id="acme/x", local_dir=out, benchmark_paths=benchmark_files())
    assert not out.exists()
    # a benchmark the gate cannot read (offline, no local file) is a refusal too, not a pass
    with pytest.raises(PublishRefused, match="could not be checked against medmcqa:dev"):
        publish(run_dir / "scrubbed.parquet", repo_id="acme/x", local_dir=out,
                benchmark_paths={"medqa:test": benchmark_files()["medqa:test"]})
    folder = publish(run_dir / "scrubbed.parquet", repo_id="acme/x", local_dir=out, evaluation_set=True)
    card = (folder / "README.md").read_text()
    assert "An evaluation set, not training data" in card and "**This dataset is made of benchmark evaluation items**" in card
    with pytest.raises(PublishRefused, match="refusing to push an evaluation set"):
        publish(run_dir / "scrubbed.parquet", repo_id="acme/x", evaluation_set=True)


def test_run_dir_must_be_the_files_own_run(run_dir, own_file, tmp_path):
    with pytest.raises(PublishRefused, match="is not an output of the run"):
        publish(own_file, repo_id="acme/x", local_dir=tmp_path / "o", run_dir=run_dir, benchmark_paths=benchmark_files())


def test_rows_publish_without_run_dir(run_dir, tmp_path):
    folder = publish(run_dir / "scrubbed.parquet", repo_id="acme/x", local_dir=tmp_path / "out", evaluation_set=True)
    card = (folder / "README.md").read_text()
    assert "per-stage counts are not available" in card and "--force" not in card


def test_cli_refusal_and_force(cli, run_dir, tmp_path):
    proc = cli("publish", "-i", run_dir / "filtered.parquet", "--repo-id", "acme/x", "--local-dir", tmp_path / "o")
    assert proc.returncode == 2
    assert "refusing to publish" in proc.stderr and "--force" in proc.stderr
    assert not (tmp_path / "o").exists()
    proc = cli("publish", "-i", run_dir / "filtered.parquet", "--repo-id", "acme/x", "--local-dir", tmp_path / "o",
               "--evaluation-set", "--force", check=True)
    assert (tmp_path / "o" / "README.md").exists()


def test_split_by_column(run_dir, tmp_path):
    folder = publish(run_dir / "reviewed.parquet", repo_id="acme/x", local_dir=tmp_path / "o", run_dir=run_dir,
                     split_by="source", evaluation_set=True)
    ds = load_fresh(folder, tmp_path)
    assert set(ds) == {"medqa", "medmcqa", "pubmedqa"}
    assert all(set(ds[s]["source"]) == {s} for s in ds)
    meta = front_matter((folder / "README.md").read_text())
    assert {d["split"] for d in meta["configs"][0]["data_files"]} == {"medqa", "medmcqa", "pubmedqa"}


def test_republish_replaces_and_foreign_dir_is_refused(run_dir, tmp_path):
    out = tmp_path / "o"
    publish(run_dir / "reviewed.parquet", repo_id="acme/x", local_dir=out, run_dir=run_dir, split_by="source",
            evaluation_set=True)
    publish(run_dir / "reviewed.parquet", repo_id="acme/x", local_dir=out, run_dir=run_dir, evaluation_set=True)
    assert sorted(p.name for p in (out / "data").iterdir()) == ["train-00000-of-00001.parquet"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".publish")]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not an earlier publish folder"):
        publish(run_dir / "reviewed.parquet", repo_id="acme/x", local_dir=foreign, run_dir=run_dir, evaluation_set=True)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_bad_rows_and_repo_id(run_dir, tmp_path):
    from curate.io import write_rows

    rows = read_rows(run_dir / "scrubbed.parquet")
    rows[3] = {**rows[3], "text": None, "reasoning": None}
    write_rows(rows, tmp_path / "bad.parquet")
    with pytest.raises(InputError, match=r"bad.parquet row 3 \(id=.*\) field 'text': no canonical training text"):
        publish(tmp_path / "bad.parquet", repo_id="acme/x", local_dir=tmp_path / "o", evaluation_set=True)
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="expected ORG/NAME"):
        publish(run_dir / "scrubbed.parquet", repo_id="no-slash", local_dir=tmp_path / "o")


def test_push_goes_through_hfapi(own_file, monkeypatch):
    """No Hub here: HfApi's create_repo and upload_folder are replaced to record what the push sends."""
    import huggingface_hub

    calls = []

    def create_repo(self, repo_id, **kw):
        calls.append(("create_repo", repo_id, kw))

    def upload_folder(self, *, repo_id, folder_path, **kw):
        from pathlib import Path

        files = sorted(p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*") if p.is_file())
        calls.append(("upload_folder", repo_id, {**kw, "files": files}))

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    where = publish(own_file, repo_id="acme/medical-cot", private=True, benchmark_paths=benchmark_files())
    assert str(where) == "hf:/datasets/acme/medical-cot"
    assert calls[0] == ("create_repo", "acme/medical-cot", {"repo_type": "dataset", "private": True, "exist_ok": True})
    assert calls[1][1] == "acme/medical-cot" and calls[1][2]["repo_type"] == "dataset"
    assert calls[1][2]["files"] == ["README.md", "data/train-00000-of-00001.parquet"]


def test_no_secret_lands_in_any_file(cli, tmp_path):
    """Keys live in the environment: a fake HF_TOKEN / OPENAI_API_KEY and a password in a server URL appear in no
    file of the run directory or the published folder."""
    import os

    from tests.pipeline_support import config_text, copy_demo, parse, run, write_benchmark

    secrets = {"HF_TOKEN": "hf_FAKEtokenDoNotLeak123", "OPENAI_API_KEY": "sk-FAKEkeyDoNotLeak456"}
    old = {k: os.environ.get(k) for k in secrets}
    os.environ.update(secrets)
    try:
        files = copy_demo(tmp_path / "src")
        bench = write_benchmark(tmp_path / "bench.jsonl", files["medqa"])
        raw = config_text(files, tmp_path / "run2", benchmark=bench, limits={"medqa": 4, "medmcqa": 2, "pubmedqa": 2})
        raw = raw.replace('stratify = ["source"]', 'stratify = ["source"]\napi_url = "http://bob:pa55wordXYZ@127.0.0.1:9"')
        run(parse(raw))
        cli("publish", "-i", tmp_path / "run2" / "scrubbed.parquet", "--repo-id", "acme/x", "--run-dir", tmp_path / "run2",
            "--local-dir", tmp_path / "cli-out", "--evaluation-set", check=True)
        cli("report", tmp_path / "run2", check=True)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    needles = [*secrets.values(), "pa55wordXYZ"]
    checked = 0
    for root in (tmp_path / "run2", tmp_path / "cli-out"):
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                checked += 1
                for needle in needles:
                    assert needle.encode() not in data, f"{needle} found in {path}"
    assert checked > 20
    manifest = (tmp_path / "run2" / "manifest.json").read_text()
    assert "http://***@127.0.0.1:9" in manifest


def test_licences_come_from_the_sources():
    from curate.publish.card import licenses, size_category

    assert licenses(["medqa", "pubmedqa"]) == ["mit"]
    assert licenses(["medmcqa", "medqa"]) == ["apache-2.0", "mit"]
    assert licenses(["custom"]) == ["other"] and licenses(["my-notes"]) == ["other"]
    assert [size_category(n) for n in (999, 1000, 99_999, 100_000, 2_000_000)] == \
        ["n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M"]


def own_rows_file(folder):
    from curate.io import write_rows

    path = folder / "own-cli.parquet"
    write_rows(own_rows(), path)
    return path


def test_push_failure_is_one_clear_line(cli, tmp_path):
    """Offline (HF_HUB_OFFLINE=1, as in every test): the push fails with one line naming the repo and the way out."""
    bench = [f"--benchmark-path={k}={v}" for k, v in benchmark_files().items()]
    proc = cli("publish", "-i", own_rows_file(tmp_path), "--repo-id", "acme/x", *bench,
               env={"HF_HUB_OFFLINE": "1", "HF_TOKEN": "hf_FAKEtokenDoNotLeak123", "TMPDIR": str(tmp_path)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "push to https://huggingface.co/datasets/acme/x failed" in proc.stderr and "--local-dir" in proc.stderr
    assert "hf_FAKEtokenDoNotLeak123" not in proc.stderr + proc.stdout
    assert not list(tmp_path.glob(".publish-*"))  # the staging folder is gone
