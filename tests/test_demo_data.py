"""The demo set in examples/demo/: real questions in their sources' native formats and recorded real teacher
completions, which the main job runs on offline. Everything here reads the shipped files through the real loaders,
the real prompt templates, the real replay server and the real filter; only the rebuild test needs ../shared/data."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import importlib.util
import json
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from curate.filter import filter_traces
from curate.generate.cache import ResponseCache
from curate.generate.replay import Recordings, replay_server
from curate.generate.requests import SamplingParams
from curate.generate.runner import agenerate
from curate.io import read_rows
from curate.records import Question
from prompts import RATIONALIZE, default_prompt_for, get_prompt
from sources import load_source
from tests.conftest import REPO_ROOT

DEMO = REPO_ROOT / "examples" / "demo"
RECORDING = DEMO / "recording.jsonl.gz"
PROVENANCE_FILES = {"PROVENANCE.md", "provenance.json"}
#: What the demo config relies on: questions per source, their split, and the path a [[sources]] entry names.
EXPECTED = {"medqa": 100, "medmcqa": 36, "pubmedqa": 95}
SPLIT = {"medqa": "test", "medmcqa": "dev", "pubmedqa": "test"}
PATH = {"medqa": "medqa/test.4_options.jsonl", "medmcqa": "medmcqa/dev.jsonl", "pubmedqa": "pubmedqa/ori_pqal.json"}
ID_PATTERN = {"medqa": r"medqa:test:\d+", "medmcqa": r"medmcqa:dev:[0-9a-f-]{36}", "pubmedqa": r"pubmedqa:test:\d+"}
MODELS = ("DeepSeek-R1", "QwQ-32B")
SAMPLES = 2
#: Questions whose two recordings give at least one trace the real filter keeps (measured: 71 of 231).
MIN_PASSING_QUESTIONS = 60


def _load(source: str) -> list[Question]:
    result = load_source(source, str(DEMO / PATH[source]))
    assert not result.rejected, f"{source}: the demo file has rows its loader rejects"
    return result.questions


@pytest.fixture(scope="module")
def questions() -> list[Question]:
    return [q for source in EXPECTED for q in _load(source)]


@pytest.fixture(scope="module")
def recorded() -> list[dict]:
    with gzip.open(RECORDING, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


@pytest.fixture(scope="module")
def own_rows(questions: list[Question], recorded: list[dict]) -> dict[str, list[dict]]:
    """Each question's recording rows, found from the rows' own fields (not through the replay server): PubMedQA rows
    carry the abstract before the question and their qid is the PMID; the others carry the question text."""
    by_key: dict[tuple[str, str], list[dict]] = {}
    for r in recorded:
        key = r["qid"] if r["dataset"] == "pubmedqa" else _norm(r["question"])
        by_key.setdefault((r["dataset"], key), []).append(r)
    return {q.id: by_key.get((q.source, q.meta["pmid"] if q.source == "pubmedqa" else _norm(q.question)), [])
            for q in questions}


# ---------------------------------------------------------------- the question files


@pytest.mark.parametrize("source", list(EXPECTED))
def test_each_file_loads_through_its_source_loader(source: str):
    loaded = _load(source)
    assert len(loaded) == EXPECTED[source]
    assert {q.split for q in loaded} == {SPLIT[source]}
    assert all(re.fullmatch(ID_PATTERN[source], q.id) for q in loaded), loaded[0].id
    assert all(q.answer in q.options for q in loaded)
    if source == "pubmedqa":
        assert all(q.context and q.options == {"A": "yes", "B": "no", "C": "maybe"} for q in loaded)
        # The ground truth beside it defines the split, as in the full release: asking for train gives nothing.
        assert load_source("pubmedqa", str(DEMO / "pubmedqa"), split="train").questions == []
    else:
        assert all(len(q.options) == 4 for q in loaded)


def test_the_cli_pulls_the_demo_as_a_user_download(cli, tmp_path: Path):
    """`curate sources pull` on the demo folder, as a user would on their own copy of PubMedQA."""
    out = tmp_path / "q.jsonl"
    proc = cli("sources", "pull", "pubmedqa", "--path", str(DEMO / "pubmedqa"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = read_rows(out)
    assert len(rows) == EXPECTED["pubmedqa"] and {r["split"] for r in rows} == {"test"}


def test_question_ids_are_unique_across_the_three_files(questions: list[Question]):
    ids = [q.id for q in questions]
    assert len(ids) == sum(EXPECTED.values()) and len(set(ids)) == len(ids)
    texts = [_norm(q.question) for q in questions]
    assert len(set(texts)) == len(texts)


# ---------------------------------------------------------------- the recording


def test_every_question_has_one_recording_per_model_and_nothing_else(questions, recorded, own_rows):
    assert len(recorded) == SAMPLES * len(questions)
    for q in questions:
        rows = own_rows[q.id]
        assert [r["model"] for r in rows] == list(MODELS), q.id
        assert all(r["gold"] == q.answer and r["options"] == q.options and r["response"] for r in rows), q.id
    fields = {"question", "options", "gold", "model", "response", "reasoning", "source", "dataset", "split", "qid",
              "prompt_variant", "trace_id"}
    assert all(fields <= set(r) for r in recorded)
    assert len({r["trace_id"] for r in recorded}) == len(recorded)


@pytest.mark.parametrize("template", ["default", RATIONALIZE])
def test_the_replay_server_finds_each_question_from_its_rendered_prompt(questions, own_rows, template: str):
    recordings = Recordings(RECORDING)
    for q in questions:
        prompt = default_prompt_for(q) if template == "default" else get_prompt(template)
        matched, found = recordings.for_prompt(prompt.render(q)[-1]["content"])
        assert matched, f"{q.id}: the replay server does not find it from its {prompt.name} prompt"
        assert [r.content for r in found] == [r["response"] for r in own_rows[q.id]], q.id


def test_generate_gets_two_samples_per_question_and_the_filter_keeps_enough(questions, own_rows, tmp_path: Path):
    """The demo's path: the real generate client asks the real replay server (HTTP on 127.0.0.1) for 2 samples per
    question; each sample is that question's own recording, and the real filter keeps enough to publish."""
    cache = ResponseCache(tmp_path / "cache")
    cache.load()
    with replay_server(traces=RECORDING) as server:
        try:
            traces = asyncio.run(agenerate(questions, teacher="replay-teacher", base_urls=[server.url], cache=cache,
                                           samples=SAMPLES, params=SamplingParams(seed=0, max_tokens=16384),
                                           concurrency=16, retry_base=0.01))
        finally:
            cache.close()
        log = server.log()
    assert log and all(entry["matched"] for entry in log)
    by_question: dict[str, list[str]] = {}
    for t in sorted(traces, key=lambda t: (t.question_id, t.sample_index)):
        assert t.error is None and t.finish_reason == "stop", t.trace_id
        by_question.setdefault(t.question_id, []).append(t.completion)
    for q in questions:
        assert by_question[q.id] == [r["response"] for r in own_rows[q.id]], q.id

    kept, _, report = filter_traces(traces, questions)
    passing = Counter(q.source for q in questions if q.id in {k.question_id for k in kept})
    assert sum(passing.values()) >= MIN_PASSING_QUESTIONS, (passing, report.reasons)
    assert all(passing[s] > 0 for s in EXPECTED), passing


# ---------------------------------------------------------------- provenance


def test_provenance_names_every_file_with_its_origin_rows_and_hash(recorded: list[dict]):
    prov = json.loads((DEMO / "provenance.json").read_text())
    shipped = {p.relative_to(DEMO).as_posix() for p in DEMO.rglob("*") if p.is_file()}
    assert set(prov["files"]) == shipped - PROVENANCE_FILES
    for name, entry in prov["files"].items():
        for key in ("repository", "commit", "path", "licence", "selection"):
            assert entry[key], f"{name}: no {key}"
        data = (DEMO / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data), name
    rows = {name: len(_load(source)) for source, name in PATH.items()}
    rows["pubmedqa/test_ground_truth.json"] = len(json.loads((DEMO / "pubmedqa/test_ground_truth.json").read_text()))
    rows["recording.jsonl.gz"] = len(recorded)
    assert {name: e["rows"] for name, e in prov["files"].items()} == rows
    models = prov["files"]["recording.jsonl.gz"]["models"]
    assert {m: e["rows"] for m, e in models.items()} == dict(Counter(r["model"] for r in recorded))
    assert all(e["licence"] and e["terms"] for e in models.values())
    assert prov["questions"] == EXPECTED and prov["splits"] == {s: [split] for s, split in SPLIT.items()}
    markdown = (DEMO / "PROVENANCE.md").read_text()
    assert all(f"`{name}`" in markdown for name in prov["files"])
    assert "EVALUATION item" in markdown and "never be published" in markdown


def test_the_demo_stays_small():
    total = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert total < 2_000_000, f"examples/demo is {total} bytes"


# ---------------------------------------------------------------- the builder


def _builder():
    """scripts/build_demo.py as a module (registered first: its dataclasses look their module up)."""
    if "build_demo" not in sys.modules:
        spec = importlib.util.spec_from_file_location("build_demo", REPO_ROOT / "scripts" / "build_demo.py")
        assert spec and spec.loader
        sys.modules["build_demo"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["build_demo"]


def test_the_builder_refuses_clearly_without_the_shared_data(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("CURATE_SHARED_DATA", str(tmp_path / "absent"))
    out = tmp_path / "demo"
    assert _builder().main(["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "shared data is absent" in err and str(tmp_path / "absent") in err
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.shared_data
def test_the_builder_reproduces_the_shipped_files_byte_for_byte(shared_data: Path, tmp_path: Path):
    out = tmp_path / "demo"
    _builder().build(shared_data, out)
    built = {p.relative_to(out).as_posix(): p for p in out.rglob("*") if p.is_file()}
    shipped = {p.relative_to(DEMO).as_posix(): p for p in DEMO.rglob("*") if p.is_file()}
    assert set(built) == set(shipped)
    for name, path in built.items():
        if name.endswith(".gz"):
            assert gzip.decompress(path.read_bytes()) == gzip.decompress(shipped[name].read_bytes()), name
            assert path.read_bytes() == shipped[name].read_bytes(), f"{name}: same content, other compressed bytes (zlib?)"
        else:
            assert path.read_bytes() == shipped[name].read_bytes(), name
