"""`curate publish`: the Hub layout, the dataset card, the refusal to publish unsafe data, and no secrets on disk.

The run directory comes from the real runner with every stage real (`tests/pipeline_support.py`: the demo's real
questions and recorded completions, a clinicians' reviews file applied). The Hub cannot be reached here: the
local-dir export writes the same files, and one test replaces `HfApi`'s two calls (the narrowest boundary) to check
what the push sends.
"""

from __future__ import annotations

import json
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


def load_fresh(folder, tmp_path, name=None):
    """`datasets.load_dataset` on the folder (one of its configs), with a cache of its own: its default cache can
    hand back an earlier build of another folder with the same layout (seen here), which would let a stale file pass
    the checks."""
    import datasets

    return datasets.load_dataset(str(folder), name, cache_dir=str(tmp_path / "hf-cache"))


def test_local_dir_loads_with_datasets_and_has_trl_columns(run_dir, tmp_path):
    folder = run_dir / "publish"
    assert (folder / "data" / "train-00000-of-00001.parquet").exists()
    ds = load_fresh(folder, tmp_path)
    plain = load_fresh(folder, tmp_path, "prompt_completion")["train"]
    lineage = load_fresh(folder, tmp_path, "lineage")["train"]
    manifest = RunDir.open(run_dir).manifest
    assert list(ds) == ["train"]
    assert ds["train"].num_rows == manifest["stages"]["publish"]["output"]["rows"] == \
        manifest["stages"]["review"]["counts"]["rows_out"]
    row, pair, more = ds["train"][0], plain[0], lineage[0]
    assert row["trace_id"] == pair["trace_id"] == more["trace_id"]
    # the student prompt is the teacher's template family (system + user), never the rationalisation prompt
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    assert row["messages"][1]["content"] == pair["prompt"] and row["messages"][2]["content"] == pair["completion"]
    assert re.fullmatch(r"<think>\n.+\n</think>\n<answer>[A-E]</answer>", pair["completion"], re.S)
    assert row["question"] in pair["prompt"] and "A. " in pair["prompt"] and "<answer>" in pair["prompt"]
    assert more["teacher_completion"]
    reviewed = {r["trace_id"]: r for r in read_rows(run_dir / "reviewed.parquet")}
    assert set(ds["train"]["trace_id"]) == set(reviewed)
    assert plain["completion"] == [reviewed[t]["text"] for t in plain["trace_id"]]  # the scrubbed text


def test_card_metadata(run_dir):
    meta = front_matter((run_dir / "publish" / "README.md").read_text())
    assert sorted(meta["license"]) == ["apache-2.0", "mit"]  # medmcqa apache-2.0, medqa and pubmedqa mit
    assert meta["language"] == ["en"]
    assert "question-answering" in meta["task_categories"]
    assert meta["size_categories"] == ["n<1K"]
    assert set(meta["source_datasets"]) == {"GBaker/MedQA-USMLE-4-options", "openlifescienceai/medmcqa", "qiaojin/PubMedQA"}
    assert meta["configs"] == [
        {"config_name": "default", "default": True, "data_files": [{"split": "train", "path": "data/train-*"}]},
        {"config_name": "prompt_completion", "data_files": [{"split": "train", "path": "prompt_completion/train-*"}]},
        {"config_name": "lineage", "data_files": [{"split": "train", "path": "lineage/train-*"}]}]
    assert "expert-generated" in meta["annotations_creators"]  # reviewed by clinicians


def test_card_counts_match_the_manifest(run_dir):
    card = (run_dir / "publish" / "README.md").read_text()
    manifest = RunDir.open(run_dir).manifest
    table = card_table(card, "Counts per stage")
    assert [r[0] for r in table] == ["sources", "generate", "filter", "verify", "dedupe", "decontaminate", "scrub",
                                     "review"]
    assert table[3][1] == "skipped"  # no [verify]: the card says no judge ran
    for stage, status, rows_in, rows_out, rejected, _ in [*table[:3], *table[4:]]:
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
    # counts only, never the values. The example row is published text (scanned by the gate): the words scrub took
    # for names in one sentence ("trisomy", "normal") stand unredacted in others, so it is checked on its own
    around = card.split("## Example row\n", 1)[0] + card.split("## Example row\n", 1)[1].split("\n## ", 1)[1]
    assert spans and not [s for s in spans if s in around]
    overall = RunDir.open(run_dir).report("review").error_rate.overall
    low, high = overall.interval
    assert f"{100 * low:.1f}%–{100 * high:.1f}%" in card
    # the card says how the interval was made and how much of the corpus the reviewed strata hold (issue 25)
    assert "Jeffreys" in card and f"reviewed strata hold {100 * overall.coverage:.1f}% of the corpus" in card
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
    for config in meta["configs"]:  # every config has every split
        assert {d["split"] for d in config["data_files"]} == {"medqa", "medmcqa", "pubmedqa"}
    lineage = load_fresh(folder, tmp_path, "lineage")
    assert {s: sorted(lineage[s]["trace_id"]) for s in lineage} == {s: sorted(ds[s]["trace_id"]) for s in ds}


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
    with pytest.raises(ValueError, match="not a folder curate published"):
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
    assert calls[1][2]["files"] == ["README.md", "data/train-00000-of-00001.parquet", "lineage/train-00000-of-00001.parquet",
                                    "prompt_completion/train-00000-of-00001.parquet"]


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


# ---------------------------------------------------------------- one config per training format, typed, with lineage


def card_fields(card: str) -> dict[str, list[list[str]]]:
    """The card's field table of each config: {config: [[column, type, what it is], ...]}."""
    section = card.split("## Configs and fields\n", 1)[1].split("\n## ", 1)[0]
    out = {}
    for part in section.split("\n### ")[1:]:
        name = part.split("`", 2)[1]
        lines = [line for line in part.splitlines() if line.startswith("|")][2:]
        out[name] = [[cell.strip().strip("`") for cell in line.strip("|").split(" | ")] for line in lines]
    return out


def test_each_config_is_one_training_format(run_dir, tmp_path):
    """`default` is conversational only (no prompt/completion for TRL to prefer), `prompt_completion` plain strings
    only, and `lineage` has every other column, keyed by trace_id: together they hold every column of the rows."""
    folder = run_dir / "publish"
    configs = {name: load_fresh(folder, tmp_path, name)["train"] for name in ("default", "prompt_completion", "lineage")}
    default, plain, lineage = configs.values()
    assert "messages" in default.column_names and not {"prompt", "completion", "text"} & set(default.column_names)
    assert {"prompt", "completion"} <= set(plain.column_names) and not {"messages", "text"} & set(plain.column_names)
    assert not {"messages", "prompt", "completion"} & set(lineage.column_names)
    audit = ["question_id", "source", "split", "question", "options", "gold", "answer", "reasoning", "prompt_name",
             "prompt_hash", "phi_found", "review"]
    for ds in (default, plain):
        assert set(audit) <= set(ds.column_names)
        assert ds.column_names[0] == "trace_id"
    for ds in configs.values():
        assert ds["trace_id"] == default["trace_id"]  # the same rows in the same order: trace_id joins them
    reviewed = read_rows(run_dir / "reviewed.parquet")
    published = set().union(*(ds.column_names for ds in configs.values()))
    assert set().union(*reviewed) - published == {"text"}  # it is `completion`, the training target
    assert {"params", "usage", "latency_s"} <= set(lineage.column_names)
    by_id = {r["trace_id"]: r for r in reviewed}
    for pair, more in zip(plain, lineage, strict=True):  # the raw output moved to lineage's teacher_completion
        assert pair["completion"] == by_id[pair["trace_id"]]["text"]
        assert more["teacher_completion"] == by_id[more["trace_id"]]["completion"]
    # typed nested columns, not JSON text
    row = default[0]
    assert isinstance(row["options"], dict) and set("ABC") <= set(row["options"])
    assert isinstance(row["meta"], dict) and isinstance(row["review"], dict) and row["review"]["verdict"] == "accepted"
    assert isinstance(lineage[0]["usage"], dict) and lineage[0]["usage"]["completion_tokens"] > 0
    for r in default:
        assert {k: v for k, v in r["options"].items() if v is not None} == by_id[r["trace_id"]]["options"]
        assert r["answer"] == r["gold"] and r["messages"][-1]["content"].endswith(f"<answer>{r['gold']}</answer>")


def test_constant_and_empty_columns_stay_in_lineage_and_the_card_says_so(run_dir, tmp_path):
    folder = run_dir / "publish"
    default = load_fresh(folder, tmp_path)["train"]
    lineage = load_fresh(folder, tmp_path, "lineage")["train"]
    card = (folder / "README.md").read_text()
    assert "teacher" not in default.column_names and set(lineage["teacher"]) == {"demo-recording"}  # one teacher
    assert "Left out of `default` and `prompt_completion`" in card and "`teacher` (always `demo-recording`)" in card
    # a team's rows: one source, split, teacher and prompt, context always null: all of them stay in lineage only
    from curate.publish.layout import build_layout, hub_row

    rows = [hub_row({**r, "context": None, "pass_rate": 1.0}, i, folder) for i, r in enumerate(own_rows())]
    layout = build_layout({"train": rows})
    assert layout.dropped == {"source": "always `ward`", "split": "always `train`", "context": "always empty",
                              "teacher": "always `t`", "prompt_name": "always `p`", "prompt_hash": "always `h`",
                              "pass_rate": "always `1.0`"}
    assert set(layout.dropped) <= set(layout.columns("lineage"))
    assert not set(layout.dropped) & set(layout.columns("default"))
    assert layout.columns("default") == ["trace_id", "messages", "question_id", "question", "options", "gold", "answer",
                                         "reasoning"]


def test_field_table_lists_every_column_from_the_column_models(run_dir):
    import pyarrow.parquet as pq

    from curate.publish.card import type_name
    from curate.records import PublishColumns, QuestionColumns, ScrubColumns, Trace, Verdict

    folder = run_dir / "publish"
    fields = card_fields((folder / "README.md").read_text())
    assert list(fields) == ["default", "prompt_completion", "lineage"]
    for config, where in (("default", "data"), ("prompt_completion", "prompt_completion"), ("lineage", "lineage")):
        schema = pq.read_schema(folder / where / "train-00000-of-00001.parquet")
        table = {name: (kind, about) for name, kind, about in fields[config]}
        assert list(table) == schema.names
        for name in schema.names:
            assert table[name][0] == type_name(schema.field(name).type)
            assert table[name][1] and "not one of curate's" not in table[name][1], (config, name)
    default, lineage = {r[0]: r for r in fields["default"]}, {r[0]: r for r in fields["lineage"]}
    assert default["options"][1] == "{A, B, C, D: string}"  # a struct of letters, not JSON text
    assert default["messages"][1] == "list<{role, content: string}>"
    for model, name in ((QuestionColumns, "gold"), (Verdict, "answer"), (ScrubColumns, "phi_found"),
                        (PublishColumns, "messages")):
        assert default[name][2] == model.model_fields[name].description
    assert lineage["teacher_completion"][2] == PublishColumns.model_fields["teacher_completion"].description
    assert lineage["latency_s"][2] == Trace.model_fields["latency_s"].description


def test_columns_without_a_common_schema_are_json_text(own_file, tmp_path):
    from curate.io import write_rows

    rows = own_rows()
    for i, row in enumerate(rows):
        row["meta"] = {"ward": i if i % 2 else f"w{i}"}  # int in some rows, text in others: no one Arrow type
        row["difficulty"] = "hard"  # a team's own column, named to be published
    write_rows(rows, own_file)
    folder = publish(own_file, repo_id="acme/x", local_dir=tmp_path / "out", benchmark_paths=benchmark_files(),
                     extra_columns=["difficulty"])
    ds = load_fresh(folder, tmp_path)["train"]
    assert [json.loads(m) for m in ds["meta"]] == [r["meta"] for r in rows]
    fields = {r[0]: r for r in card_fields((folder / "README.md").read_text())["default"]}
    assert fields["meta"][1] == "string" and fields["meta"][2].endswith("(JSON text: its rows share no schema)")
    lineage = {r[0]: r for r in card_fields((folder / "README.md").read_text())["lineage"]}
    assert lineage["difficulty"][2] == "a column of the input file (not one of curate's)"


def test_card_example_row_is_the_first_published_row(run_dir):
    import pyarrow.parquet as pq

    from curate.publish.card import EXAMPLE_CHARS

    folder = run_dir / "publish"
    card = (folder / "README.md").read_text()
    shown = json.loads(card.split("## Example row\n", 1)[1].split("```json\n", 1)[1].split("\n```", 1)[0])
    first = pq.read_table(folder / "data" / "train-00000-of-00001.parquet").slice(0, 1).to_pylist()[0]
    assert list(shown) == list(first) and shown["trace_id"] == first["trace_id"] and shown["gold"] == first["gold"]
    assert shown["options"] == first["options"]
    start = shown["messages"][2]["content"].split(" … [", 1)[0]
    assert first["messages"][2]["content"].startswith(start) and EXAMPLE_CHARS - 40 < len(start) <= EXAMPLE_CHARS
    assert "characters left out] …" in shown["reasoning"] and len(shown["reasoning"]) < len(first["reasoning"])
    # a published row: its texts are what scrub wrote (the gate checked them again: no PHI found)
    gate = RunDir.open(run_dir).report("publish").gate
    assert gate.phi.checked == len(read_rows(run_dir / "reviewed.parquet")) and gate.phi.failed == 0
    scrubbed = {r["trace_id"]: r for r in read_rows(run_dir / "scrubbed.parquet")}[shown["trace_id"]]
    assert first["reasoning"] == scrubbed["reasoning"] and first["question"] == scrubbed["question"]


def test_no_example_row_when_the_phi_check_was_forced(own_file, tmp_path):
    from curate.io import write_rows

    rows = own_rows()
    rows[0]["reasoning"] += " Seen by John Smith, MRN 4829101."
    write_rows(rows, own_file)
    folder = publish(own_file, repo_id="acme/x", local_dir=tmp_path / "out", benchmark_paths=benchmark_files(), force=True)
    card = (folder / "README.md").read_text()
    assert "Not shown: the PHI check of the rows failed" in card and "4829101" not in card


def test_card_cites_the_sources_and_names_each_files_licence(run_dir, own_file, tmp_path):
    card = (run_dir / "publish" / "README.md").read_text()
    citation = card.split("## Citation\n", 1)[1]
    for key in ("@article{jin2021disease", "@inproceedings{pal2022medmcqa", "@inproceedings{jin2019pubmedqa"):
        assert key in citation
    # the run read copies of the demo's files: each one's licence is the demo provenance's (by its sha256), not the
    # source module's (the MedMCQA file is MIRAGE's public-domain copy, not the Apache-2.0 Hub release)
    files = {r[0]: r for r in card_table(card, "Source files and their licences")}
    assert files["dev.jsonl"][1:3] == ["medmcqa questions", "public domain (MIRAGE)"]
    medqa = files["test.4_options.jsonl"]
    assert medqa[2] == "MIT" and "xk-huang/medagents-benchmark@56ca11e" in medqa[3]
    assert files["ori_pqal.json"][2] == "MIT" and files["recording.jsonl.gz"][1] == "teacher (recorded completions)"
    assert "DeepSeek-R1 (MIT weights)" in files["recording.jsonl.gz"][3]
    # a team's own rows: no dataset to cite, no run to name files from
    folder = publish(own_file, repo_id="acme/x", local_dir=tmp_path / "out", benchmark_paths=benchmark_files())
    own = (folder / "README.md").read_text()
    assert "## Citation" not in own and "which source files it came from is not known" in own


def test_file_licence_of_the_demo_by_path_else_the_source_module(tmp_path):
    from curate.publish.card import DEMO_DIR, file_origin
    from tests.pipeline_support import DEMO

    assert DEMO_DIR == DEMO
    entry = file_origin(str(DEMO / "medmcqa" / "dev.jsonl"), None)
    assert entry["licence"] == "public domain (MIRAGE)" and entry["repository"] == "Teddy-XiongGZ/MIRAGE"
    other = tmp_path / "dev.jsonl"
    other.write_text("{}\n")
    assert file_origin(str(other), "0" * 64) is None


@pytest.mark.slow
def test_trl_trains_on_the_default_config_with_the_chat_template(run_dir, tmp_path):
    """Acceptance: the published folder goes into TRL's SFTTrainer as it is, for 2 steps on a tiny random Qwen2 with
    a tokenizer trained here (no download). `default` is conversational, so TRL renders it with the chat template:
    the tokenized examples hold the template's role markers and the system prompt; `prompt_completion` is plain."""
    import datasets
    from trl import SFTConfig, SFTTrainer

    from train.random_model import build_random_model

    model, tokenizer = build_random_model(tmp_path / "tiny")
    train = datasets.load_dataset(str(run_dir / "publish"), split="train", cache_dir=str(tmp_path / "hf-cache"))
    args = SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=2, per_device_train_batch_size=2, max_length=256,
                     report_to=[], save_strategy="no", logging_steps=1, use_cpu=True, dataloader_num_workers=0,
                     dataset_num_proc=None)
    trainer = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
    result = trainer.train()
    assert trainer.state.global_step == 2 and result.training_loss > 0
    first = tokenizer.decode(trainer.train_dataset[0]["input_ids"])
    system = train[0]["messages"][0]["content"]
    assert first.startswith(f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\nAnswer the following")
    # the same row as plain strings: no chat template, no system prompt
    plain = datasets.load_dataset(str(run_dir / "publish"), "prompt_completion", split="train",
                                  cache_dir=str(tmp_path / "hf-cache"))
    trainer = SFTTrainer(model=model, args=args, train_dataset=plain, processing_class=tokenizer)
    text = tokenizer.decode(trainer.train_dataset[0]["input_ids"])
    assert text.startswith("Answer the following") and "<|im_start|>" not in text and system not in text
